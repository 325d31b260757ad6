// The PNG container (ISO/IEC 15948 section 5): an 8-byte signature, then chunks of {u32 big-endian length,
// 4-letter type, data, CRC-32 of type and data}, from IHDR to IEND. One bounded walk checks every length
// against the bytes left and every CRC, so the image decoder and the text reader both see only well-formed
// files: a damaged chunk is reported by name instead of being decoded or skipped silently (libpng and Pillow
// refuse bad CRCs too).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

#include <zlib.h>

#include "latentkit/config/config.hpp"
#include "latentkit/io/image_error.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace detail {

inline constexpr std::array<std::uint8_t, 8> png_signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
/// The spec's limit on a chunk length (and on width and height): 2^31 - 1.
inline constexpr std::uint32_t png_max_u31 = 0x7FFFFFFFu;

inline bool has_png_signature(std::span<const std::uint8_t> bytes) noexcept {
  if (bytes.size() < png_signature.size()) return false;
  for (std::size_t i = 0; i < png_signature.size(); ++i)
    if (bytes[i] != png_signature[i]) return false;
  return true;
}

inline std::uint32_t load_be32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}
inline void store_be32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

/// CRC-32 of a chunk's type and data (zlib's crc32 is the PNG polynomial).
inline std::uint32_t png_crc(std::span<const std::uint8_t> type_and_data, std::uint32_t crc = 0) noexcept {
  return static_cast<std::uint32_t>(
      ::crc32_z(crc, type_and_data.data(), static_cast<z_size_t>(type_and_data.size())));
}

/// A chunk type for messages: the four letters when they are letters, else their hex codes.
inline std::string png_chunk_label(const std::uint8_t* type) {
  std::string s;
  bool letters = true;
  for (int i = 0; i < 4; ++i) letters = letters && ((type[i] | 0x20) >= 'a' && (type[i] | 0x20) <= 'z');
  if (letters) return "'" + std::string(reinterpret_cast<const char*>(type), 4) + "'";
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%02X%02X%02X%02X", type[0], type[1], type[2], type[3]);
  return buf;
}

struct PngChunk {
  std::string_view type;               // 4 ASCII letters
  std::span<const std::uint8_t> data;  // inside the file
  std::size_t offset = 0;              // of the length field, for messages
  std::size_t index = 0;               // 0 = IHDR
};

inline std::string png_where(std::string_view name) { return "PNG file '" + std::string(name) + "'"; }
inline std::string png_where(std::string_view name, const PngChunk& c) {
  return png_where(name) + ", chunk " + std::to_string(c.index) + " '" + std::string(c.type) + "' at byte " +
         std::to_string(c.offset);
}

/// Calls visit(const PngChunk&) for every chunk from IHDR to IEND (both included) and returns the offset just
/// past IEND. ImageError naming `name` and the chunk when the signature is missing, a length runs past the end
/// or above 2^31-1, a type is not four letters, a CRC is wrong, the first chunk is not a 13-byte IHDR, or the
/// file ends before IEND. Bytes after IEND are ignored, as libpng does. Linear in the file size.
template <class Visit>
std::size_t walk_png_chunks(std::span<const std::uint8_t> bytes, std::string_view name, Visit&& visit) {
  if (bytes.empty()) throw ImageError(png_where(name) + ": the file is empty");
  if (!has_png_signature(bytes))
    throw ImageError(png_where(name) + ": does not start with the 8-byte PNG signature");
  std::size_t pos = png_signature.size();
  for (std::size_t index = 0;; ++index) {
    const std::size_t left = bytes.size() - pos;
    if (left < 12)
      throw ImageError(png_where(name) + ": truncated: " + std::to_string(left) + " bytes left at byte " +
                       std::to_string(pos) + ", where chunk " + std::to_string(index) +
                       " needs at least 12 (length, type, CRC); the file ends before IEND");
    const std::uint8_t* p = bytes.data() + pos;
    const std::uint32_t length = load_be32(p);
    const std::string label = png_chunk_label(p + 4);
    const std::string where = png_where(name) + ", chunk " + std::to_string(index) + " " + label + " at byte " +
                              std::to_string(pos);
    if (length > png_max_u31)
      throw ImageError(where + ": length " + std::to_string(length) + " exceeds the PNG limit of 2^31-1");
    if (length > left - 12)
      throw ImageError(where + ": truncated: length " + std::to_string(length) + " but only " +
                       std::to_string(left - 12) + " bytes of data and CRC remain");
    for (int i = 4; i < 8; ++i)
      if ((p[i] | 0x20) < 'a' || (p[i] | 0x20) > 'z')
        throw ImageError(where + ": the chunk type is not four ASCII letters");
    const std::uint32_t stored = load_be32(p + 8 + length);
    const std::uint32_t computed = png_crc({p + 4, std::size_t{length} + 4});
    if (stored != computed) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ": CRC mismatch (stored 0x%08X, computed 0x%08X)", stored, computed);
      throw ImageError(where + buf);
    }
    const PngChunk chunk{std::string_view(reinterpret_cast<const char*>(p + 4), 4), {p + 8, length}, pos, index};
    if (index == 0 && (chunk.type != "IHDR" || length != 13))
      throw ImageError(where + ": the first chunk must be IHDR of 13 bytes");
    if (index > 0 && chunk.type == "IHDR") throw ImageError(where + ": a second IHDR");
    visit(chunk);
    pos += std::size_t{length} + 12;
    if (chunk.type == "IEND") return pos;
  }
}

/// The image header (IHDR), checked against the combinations the spec allows.
struct PngHeader {
  std::uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
};

inline PngHeader parse_png_header(const PngChunk& ihdr, std::string_view name) {
  const auto* d = ihdr.data.data();
  PngHeader h{load_be32(d), load_be32(d + 4), d[8], d[9], d[12]};
  const std::string where = png_where(name, ihdr);
  if (h.width == 0 || h.height == 0 || h.width > png_max_u31 || h.height > png_max_u31)
    throw ImageError(where + ": size " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                     " is outside 1 .. 2^31-1");
  const int depth = h.bit_depth;
  bool ok = false;
  switch (h.color_type) {
    case 0: ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16; break;  // gray
    case 3: ok = depth == 1 || depth == 2 || depth == 4 || depth == 8; break;                 // palette
    case 2: case 4: case 6: ok = depth == 8 || depth == 16; break;                            // RGB, GA, RGBA
    default: break;
  }
  if (!ok)
    throw ImageError(where + ": colour type " + std::to_string(h.color_type) + " with bit depth " +
                     std::to_string(depth) + " is not a valid PNG combination");
  if (d[10] != 0 || d[11] != 0)
    throw ImageError(where + ": compression method " + std::to_string(d[10]) + " / filter method " +
                     std::to_string(d[11]) + "; PNG defines only 0");
  if (h.interlace > 1) throw ImageError(where + ": interlace method " + std::to_string(h.interlace) + " is not 0 or 1");
  return h;
}

}  // namespace detail
LATENTKIT_NAMESPACE_END
