// PNG encoder for 8-bit gray, gray+alpha, RGB and RGBA images, with text chunks (AUTOMATIC1111 keeps its
// "parameters" there). Each row takes the filter (None, Sub, Up, Average, Paeth) whose output has the smallest
// sum of absolute values, the heuristic libpng and the spec recommend; the filtered rows are one zlib stream.
// Text is tEXt when it is plain ASCII (then Latin-1 and UTF-8 agree) and uncompressed iTXt (UTF-8) otherwise.
// write_png writes through a temporary file and a rename, so the target is never left half written.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zlib.h>

#include "latentkit/config/config.hpp"
#include "latentkit/io/detail/atomic_file.hpp"
#include "latentkit/io/detail/png_chunks.hpp"
#include "latentkit/io/image.hpp"
#include "latentkit/io/image_error.hpp"
#include "latentkit/io/png_text.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace detail {

inline void append_png_chunk(std::vector<std::uint8_t>& out, const char* type, std::span<const std::uint8_t> data) {
  const std::size_t at = out.size();
  out.resize(at + 12 + data.size());
  std::uint8_t* p = out.data() + at;
  store_be32(p, static_cast<std::uint32_t>(data.size()));
  for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<std::uint8_t>(type[i]);
  if (!data.empty()) std::memcpy(p + 8, data.data(), data.size());
  store_be32(p + 8 + data.size(), png_crc({p + 4, data.size() + 4}));
}

/// The keyword rule of the spec, narrowed to ASCII (our strings are UTF-8, PNG keywords Latin-1).
inline bool png_keyword_ok(std::string_view k) noexcept {
  if (k.empty() || k.size() > 79 || k.front() == ' ' || k.back() == ' ') return false;
  for (std::size_t i = 0; i < k.size(); ++i) {
    if (k[i] < 32 || k[i] > 126) return false;
    if (k[i] == ' ' && k[i + 1] == ' ') return false;  // i + 1 < size: the last byte is not a space
  }
  return true;
}

inline std::uint8_t paeth(int a, int b, int c) noexcept {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<std::uint8_t>(pa <= pb && pa <= pc ? a : (pb <= pc ? b : c));
}

/// Filters row `cur` (previous row `prev`, zeros for the first) with every filter type and appends the one whose
/// bytes, read as signed, have the smallest absolute sum: [type, filtered bytes].
inline void append_filtered_row(std::vector<std::uint8_t>& out, const std::uint8_t* cur, const std::uint8_t* prev,
                                std::size_t n, std::size_t bpp, std::array<std::vector<std::uint8_t>, 5>& scratch) {
  std::size_t best = 0;
  std::uint64_t best_cost = ~std::uint64_t{0};
  for (std::size_t f = 0; f < 5; ++f) {
    auto& row = scratch[f];
    row.resize(n);
    std::uint64_t cost = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      int pred = 0;
      switch (f) {
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: pred = paeth(a, b, c); break;
        default: break;
      }
      const auto v = static_cast<std::uint8_t>(cur[i] - pred);
      row[i] = v;
      cost += v < 128 ? v : 256u - v;
    }
    if (cost < best_cost) best = f, best_cost = cost;
  }
  out.push_back(static_cast<std::uint8_t>(best));
  out.insert(out.end(), scratch[best].begin(), scratch[best].end());
}

