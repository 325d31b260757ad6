// The PNG writer and the text-chunk reader: text round trips through tEXt and iTXt, zTXt and compressed iTXt read,
// Latin-1 widened to UTF-8, keys and texts the writer refuses, atomic writes that leave nothing behind on failure,
// and every malformed text chunk refused with an ImageError naming the file and the chunk.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <zlib.h>

#include "image_test_support.hpp"
#include "latentkit/io/image.hpp"
#include "latentkit/io/png_text.hpp"
#include "latentkit/io/png_writer.hpp"
#include "latentkit/pipelines/generation_parameters.hpp"
#include "support/fixtures.hpp"

using namespace latentkit;
using image_test::Bytes;
using image_test::bytes_of;
using image_test::require_image_error;
using Text = std::vector<std::pair<std::string, std::string>>;

namespace {

std::vector<std::string> chunk_types(const Bytes& png) {
  std::vector<std::string> types;
  detail::walk_png_chunks(png, "types", [&](const detail::PngChunk& c) { types.emplace_back(c.type); });
  return types;
}

Bytes zlib(std::string_view text) {
  uLongf n = compressBound(static_cast<uLong>(text.size()));
  Bytes out(n);
  REQUIRE(compress2(out.data(), &n, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()), 9) == Z_OK);
  out.resize(n);
  return out;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename());
  return out;
}

}  // namespace

TEST_CASE("text round trips: ASCII as tEXt, UTF-8 as iTXt, in order, duplicates and empty values kept", "[png][text]") {
  const Text text = {{"parameters", "a cat, (masterpiece:1.2)\nNegative prompt: dog\nSteps: 20, Sampler: Euler a"},
                     {"Comment", "caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x90\xB1"},
                     {"Comment", ""},
                     {"Software", "latentkit"}};
  const Bytes png = encode_png(image_test::picture(4, 3, 3), text);
  CHECK(chunk_types(png) == std::vector<std::string>{"IHDR", "tEXt", "iTXt", "tEXt", "tEXt", "IDAT", "IEND"});
  CHECK(png_text_from_bytes(png, "mem.png") == text);
  CHECK(decode_image(png, "mem.png").width == 4);  // text chunks do not disturb the decoder
}

TEST_CASE("write_png then read_png_text and read_image give back the text and the pixels", "[png][text]") {
  latentkit_test::TempDir dir("png");
  const Image im = image_test::picture(33, 17, 4);
  GenerationParameters p;
  p.prompt = "a photograph of an astronaut riding a horse, \xE5\xAE\x87\xE5\xAE\x99";  // non-ASCII: iTXt
  p.sampler = "DPM++ 2M";
  p.schedule = "Karras";
  p.seed = 42;
  const auto path = dir.path / "out.png";
  write_png(path, im, {{"parameters", format_a1111_parameters(p)}});
  const Text back = read_png_text(path);
  REQUIRE(back.size() == 1);
  CHECK(back[0].first == "parameters");
  const GenerationParameters q = parse_a1111_parameters(back[0].second);
  CHECK(q.prompt == p.prompt);
  CHECK(q.seed == 42);
  CHECK(read_image(path, 0).pixels == im.pixels);
  CHECK(files_in(dir.path) == std::vector<std::filesystem::path>{"out.png"});  // no temporary left
}

TEST_CASE("zTXt and compressed iTXt are inflated; tEXt and zTXt are Latin-1, returned as UTF-8", "[png][text]") {
  const std::string big(100000, 'x');
  const Bytes png = image_test::png_with_chunks(
      1, 1,
      {{"tEXt", concat({bytes_of("Title"), {0}, {'c', 'a', 'f', 0xE9}})},
       {"zTXt", concat({bytes_of("Description"), {0, 0}, zlib("na\xEFve " + big)})},
       {"iTXt", concat({bytes_of("parameters"), {0, 1, 0}, bytes_of("en"), {0}, bytes_of("Parameter"), {0}, zlib("\xE2\x9C\x93 ok")})},
       {"iTXt", concat({bytes_of("plain"), {0, 0, 0, 0, 0}, bytes_of("\xC3\xBC")})}});
  const Text text = png_text_from_bytes(png, "mem.png");
  REQUIRE(text.size() == 4);
  CHECK(text[0] == std::pair<std::string, std::string>{"Title", "caf\xC3\xA9"});
  CHECK(text[1].first == "Description");
  CHECK(text[1].second == "na\xC3\xAFve " + big);
  CHECK(text[2] == std::pair<std::string, std::string>{"parameters", "\xE2\x9C\x93 ok"});
  CHECK(text[3] == std::pair<std::string, std::string>{"plain", "\xC3\xBC"});
}

