// Reading images and converting them: the fixture PNGs decode to exactly the reference pixels, the decoder output
// of the recorded runs converts to exactly the reference bytes (truncated and rounded), a JPEG round trip, channel
// conversions, and every kind of damaged file refused with an ImageError naming it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "image_test_support.hpp"
#include "latentkit/io/image.hpp"
#include "latentkit/io/png_writer.hpp"
#include "latentkit/io/safetensors.hpp"
#include "support/fixtures.hpp"

// stb_image_write is used by this test only, to make JPEG files (stb_image has no JPEG writer).
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Weverything"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

using namespace latentkit;
using image_test::Bytes;
using image_test::require_image_error;

namespace {

Bytes encode_jpeg(const Image& im, int quality = 95) {
  Bytes out;
  auto sink = [](void* context, void* data, int size) {
    auto* o = static_cast<Bytes*>(context);
    const auto* p = static_cast<const std::uint8_t*>(data);
    o->insert(o->end(), p, p + size);
  };
  REQUIRE(stbi_write_jpg_to_func(sink, &out, im.width, im.height, im.channels, im.pixels.data(), quality) != 0);
  return out;
}

/// The number of bytes where `image` differs from an HWC uint8 tensor of the same size (-1 if the sizes differ).
long count_differences(const Image& image, const Tensor<std::uint8_t>& hwc) {
  if (hwc.rank() != 3 || hwc.size(0) != image.height || hwc.size(1) != image.width || hwc.size(2) != image.channels)
    return -1;
  long n = 0;
  for (std::size_t i = 0; i < image.pixels.size(); ++i) n += image.pixels[i] != hwc.data()[i];
  return n;
}

struct RunFixture {
  const char* tensors;
  const char* png;
};
constexpr RunFixture runs[] = {{"models/txt2img_sd1_tiny.safetensors", "models/txt2img_sd1_tiny.png"},
                               {"models/img2img_sd1_tiny.safetensors", "models/img2img_sd1_tiny.png"}};

}  // namespace

TEST_CASE("the fixture PNGs decode to exactly the uint8 images saved beside them", "[images][fixtures]") {
  for (const auto& run : runs) {
    DYNAMIC_SECTION(run.png) {
      const SafetensorsFile f(latentkit_test::fixture(run.tensors));
      const Image image = read_image(latentkit_test::fixture(run.png));
      CHECK(image.width == 128);
      CHECK(image.height == 128);
      CHECK(image.channels == 3);
      CHECK(count_differences(image, f.load<std::uint8_t>("image_u8_trunc_hwc")) == 0);
    }
  }
}

TEST_CASE("tensor_to_image turns the recorded decoder output into exactly the reference bytes, truncated and rounded",
          "[images][fixtures]") {
  for (const auto& run : runs) {
    DYNAMIC_SECTION(run.tensors) {
      const SafetensorsFile f(latentkit_test::fixture(run.tensors));
      const Tensor<float> raw = f.load<float>("image_raw");  // (1, 3, 128, 128), the VAE decode
      CHECK(count_differences(tensor_to_image(raw.view()), f.load<std::uint8_t>("image_u8_trunc_hwc")) == 0);
      CHECK(count_differences(tensor_to_image(raw.view(), PixelRounding::round), f.load<std::uint8_t>("image_u8_round_hwc")) == 0);
      // The [3, H, W] form and a strided view give the same bytes.
      CHECK(tensor_to_image(raw.view().select(0, 0)).pixels == tensor_to_image(raw.view()).pixels);
    }
  }
}

TEST_CASE("rounding sends an exact float32 tie up, as the reference does, where np.round would go to even", "[images]") {
  // img2img_sd1_tiny: image_raw at (c 0, y 39, x 101) gives 255 * image01 == 90.5 exactly; the reference byte is 91.
  const SafetensorsFile f(latentkit_test::fixture("models/img2img_sd1_tiny.safetensors"));
  const Tensor<float> raw = f.load<float>("image_raw");
  const float x = raw(0, 0, 39, 101);
  const float v = (x + 1.0f) / 2.0f;
  REQUIRE(255.0f * v == 90.5f);
  const Tensor<std::uint8_t> round = f.load<std::uint8_t>("image_u8_round_hwc");
  CHECK(round(39, 101, 0) == 91);
  Tensor<float> one = Tensor<float>::full({3, 1, 1}, x);
  CHECK(tensor_to_image(one.view(), PixelRounding::round).pixels[0] == 91);
  CHECK(tensor_to_image(one.view(), PixelRounding::truncate).pixels[0] == 90);
}