inline std::vector<std::uint8_t> encode_png_named(const Image& image,
                                                  const std::vector<std::pair<std::string, std::string>>& text,
                                                  const std::string& name) {
  const std::string where = "PNG '" + name + "'";
  const int ch = image.channels;
  if (ch < 1 || ch > 4) throw ImageError(where + ": " + std::to_string(ch) + " channels; PNG holds 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)");
  if (image.width < 1 || image.height < 1)
    throw ImageError(where + ": size " + std::to_string(image.width) + "x" + std::to_string(image.height) + " is empty");
  const auto w = static_cast<std::size_t>(image.width), h = static_cast<std::size_t>(image.height);
  const std::size_t row_bytes = w * static_cast<std::size_t>(ch);  // width and height are ints: no overflow
  if (image.pixels.size() / h != row_bytes || image.pixels.size() % h != 0)
    throw ImageError(where + ": " + std::to_string(image.pixels.size()) + " pixel bytes, but " + std::to_string(image.width) +
                     "x" + std::to_string(image.height) + "x" + std::to_string(ch) + " needs " + std::to_string(row_bytes * h));

  std::vector<std::uint8_t> out(png_signature.begin(), png_signature.end());
  std::array<std::uint8_t, 13> ihdr{};
  store_be32(ihdr.data(), static_cast<std::uint32_t>(w));
  store_be32(ihdr.data() + 4, static_cast<std::uint32_t>(h));
  constexpr std::uint8_t color_type[] = {0, 0, 4, 2, 6};  // by channel count
  ihdr[8] = 8;
  ihdr[9] = color_type[ch];
  append_png_chunk(out, "IHDR", ihdr);

  for (const auto& [key, value] : text) {
    if (!png_keyword_ok(key))
      throw ImageError(where + ": text key '" + key + "' is not a PNG keyword (1 to 79 printable ASCII characters, "
                       "no leading, trailing or double spaces)");
    if (value.find('\0') != std::string::npos) throw ImageError(where + ": the text of '" + key + "' contains a NUL byte");
    bool ascii = true;
    for (const char c : value) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    std::vector<std::uint8_t> data(key.begin(), key.end());
    data.push_back(0);
    if (!ascii) {
      if (!valid_utf8(value)) throw ImageError(where + ": the text of '" + key + "' is neither ASCII nor valid UTF-8");
      data.insert(data.end(), {0, 0, 0, 0});  // not compressed, method 0, no language tag, no translated keyword
    }
    data.insert(data.end(), value.begin(), value.end());
    append_png_chunk(out, ascii ? "tEXt" : "iTXt", data);
  }

  std::vector<std::uint8_t> filtered;
  filtered.reserve(h * (row_bytes + 1));
  const std::vector<std::uint8_t> zeros(row_bytes, 0);
  std::array<std::vector<std::uint8_t>, 5> scratch;
  for (std::size_t y = 0; y < h; ++y) {
    const std::uint8_t* cur = image.pixels.data() + y * row_bytes;
    append_filtered_row(filtered, cur, y ? cur - row_bytes : zeros.data(), row_bytes, static_cast<std::size_t>(ch), scratch);
  }
  uLongf packed_size = ::compressBound(static_cast<uLong>(filtered.size()));
  std::vector<std::uint8_t> packed(packed_size);
  if (::compress2(packed.data(), &packed_size, filtered.data(), static_cast<uLong>(filtered.size()), 6) != Z_OK)
    throw ImageError(where + ": zlib could not compress the pixel data");
  constexpr std::size_t idat_max = std::size_t{1} << 30;  // below the 2^31-1 chunk limit
  for (std::size_t at = 0; at < packed_size; at += idat_max)
    append_png_chunk(out, "IDAT", std::span(packed).subspan(at, std::min<std::size_t>(idat_max, packed_size - at)));
  append_png_chunk(out, "IEND", {});
  return out;
}

}  // namespace detail

/// The PNG file image of `image` (1-4 channels of 8 bits) with `text` as tEXt/iTXt chunks after IHDR.
/// ImageError when the image is inconsistent, a key is not a PNG keyword (1-79 printable ASCII, no leading,
/// trailing or double spaces) or a text holds a NUL byte or invalid UTF-8.
inline std::vector<std::uint8_t> encode_png(const Image& image,
                                            const std::vector<std::pair<std::string, std::string>>& text = {}) {
  return detail::encode_png_named(image, text, "encode_png");
}

/// Writes `image` as a PNG file: encoded first (ImageError naming the file), then written to a temporary file
/// beside `path` and renamed onto it (IoError naming the file; the target is untouched and the temporary removed).
inline void write_png(const std::filesystem::path& path, const Image& image,
                      const std::vector<std::pair<std::string, std::string>>& text = {}) {
  const auto bytes = detail::encode_png_named(image, text, path.string());
  detail::AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

LATENTKIT_NAMESPACE_END
