// Images in and out of the pipelines: 8-bit pixels decoded from PNG or JPEG (stb_image), and the two conversions
// the Stable Diffusion scripts make between pixels and [-1, 1] tensors, reproduced bit for bit.
//
// Files come from strangers, so nothing is handed to the decoder before it is known to be whole: a PNG walks its
// chunks (every length bounded, every CRC checked), a JPEG its markers up to EOI, and the declared size is
// refused above image_max_side per side or image_max_pixels in all before any pixel memory is allocated.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/core/tensor_view.hpp"
#include "latentkit/io/detail/jpeg_markers.hpp"
#include "latentkit/io/detail/png_chunks.hpp"
#include "latentkit/io/detail/stb_image.hpp"
#include "latentkit/io/image_error.hpp"
#include "latentkit/io/mapped_file.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// 8-bit pixels, row-major HWC: pixel (y, x) channel c is pixels[(y * width + x) * channels + c].
/// channels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<std::uint8_t> pixels;
};

/// Larger images are refused before decoding (16384^2 = 2^28 pixels, 1 GiB as RGBA).
inline constexpr int image_max_side = 16384;
inline constexpr std::int64_t image_max_pixels = std::int64_t{1} << 28;
static_assert(image_max_side == STBI_MAX_DIMENSIONS, "detail/stb_image.hpp sets stb's limit to the same value");

namespace detail {

inline std::string image_where(std::string_view name) { return "image '" + std::string(name) + "'"; }

inline void check_image_size(std::int64_t w, std::int64_t h, std::string_view name) {
  if (w < 1 || h < 1 || w > image_max_side || h > image_max_side || w * h > image_max_pixels)
    throw ImageError(image_where(name) + ": size " + std::to_string(w) + "x" + std::to_string(h) +
                     " is refused (at most " + std::to_string(image_max_side) + " per side and " +
                     std::to_string(image_max_pixels) + " pixels)");
}

/// The first bytes of an unrecognised file, for the message.
inline std::string leading_bytes(std::span<const std::uint8_t> bytes) {
  std::string s;
  for (std::size_t i = 0; i < bytes.size() && i < 8; ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%s%02X", i ? " " : "", bytes[i]);
    s += buf;
  }
  return s;
}

inline std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown decoder error";
}

struct StbFree {
  void operator()(stbi_uc* p) const noexcept { stbi_image_free(p); }
};

}  // namespace detail

/// Decodes a PNG or JPEG held in memory; `name` labels messages. want_channels: 0 keeps the file's channels,
/// 1-4 converts (stb's rules: gray is replicated, alpha added as 255 or dropped). 16-bit PNGs are reduced to
/// 8 bits (the high byte). ImageError naming `name` for an empty, truncated, damaged, oversized or unsupported
/// file; never reads outside `bytes`.
inline Image decode_image(std::span<const std::uint8_t> bytes, std::string_view name, int want_channels = 3) {
  using detail::image_where;
  if (want_channels < 0 || want_channels > 4)
    throw ImageError(image_where(name) + ": want_channels is " + std::to_string(want_channels) + "; expected 0 to 4");
  if (bytes.empty()) throw ImageError(image_where(name) + ": the file is empty");
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw ImageError(image_where(name) + ": " + std::to_string(bytes.size()) + " bytes is above the 2 GiB the decoder takes");
  if (detail::has_png_signature(bytes)) {
    detail::PngHeader header;
    detail::walk_png_chunks(bytes, name, [&](const detail::PngChunk& c) {
      if (c.index == 0) header = detail::parse_png_header(c, name);
    });
    detail::check_image_size(header.width, header.height, name);
  } else if (detail::has_jpeg_signature(bytes)) {
    detail::check_jpeg_markers(bytes, name);
  } else {
    throw ImageError(image_where(name) + ": not a PNG or JPEG file (it starts with " + detail::leading_bytes(bytes) + ")");
  }
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, file_channels = 0;
  if (!stbi_info_from_memory(bytes.data(), len, &w, &h, &file_channels))
    throw ImageError(image_where(name) + ": cannot be decoded: " + detail::stb_reason());
  detail::check_image_size(w, h, name);  // a JPEG's size is known only now, still before any pixel is decoded
  // stb decodes a JPEG's every declared block even when the scan holds no data for it, so a 1 KB file could cost
  // seconds and gigabytes. Huffman coding needs at least 2 bits per 8x8 block (DC and end-of-block), so a real JPEG
  // holds at most 256 pixels per byte; 1024 leaves room and refuses only files that cannot be what they claim.
  if (!detail::has_png_signature(bytes) && static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h) > 1024 * bytes.size())
    throw ImageError(image_where(name) + ": declares " + std::to_string(w) + "x" + std::to_string(h) + " pixels, more than a " +
                     std::to_string(bytes.size()) + "-byte JPEG can hold (at most 1024 per byte)");
  std::unique_ptr<stbi_uc, detail::StbFree> decoded(stbi_load_from_memory(bytes.data(), len, &w, &h, &file_channels, want_channels));
  if (!decoded) throw ImageError(image_where(name) + ": cannot be decoded: " + detail::stb_reason());
  Image image;
  image.width = w;
  image.height = h;
  image.channels = want_channels ? want_channels : file_channels;
  const std::size_t n = static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * static_cast<std::size_t>(image.channels);
  image.pixels.assign(decoded.get(), decoded.get() + n);
  return image;
}