TEST_CASE("the img2img init PNG is the truncated init_image: its tensor differs from init_image by less than 2/255",
          "[images][fixtures]") {
  // init_image is a synthetic continuous picture; the PNG holds its truncated bytes, so reading the PNG back cannot
  // give init_image exactly. What does hold: tensor_to_image(init_image) == the PNG, and image_to_tensor(PNG) lies
  // within one byte step (2/255 in [-1, 1]) below it.
  const SafetensorsFile f(latentkit_test::fixture("models/img2img_sd1_tiny.safetensors"));
  const Tensor<float> init = f.load<float>("init_image");  // (1, 3, 128, 128)
  const Image png = read_image(latentkit_test::fixture("models/img2img_sd1_tiny_init.png"));
  CHECK(tensor_to_image(init.view()).pixels == png.pixels);
  const Tensor<float> t = image_to_tensor(png);
  REQUIRE(t.shape() == init.shape());
  long equal = 0;
  for (index_t i = 0; i < t.numel(); ++i) {
    const float d = init.data()[i] - t.data()[i];
    REQUIRE(d >= 0.0f);
    REQUIRE(d < 2.0f / 255.0f + 1e-6f);
    equal += d == 0.0f;
  }
  CHECK(equal < t.numel() / 100);  // almost every value differs: the fixture was not made from the PNG
}

TEST_CASE("image_to_tensor computes x / 255 * 2 - 1 in float32, channel-first", "[images]") {
  Image im{2, 1, 3, {0, 128, 255, 1, 2, 254}};
  const Tensor<float> t = image_to_tensor(im);
  REQUIRE(t.shape() == Dims{1, 3, 1, 2});
  for (int c = 0; c < 3; ++c)
    for (int x = 0; x < 2; ++x) {
      volatile float q = static_cast<float>(im.pixels[static_cast<std::size_t>(x * 3 + c)]) / 255.0f;
      volatile float two_q = 2.0f * q;
      CHECK(t(0, c, 0, x) == two_q - 1.0f);
    }
  CHECK(t(0, 0, 0, 0) == -1.0f);
  CHECK(t(0, 2, 0, 0) == 1.0f);
  for (int u = 0; u < 256; ++u) {  // u / 127.5 rounds the same as (u / 255) * 2
    Image g{1, 1, 1, {static_cast<std::uint8_t>(u)}};
    CHECK(image_to_tensor(g)(0, 1, 0, 0) == static_cast<float>(u) / 127.5f - 1.0f);
  }
}

TEST_CASE("image_to_tensor replicates gray and drops alpha; bad images are refused", "[images]") {
  const Image ga{1, 1, 2, {51, 7}};
  const Tensor<float> t = image_to_tensor(ga);
  CHECK(t(0, 0, 0, 0) == t(0, 1, 0, 0));
  CHECK(t(0, 2, 0, 0) == image_to_tensor(Image{1, 1, 1, {51}})(0, 2, 0, 0));
  CHECK(image_to_tensor(Image{1, 1, 4, {1, 2, 3, 4}})(0, 2, 0, 0) == image_to_tensor(Image{1, 1, 3, {1, 2, 3}})(0, 2, 0, 0));
  CHECK_THROWS_AS(image_to_tensor(Image{2, 2, 3, {1, 2, 3}}), ImageError);
  CHECK_THROWS_AS(image_to_tensor(Image{1, 1, 5, {1, 2, 3, 4, 5}}), ImageError);
  CHECK_THROWS_AS(image_to_tensor(Image{}), ImageError);
}

TEST_CASE("tensor_to_image clamps, maps NaN to 0, and checks its shape", "[images]") {
  Tensor<float> t({1, 1, 5});  // (C, H, W) = 1 channel
  const float values[] = {-3.0f, 1.0f, 7.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f};
  for (int i = 0; i < 5; ++i) t(0, 0, i) = values[i];
  const Image im = tensor_to_image(t.view());
  CHECK(im.channels == 1);
  CHECK(im.pixels == std::vector<std::uint8_t>{0, 255, 255, 0, 127});
  CHECK(tensor_to_image(t.view(), PixelRounding::round).pixels[4] == 128);  // 127.5 rounds up
  CHECK_THROWS_AS(tensor_to_image(Tensor<float>({2, 3, 4, 4}).view()), ShapeError);
  CHECK_THROWS_AS(tensor_to_image(Tensor<float>({2, 4, 4}).view()), ShapeError);
  CHECK_THROWS_AS(tensor_to_image(Tensor<float>({3, 4}).view()), ShapeError);
}

