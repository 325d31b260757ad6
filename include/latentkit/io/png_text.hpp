// The text chunks of a PNG file: tEXt (Latin-1), zTXt (Latin-1, zlib-compressed) and iTXt (UTF-8, optionally
// compressed), returned as UTF-8 (keyword, text) pairs in file order. This is where AUTOMATIC1111 keeps its
// "parameters" (Pillow writes tEXt, or iTXt when the text is not Latin-1). The chunk walk bounds every length
// and checks every CRC, and decompression stops at png_text_max_bytes, so a hostile file costs at most that
// much memory and one pass over its bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zlib.h>

#include "latentkit/config/config.hpp"
#include "latentkit/io/detail/png_chunks.hpp"
#include "latentkit/io/image_error.hpp"
#include "latentkit/io/mapped_file.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// The most text, after decompression, that one file may yield (all chunks together): 64 MiB.
inline constexpr std::size_t png_text_max_bytes = std::size_t{64} << 20;

namespace detail {

inline void append_latin1_as_utf8(std::string& out, std::span<const std::uint8_t> latin1) {
  for (const std::uint8_t b : latin1) {
    if (b < 0x80) {
      out += static_cast<char>(b);
    } else {
      out += static_cast<char>(0xC0 | (b >> 6));
      out += static_cast<char>(0x80 | (b & 0x3F));
    }
  }
}

/// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
inline bool valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int n = 0;
    std::uint32_t cp = 0;
    if (b >= 0xC2 && b <= 0xDF) n = 1, cp = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) n = 2, cp = b & 0x0F;
    else if (b >= 0xF0 && b <= 0xF4) n = 3, cp = b & 0x07;
    else return false;
    if (s.size() - i <= static_cast<std::size_t>(n)) return false;
    for (int k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    i += static_cast<std::size_t>(n) + 1;
  }
  return true;
}

/// zlib-inflates `in`, appending to `out`; ImageError when the stream is damaged, ends early, or would pass
/// `budget` bytes of output.
inline void inflate_text(std::span<const std::uint8_t> in, std::string& out, std::size_t budget, const std::string& where) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw ImageError(where + ": zlib cannot start inflating");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&z};
  z.next_in = const_cast<Bytef*>(in.data());  // zlib's API is not const-correct; it never writes the input
  z.avail_in = static_cast<uInt>(in.size());  // a chunk is below 2^31 bytes
  const std::size_t start = out.size();
  unsigned char buf[16384];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = buf;
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
      throw ImageError(where + ": the compressed text is damaged (zlib: " + (z.msg ? z.msg : "error " + std::to_string(rc)) + ")");
    const std::size_t produced = sizeof buf - z.avail_out;
    if (out.size() - start + produced > budget)
      throw ImageError(where + ": the compressed text inflates past the limit of " + std::to_string(png_text_max_bytes) +
                       " bytes of text per file");
    out.append(reinterpret_cast<const char*>(buf), produced);
    if (rc == Z_BUF_ERROR || (rc == Z_OK && produced == 0 && z.avail_in == 0))
      throw ImageError(where + ": the compressed text is truncated");
  }
}

/// Splits at the first NUL at or after `from`; ImageError when there is none.
inline std::size_t find_nul(std::span<const std::uint8_t> d, std::size_t from, const std::string& where, const char* field) {
  for (std::size_t i = from; i < d.size(); ++i)
    if (d[i] == 0) return i;
  throw ImageError(where + ": the " + field + " is not terminated by a NUL byte");
}

inline std::string png_keyword(std::span<const std::uint8_t> d, std::size_t nul, const std::string& where) {
  if (nul < 1 || nul > 79) throw ImageError(where + ": the keyword is " + std::to_string(nul) + " bytes; PNG allows 1 to 79");
  std::string key;
  append_latin1_as_utf8(key, d.first(nul));
  return key;
}

}  // namespace detail

/// The (keyword, text) pairs of every tEXt, zTXt and iTXt chunk of a PNG held in memory, in file order, as UTF-8.
/// ImageError naming `name` and the chunk for a malformed file or chunk (bad CRC, a length past the end, a
/// missing NUL, a bad compression method or stream, iTXt text that is not UTF-8, more than png_text_max_bytes).
inline std::vector<std::pair<std::string, std::string>> png_text_from_bytes(std::span<const std::uint8_t> bytes,
                                                                            std::string_view name) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t budget = png_text_max_bytes;
  detail::walk_png_chunks(bytes, name, [&](const detail::PngChunk& c) {
    if (c.type != "tEXt" && c.type != "zTXt" && c.type != "iTXt") return;
    const std::string where = detail::png_where(name, c);
    const auto d = c.data;
    const std::size_t key_end = detail::find_nul(d, 0, where, "keyword");
    std::string key = detail::png_keyword(d, key_end, where);
    std::string text;
    if (c.type == "tEXt") {
      detail::append_latin1_as_utf8(text, d.subspan(key_end + 1));
    } else if (c.type == "zTXt") {
      if (key_end + 1 >= d.size()) throw ImageError(where + ": the compression method byte is missing");
      if (d[key_end + 1] != 0) throw ImageError(where + ": compression method " + std::to_string(d[key_end + 1]) + "; PNG defines only 0 (zlib)");
      std::string latin1;
      detail::inflate_text(d.subspan(key_end + 2), latin1, budget, where);
      detail::append_latin1_as_utf8(text, {reinterpret_cast<const std::uint8_t*>(latin1.data()), latin1.size()});
    } else {  // iTXt: keyword NUL, compression flag, method, language tag NUL, translated keyword NUL, text
      if (d.size() - key_end - 1 < 2) throw ImageError(where + ": the compression flag and method bytes are missing");
      const std::uint8_t flag = d[key_end + 1], method = d[key_end + 2];
      if (flag > 1) throw ImageError(where + ": compression flag " + std::to_string(flag) + " is not 0 or 1");
      if (flag == 1 && method != 0) throw ImageError(where + ": compression method " + std::to_string(method) + "; PNG defines only 0 (zlib)");
      const std::size_t lang_end = detail::find_nul(d, key_end + 3, where, "language tag");
      const std::size_t translated_end = detail::find_nul(d, lang_end + 1, where, "translated keyword");
      const auto body = d.subspan(translated_end + 1);
      if (flag == 1) {
        detail::inflate_text(body, text, budget, where);
      } else {
        text.assign(reinterpret_cast<const char*>(body.data()), body.size());
      }
      if (!detail::valid_utf8(text)) throw ImageError(where + ": the text is not valid UTF-8, as iTXt requires");
      const std::string_view translated(reinterpret_cast<const char*>(d.data()) + lang_end + 1, translated_end - lang_end - 1);
      if (!detail::valid_utf8(translated)) throw ImageError(where + ": the translated keyword is not valid UTF-8");
    }
    if (text.size() > budget)
      throw ImageError(where + ": the file holds more than " + std::to_string(png_text_max_bytes) + " bytes of text");
    budget -= text.size();
    out.emplace_back(std::move(key), std::move(text));
  });
  return out;
}

/// The text chunks of a PNG file (see png_text_from_bytes). IoError when the file cannot be opened.
inline std::vector<std::pair<std::string, std::string>> read_png_text(const std::filesystem::path& path) {
  const MappedFile file(path);
  const auto bytes = file.bytes();
  return png_text_from_bytes({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, path.string());
}

LATENTKIT_NAMESPACE_END