TEST_CASE("the fixture PNGs have no text chunks", "[png][text][fixtures]") {
  for (const char* name : {"models/txt2img_sd1_tiny.png", "models/img2img_sd1_tiny.png", "models/img2img_sd1_tiny_init.png"}) {
    INFO(name);
    CHECK(read_png_text(latentkit_test::fixture(name)).empty());
  }
}

TEST_CASE("the writer refuses keys that are not PNG keywords, NUL bytes, invalid UTF-8 and inconsistent images", "[png]") {
  const Image im = image_test::picture(2, 2, 3);
  for (const std::string key : {std::string(), std::string(80, 'k'), std::string(" lead"), std::string("trail "),
                                std::string("two  spaces"), std::string("gr\xC3\xB6\xC3\x9F" "e"), std::string("tab\tkey")}) {
    INFO("key '" << key << "'");
    require_image_error([&] { encode_png(im, {{key, "v"}}); }, "encode_png", {"PNG keyword"});
  }
  CHECK_NOTHROW(encode_png(im, {{std::string(79, 'k'), "v"}, {"one space", "v"}}));
  require_image_error([&] { encode_png(im, {{"k", std::string("a\0b", 3)}}); }, "encode_png", {"NUL"});
  require_image_error([&] { encode_png(im, {{"k", "\xC3("}}); }, "encode_png", {"UTF-8"});
  require_image_error([&] { encode_png(Image{2, 2, 3, {1, 2, 3}}); }, "encode_png", {"needs 12"});
  require_image_error([&] { encode_png(Image{2, 2, 5, std::vector<std::uint8_t>(20)}); }, "encode_png", {"5 channels"});
  require_image_error([&] { encode_png(Image{0, 2, 3, {}}); }, "encode_png", {"empty"});
  latentkit_test::TempDir dir("png");
  require_image_error([&] { write_png(dir.path / "bad.png", Image{2, 2, 3, {1}}); }, "bad.png");
  CHECK(files_in(dir.path).empty());
}

TEST_CASE("write_png is atomic: it replaces a file whole and leaves nothing behind when it fails", "[png][atomic]") {
  latentkit_test::TempDir dir("png");
  const auto path = dir.path / "image.png";
  write_png(path, image_test::picture(8, 8, 3, 1));
  write_png(path, image_test::picture(5, 7, 1, 2), {{"k", "v"}});  // replaces the first file
  CHECK(read_image(path, 0).width == 5);
  CHECK(read_png_text(path) == Text{{"k", "v"}});
  CHECK(files_in(dir.path) == std::vector<std::filesystem::path>{"image.png"});

  const auto missing = dir.path / "no_such_folder" / "x.png";
  CHECK_THROWS_AS(write_png(missing, image_test::picture(2, 2, 3)), IoError);
  CHECK_THROWS_WITH(write_png(missing, image_test::picture(2, 2, 3)), Catch::Contains("x.png"));
  CHECK(files_in(dir.path) == std::vector<std::filesystem::path>{"image.png"});

  std::filesystem::create_directory(dir.path / "a_folder");  // renaming a file onto a folder fails after the write
  CHECK_THROWS_WITH(write_png(dir.path / "a_folder", image_test::picture(2, 2, 3)), Catch::Contains("a_folder"));
  CHECK(files_in(dir.path).size() == 2);
  CHECK(std::filesystem::is_empty(dir.path / "a_folder"));
}

TEST_CASE("the filter choice keeps files small and exact on large, noisy and flat images", "[png]") {
  for (const auto& im : {image_test::picture(300, 200, 3), Image{64, 64, 1, std::vector<std::uint8_t>(64 * 64, 200)},
                         image_test::picture(1, 50, 2), image_test::picture(50, 1, 4)}) {
    const Bytes png = encode_png(im);
    CHECK(decode_image(png, "mem.png", 0).pixels == im.pixels);
    CHECK(png.size() < im.pixels.size() + 200);
  }
  CHECK(encode_png(Image{64, 64, 1, std::vector<std::uint8_t>(64 * 64, 200)}).size() < 200);
}