TEST_CASE("PNG round trips of gray, gray + alpha, RGB and RGBA are exact, and want_channels converts", "[images][png]") {
  for (int channels = 1; channels <= 4; ++channels) {
    DYNAMIC_SECTION(channels << " channels") {
      const Image im = image_test::picture(37, 23, channels, static_cast<unsigned>(channels));
      const Bytes png = encode_png(im);
      const Image back = decode_image(png, "mem.png", 0);
      CHECK(back.width == 37);
      CHECK(back.height == 23);
      CHECK(back.channels == channels);
      CHECK(back.pixels == im.pixels);
      const Image rgba = decode_image(png, "mem.png", 4);
      REQUIRE(rgba.channels == 4);
      const int color = channels >= 3 ? 3 : 1;
      for (std::size_t p = 0; p < 37 * 23; ++p) {
        const std::size_t c = static_cast<std::size_t>(channels);
        INFO("pixel " << p);
        REQUIRE(rgba.pixels[p * 4 + 0] == im.pixels[p * c]);
        REQUIRE(rgba.pixels[p * 4 + 2] == im.pixels[p * c + (color == 3 ? 2 : 0)]);
        REQUIRE(rgba.pixels[p * 4 + 3] == (channels % 2 == 0 ? im.pixels[p * c + c - 1] : 255));
      }
    }
  }
}

TEST_CASE("a JPEG decodes close to what was encoded, gray or colour, and to 1-4 channels", "[images][jpeg]") {
  for (int channels : {1, 3}) {
    DYNAMIC_SECTION(channels << " channels") {
      const Image im = image_test::picture(40, 24, channels, 7);
      const Bytes jpeg = encode_jpeg(im, 98);  // stb_image_write stores gray as Y, Cb, Cr too
      const Image back = decode_image(jpeg, "mem.jpg", channels);
      REQUIRE(back.width == 40);
      REQUIRE(back.height == 24);
      REQUIRE(back.channels == channels);
      CHECK(decode_image(jpeg, "mem.jpg", 0).channels == 3);
      double err = 0;
      for (std::size_t i = 0; i < im.pixels.size(); ++i) err += std::abs(int{back.pixels[i]} - int{im.pixels[i]});
      CHECK(err / static_cast<double>(im.pixels.size()) < 6.0);  // lossy, but close at quality 98
      for (int want = 1; want <= 4; ++want) CHECK(decode_image(jpeg, "mem.jpg", want).channels == want);
    }
  }
}

TEST_CASE("read_image reads files, names a missing one in an IoError, and refuses a bad want_channels", "[images]") {
  latentkit_test::TempDir dir("images");
  const Image im = image_test::picture(9, 5, 3);
  write_png(dir.path / "a.png", im);
  CHECK(read_image(dir.path / "a.png").pixels == im.pixels);
  const Bytes jpeg = encode_jpeg(im);
  {
    std::ofstream out(dir.path / "a.jpg", std::ios::binary);
    out.write(reinterpret_cast<const char*>(jpeg.data()), static_cast<std::streamsize>(jpeg.size()));
  }
  CHECK(read_image(dir.path / "a.jpg", 1).channels == 1);
  CHECK_THROWS_WITH(read_image(dir.path / "missing.png"), Catch::Contains("missing.png"));
  CHECK_THROWS_AS(read_image(dir.path / "missing.png"), IoError);
  require_image_error([&] { read_image(dir.path / "a.png", 5); }, "a.png", {"want_channels"});
  require_image_error([&] { read_image(dir.path / "a.png", -1); }, "a.png", {"want_channels"});
}

TEST_CASE("an empty file, random bytes and other formats are refused with an ImageError naming the file", "[images][malformed]") {
  latentkit_test::TempDir dir("images");
  { std::ofstream(dir.path / "empty.png"); }
  require_image_error([&] { read_image(dir.path / "empty.png"); }, "empty.png", {"empty"});
  require_image_error([] { decode_image({}, "nothing.png"); }, "nothing.png", {"empty"});
  require_image_error([] { decode_image(image_test::bytes_of("GIF89a...."), "anim.gif"); }, "anim.gif", {"not a PNG or JPEG", "47 49 46"});
  require_image_error([] { decode_image(image_test::bytes_of("BM\x36\0\0\0"), "pic.bmp"); }, "pic.bmp", {"not a PNG or JPEG"});
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    Bytes noise(1 + rng() % 300);
    for (auto& b : noise) b = static_cast<std::uint8_t>(rng());
    if (trial % 3 == 1) noise.insert(noise.begin(), detail::png_signature.begin(), detail::png_signature.end());
    if (trial % 3 == 2) noise.insert(noise.begin(), {0xFF, 0xD8, 0xFF});
    INFO("trial " << trial);
    require_image_error([&] { decode_image(noise, "noise.bin"); }, "noise.bin");
  }
}