/// Reads and decodes a PNG or JPEG file (see decode_image). IoError when the file cannot be opened.
inline Image read_image(const std::filesystem::path& path, int want_channels = 3) {
  const MappedFile file(path);
  const auto bytes = file.bytes();
  return decode_image({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, path.string(), want_channels);
}

/// An image as the network input [1, 3, H, W] in [-1, 1], exactly as CompVis `load_img` (and A1111) compute it in
/// float32: x / 255, then 2x - 1. (u / 255 * 2 equals u / 127.5 bit for bit, doubling being exact, and the
/// subtraction is the one rounding after it.) Gray is replicated and alpha dropped, as PIL's convert("RGB").
inline Tensor<float> image_to_tensor(const Image& image) {
  const int c = image.channels;
  if (c < 1 || c > 4 || image.width < 1 || image.height < 1 ||
      image.pixels.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height) * static_cast<std::size_t>(c))
    throw ImageError("image_to_tensor: an image of " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                     "x" + std::to_string(c) + " cannot hold " + std::to_string(image.pixels.size()) + " bytes");
  const index_t h = image.height, w = image.width;
  Tensor<float> out({1, 3, h, w});  // (N, C, H, W)
  float* dst = out.data();
  const std::uint8_t* src = image.pixels.data();
  const int color = c >= 3 ? 3 : 1;  // channels that carry colour
  for (int ch = 0; ch < 3; ++ch) {
    const int from = color == 3 ? ch : 0;
    for (index_t i = 0; i < h * w; ++i) {
      const float q = static_cast<float>(src[i * c + from]) / 255.0f;
      dst[ch * h * w + i] = 2.0f * q - 1.0f;
    }
  }
  return out;
}

/// How a float in [0, 255] becomes a byte. `truncate`: as CompVis scripts/txt2img.py and A1111
/// (x.astype(np.uint8)). `round`: to the nearest byte, a float32 tie (255 * v exactly k + 1/2) going up, which is
/// what the reference fixtures' image_u8_round_hwc hold (also torchvision's mul(255).add(0.5) and rounding the
/// exact product); diffusers' np.round sends those ties to the even neighbour instead (1 pixel in 49152 of the
/// img2img fixture).
enum class PixelRounding { truncate, round };

/// A decoder output [3, H, W] or [1, 3, H, W] (also 1 or 4 channels) in about [-1, 1] as an 8-bit image, in the
/// scripts' float32 arithmetic: image01 = clamp((x + 1) / 2, 0, 1), then 255 * image01 to a byte. NaN becomes 0.
inline Image tensor_to_image(TensorView<const float> chw_or_1chw, PixelRounding rounding = PixelRounding::truncate) {
  TensorView<const float> chw = chw_or_1chw;
  if (chw.rank() == 4 && chw.size(0) == 1) chw = chw.select(0, 0);
  if (chw.rank() != 3 || !(chw.size(0) == 1 || chw.size(0) == 3 || chw.size(0) == 4) || chw.size(1) < 1 ||
      chw.size(2) < 1)
    throw ShapeError("tensor_to_image: expected [C, H, W] or [1, C, H, W] with C = 1, 3 or 4, got " +
                     chw_or_1chw.shape().str());
  detail::check_image_size(chw.size(2), chw.size(1), "tensor_to_image");
  Image image;
  image.channels = static_cast<int>(chw.size(0));
  image.height = static_cast<int>(chw.size(1));
  image.width = static_cast<int>(chw.size(2));
  image.pixels.resize(static_cast<std::size_t>(chw.numel()));
  std::uint8_t* out = image.pixels.data();
  chw.permute({1, 2, 0}).for_each([&](float x) {
    float v = (x + 1.0f) / 2.0f;
    v = v > 1.0f ? 1.0f : (v >= 0.0f ? v : 0.0f);  // NaN fails both tests and lands on 0
    const float y = 255.0f * v;                     // one rounding, nothing added after: no FMA to forbid
    *out++ = static_cast<std::uint8_t>(rounding == PixelRounding::round ? std::round(y) : std::trunc(y));
  });
  return image;
}

LATENTKIT_NAMESPACE_END