TEST_CASE("a PNG truncated at any offset, or with a damaged text chunk, gives an ImageError naming the chunk", "[png][malformed]") {
  const Bytes png = encode_png(image_test::picture(6, 4, 3), {{"parameters", "Steps: 20"}, {"u", "\xC3\xBC"}});
  for (std::size_t n = 0; n < png.size(); ++n) {
    INFO("cut to " << n << " bytes");
    require_image_error([&] { png_text_from_bytes(std::span(png).first(n), "cut.png"); }, "cut.png");
  }
  Bytes bad_crc = png;
  const std::size_t text_at = image_test::chunk_offset(png, "tEXt");
  bad_crc[text_at + 9] ^= 1;
  require_image_error([&] { png_text_from_bytes(bad_crc, "crc.png"); }, "crc.png", {"'tEXt'", "CRC mismatch"});
  require_image_error([] { png_text_from_bytes(bytes_of("not a png at all"), "text.txt"); }, "text.txt", {"signature"});
  require_image_error([] { png_text_from_bytes({}, "empty.png"); }, "empty.png", {"empty"});

  const auto rejects = [](const std::string& type, const Bytes& data, const std::string& word) {
    INFO(type << ": " << word);
    require_image_error([&] { png_text_from_bytes(image_test::png_with_chunks(1, 1, {{type, data}}), "chunk.png"); },
                        "chunk.png", {"'" + type + "'", word});
  };
  rejects("tEXt", bytes_of("no terminator"), "keyword is not terminated");
  rejects("tEXt", concat({Bytes(80, 'k'), {0}}), "80 bytes");
  rejects("tEXt", concat({{0}, bytes_of("text")}), "0 bytes");
  rejects("zTXt", concat({bytes_of("k"), {0}}), "compression method byte is missing");
  rejects("zTXt", concat({bytes_of("k"), {0, 1}, zlib("x")}), "compression method 1");
  rejects("zTXt", concat({bytes_of("k"), {0, 0}, bytes_of("not zlib data")}), "damaged");
  const Bytes stream = zlib(std::string(5000, 'q'));
  rejects("zTXt", concat({bytes_of("k"), {0, 0}, Bytes(stream.begin(), stream.begin() + 10)}), "truncated");
  rejects("iTXt", concat({bytes_of("k"), {0, 0}}), "flag and method");
  rejects("iTXt", concat({bytes_of("k"), {0, 2, 0}, {0, 0}}), "compression flag 2");
  rejects("iTXt", concat({bytes_of("k"), {0, 1, 3}, {0, 0}}), "compression method 3");
  rejects("iTXt", concat({bytes_of("k"), {0, 0, 0}, bytes_of("en")}), "language tag");
  rejects("iTXt", concat({bytes_of("k"), {0, 0, 0, 0}, bytes_of("kk")}), "translated keyword");
  rejects("iTXt", concat({bytes_of("k"), {0, 0, 0, 0, 0}, {0xC3, 0x28}}), "not valid UTF-8");
  rejects("iTXt", concat({bytes_of("k"), {0, 1, 0, 0, 0}, zlib("\xED\xA0\x80")}), "not valid UTF-8");  // a surrogate
}

TEST_CASE("a zlib bomb in a text chunk stops at the text limit", "[png][malformed]") {
  const std::string huge(png_text_max_bytes + 1, 'z');  // ~64 MiB of one byte deflates to ~64 KiB
  const Bytes png = image_test::png_with_chunks(1, 1, {{"zTXt", concat({bytes_of("bomb"), {0, 0}, zlib(huge)})}});
  CHECK(png.size() < 200000);
  require_image_error([&] { png_text_from_bytes(png, "bomb.png"); }, "bomb.png", {"'zTXt'", "limit"});
  const Bytes half = zlib(std::string(png_text_max_bytes / 2 + 1, 'z'));  // two halves pass the limit together
  const Bytes two = image_test::png_with_chunks(1, 1, {{"zTXt", concat({bytes_of("a"), {0, 0}, half})},
                                                       {"zTXt", concat({bytes_of("b"), {0, 0}, half})}});
  require_image_error([&] { png_text_from_bytes(two, "two.png"); }, "two.png", {"limit"});
}