TEST_CASE("a PNG or JPEG truncated at any offset is refused", "[images][malformed]") {
  const Image im = image_test::picture(16, 12, 3);
  const Bytes png = encode_png(im, {{"parameters", "Steps: 20, Sampler: Euler a, CFG scale: 7"}});
  for (std::size_t n = 0; n < png.size(); ++n) {
    INFO("PNG cut to " << n << " of " << png.size() << " bytes");
    require_image_error([&] { decode_image(std::span(png).first(n), "cut.png"); }, "cut.png");
  }
  const Bytes jpeg = encode_jpeg(im);
  for (std::size_t n = 0; n + 2 < jpeg.size(); ++n) {  // the last 2 bytes are EOI itself
    INFO("JPEG cut to " << n << " of " << jpeg.size() << " bytes");
    require_image_error([&] { decode_image(std::span(jpeg).first(n), "cut.jpg"); }, "cut.jpg");
  }
  CHECK(decode_image(jpeg, "whole.jpg").pixels.size() == im.pixels.size());
  Bytes trailing = jpeg;  // bytes after EOI are allowed
  trailing.insert(trailing.end(), {1, 2, 3, 4});
  CHECK(decode_image(trailing, "trailing.jpg").width == 16);
}

TEST_CASE("a PNG with a wrong CRC, a damaged zlib stream or an invalid IHDR is refused before decoding", "[images][malformed]") {
  const Image im = image_test::picture(16, 12, 3);
  const Bytes png = encode_png(im);
  const std::size_t idat = image_test::chunk_offset(png, "IDAT");
  REQUIRE(idat > 0);

  Bytes bad_crc = png;
  bad_crc[idat + 8 + 5] ^= 0x40;  // one bit of the compressed data
  require_image_error([&] { decode_image(bad_crc, "crc.png"); }, "crc.png", {"'IDAT'", "CRC mismatch"});

  Bytes bad_zlib = bad_crc;  // the same damage with a matching CRC reaches the decoder, which refuses it
  image_test::fix_crc(bad_zlib, idat);
  bool refused = false;
  try {
    const Image out = decode_image(bad_zlib, "zlib.png");
    refused = out.pixels != im.pixels;  // a bit flip inside a literal may still inflate: then the pixels differ
  } catch (const ImageError& e) {
    refused = std::string(e.what()).find("zlib.png") != std::string::npos;
  }
  CHECK(refused);

  Bytes bad_depth = png;
  bad_depth[8 + 8 + 8] = 7;  // IHDR bit depth
  image_test::fix_crc(bad_depth, 8);
  require_image_error([&] { decode_image(bad_depth, "depth.png"); }, "depth.png", {"bit depth 7"});

  Bytes no_ihdr = png;
  no_ihdr[8 + 4] = 'X';  // the first chunk's type
  image_test::fix_crc(no_ihdr, 8);
  require_image_error([&] { decode_image(no_ihdr, "first.png"); }, "first.png", {"IHDR"});

  Bytes huge_length = png;
  detail::store_be32(huge_length.data() + idat, 0xFFFFFFF0u);
  require_image_error([&] { decode_image(huge_length, "len.png"); }, "len.png", {"exceeds the PNG limit"});
  detail::store_be32(huge_length.data() + idat, 0x7FFFFFF0u);
  require_image_error([&] { decode_image(huge_length, "len.png"); }, "len.png", {"truncated"});
}

TEST_CASE("absurd dimensions are refused before any pixel is decoded", "[images][malformed]") {
  const auto header_only = [](std::uint32_t w, std::uint32_t h) { return image_test::png_with_chunks(w, h, {{"IDAT", {}}}); };
  for (const auto& [w, h] : {std::pair<std::uint32_t, std::uint32_t>{16385, 1}, {1, 16385}, {16384, 16385}, {0x7FFFFFFF, 0x7FFFFFFF}})
    require_image_error([&] { decode_image(header_only(w, h), "big.png"); }, "big.png", {std::to_string(w) + "x" + std::to_string(h), "refused"});
  require_image_error([&] { decode_image(header_only(0, 5), "zero.png"); }, "zero.png", {"0x5"});
  require_image_error([&] { decode_image(header_only(0x80000000u, 1), "wide.png"); }, "wide.png", {"2^31-1"});

  // A JPEG whose SOF0 claims 20000 x 100: refused by size, not by running out of data.
  const Image small = image_test::picture(16, 8, 3);
  Bytes jpeg = encode_jpeg(small);
  std::size_t sof = 0;
  for (std::size_t i = 2; i + 1 < jpeg.size(); ++i)
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      sof = i;
      break;
    }
  REQUIRE(sof > 0);
  jpeg[sof + 5] = 100 >> 8, jpeg[sof + 6] = 100 & 0xFF;      // height
  jpeg[sof + 7] = 20000 >> 8, jpeg[sof + 8] = 20000 & 0xFF;  // width
  require_image_error([&] { decode_image(jpeg, "wide.jpg"); }, "wide.jpg");
  // 16000 x 16000 is within the limits, but not in a file of a few hundred bytes: refused before stb would decode
  // a quarter of a billion pixels from nothing.
  jpeg[sof + 5] = 16000 >> 8, jpeg[sof + 6] = 16000 & 0xFF;
  jpeg[sof + 7] = 16000 >> 8, jpeg[sof + 8] = 16000 & 0xFF;
  require_image_error([&] { decode_image(jpeg, "sparse.jpg"); }, "sparse.jpg", {"16000x16000", "more than a"});
}

TEST_CASE("JPEG tables stb_image would misread are refused first: over 256 symbols, undefined tables, a scan before "
          "the frame", "[images][malformed][jpeg]") {
  const Bytes jpeg = encode_jpeg(image_test::picture(16, 8, 3));
  const auto find_marker = [&](std::uint8_t m) {
    for (std::size_t i = 2; i + 1 < jpeg.size(); ++i)
      if (jpeg[i] == 0xFF && jpeg[i + 1] == m) return i;
    FAIL("marker not found");
    return std::size_t{0};
  };
  const std::size_t dht = find_marker(0xC4), dqt = find_marker(0xDB), sof = find_marker(0xC0);
  // stb_image_write: one DHT segment with DC 0, AC 0, DC 1, AC 1; one DQT segment with tables 0 and 1.
  REQUIRE(jpeg[dht + 4] == 0x00);
  const std::size_t dc0_symbols = [&] {
    std::size_t n = 0;
    for (int i = 0; i < 16; ++i) n += jpeg[dht + 5 + static_cast<std::size_t>(i)];
    return n;
  }();
  const std::size_t ac0 = dht + 4 + 17 + dc0_symbols;  // the second table's class/id byte
  REQUIRE(jpeg[ac0] == 0x10);

  Bytes counts = jpeg;  // 250 more codes of length 16 in DC table 0
  counts[dht + 4 + 16] = static_cast<std::uint8_t>(counts[dht + 4 + 16] + 250);
  require_image_error([&] { decode_image(counts, "counts.jpg"); }, "counts.jpg", {"FFC4", "at most 256"});

  Bytes no_ac0 = jpeg;  // AC table 0 redefined as DC table 0: the luma scan's AC table never exists
  no_ac0[ac0] = 0x00;
  require_image_error([&] { decode_image(no_ac0, "undefined.jpg"); }, "undefined.jpg", {"FFDA", "never defined"});

  Bytes no_dqt1 = jpeg;  // quantisation table 1 renamed 2: the chroma components use an undefined table
  REQUIRE(jpeg[dqt + 4] == 0x00);
  REQUIRE(jpeg[dqt + 4 + 65] == 0x01);
  no_dqt1[dqt + 4 + 65] = 0x02;
  require_image_error([&] { decode_image(no_dqt1, "dqt.jpg"); }, "dqt.jpg", {"quantisation table 1", "never defined"});

  Bytes no_frame = jpeg;  // the frame header turned into an APP1 segment
  no_frame[sof + 1] = 0xE1;
  require_image_error([&] { decode_image(no_frame, "frame.jpg"); }, "frame.jpg", {"before the frame header"});

  Bytes bad_class = jpeg;
  bad_class[dht + 4] = 0x24;
  require_image_error([&] { decode_image(bad_class, "class.jpg"); }, "class.jpg", {"class 2 / id 4"});
}
