// The JPEG marker structure (ITU T.81 annex B): SOI, segments {FF xx, u16 big-endian length, payload}, each scan's
// entropy-coded data (where FF is followed by 00 or a restart marker), and EOI. One linear pass checks it before
// stb_image sees the file, for three holes fuzzing found in stb_image 2.27 (Debian's libstb):
//   * it reads past the end of its buffer as zeros, so a truncated JPEG would decode into a grey bottom;
//   * it trusts a Huffman table's code counts, and a sum above 256 overruns its tables;
//   * a scan may use a Huffman or quantisation table no segment defined, which stb then reads uninitialised.
// So: every segment must lie inside the file, every table hold at most 256 symbols, every scan come after the frame
// header and use only tables defined before it, and EOI must be reached.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/io/image_error.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace detail {

inline bool has_jpeg_signature(std::span<const std::uint8_t> bytes) noexcept {
  return bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

/// The tables defined so far and the frame's components, checked segment by segment.
class JpegTables {
 public:
  explicit JpegTables(std::string file) : file_(std::move(file)) {}

  /// DHT: {class << 4 | id, 16 code counts, the symbols}...
  void huffman(std::span<const std::uint8_t> p, std::size_t at) {
    const std::string where = segment("FFC4", at);
    for (std::size_t pos = 0; pos < p.size();) {
      if (p.size() - pos < 17) throw ImageError(where + ": a Huffman table header is cut short");
      const int tc = p[pos] >> 4, th = p[pos] & 15;
      if (tc > 1 || th > 3) throw ImageError(where + ": Huffman table class " + std::to_string(tc) + " / id " + std::to_string(th) + " (at most 1 / 3)");
      std::size_t symbols = 0;
      for (std::size_t i = 1; i <= 16; ++i) symbols += p[pos + i];
      if (symbols > 256) throw ImageError(where + ": the code counts add up to " + std::to_string(symbols) + " symbols (at most 256)");
      pos += 17;
      if (p.size() - pos < symbols) throw ImageError(where + ": the symbol list is cut short");
      pos += symbols;
      huffman_[static_cast<std::size_t>(tc)][static_cast<std::size_t>(th)] = true;
    }
  }

  /// DQT: {precision << 4 | id, 64 values of 8 or 16 bits}...
  void quantisation(std::span<const std::uint8_t> p, std::size_t at) {
    const std::string where = segment("FFDB", at);
    for (std::size_t pos = 0; pos < p.size();) {
      const int pq = p[pos] >> 4, tq = p[pos] & 15;
      if (pq > 1 || tq > 3) throw ImageError(where + ": quantisation table precision " + std::to_string(pq) + " / id " + std::to_string(tq) + " (at most 1 / 3)");
      const std::size_t size = 1 + (pq ? 128u : 64u);
      if (p.size() - pos < size) throw ImageError(where + ": a quantisation table is cut short");
      quant_[static_cast<std::size_t>(tq)] = true;
      pos += size;
    }
  }

  /// SOFn: precision, height, width, components {id, sampling, quantisation table}.
  void frame(std::span<const std::uint8_t> p, std::size_t at, std::uint8_t marker) {
    const std::string where = segment(marker_name(marker), at);
    if (frame_seen_) throw ImageError(where + ": a second frame header");
    if (p.size() < 6 || p.size() != 6 + 3 * std::size_t{p[5]}) throw ImageError(where + ": the frame header's length does not match its component count");
    components_ = p[5];
    if (components_ < 1 || components_ > 4) throw ImageError(where + ": " + std::to_string(components_) + " components (1 to 4)");
    for (std::size_t c = 0; c < components_; ++c) {
      ids_[c] = p[6 + 3 * c];
      tq_[c] = p[8 + 3 * c];
      if (tq_[c] > 3) throw ImageError(where + ": component " + std::to_string(c) + " uses quantisation table " + std::to_string(tq_[c]) + " (at most 3)");
    }
    frame_seen_ = true;
    progressive_ = marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE;
    arithmetic_ = marker >= 0xC9;  // no Huffman tables (stb refuses these itself)
  }

  /// SOS: components {id, DC << 4 | AC table}, spectral start and end, approximation bits.
  void scan(std::span<const std::uint8_t> p, std::size_t at) {
    const std::string where = segment("FFDA", at);
    if (!frame_seen_) throw ImageError(where + ": a scan before the frame header");
    if (p.empty() || p.size() != 4 + 2 * std::size_t{p[0]}) throw ImageError(where + ": the scan header's length does not match its component count");
    const std::size_t ns = p[0];
    const int ss = p[1 + 2 * ns], se = p[2 + 2 * ns], ah = p[3 + 2 * ns] >> 4;
    // A sequential scan decodes both tables whatever its spectral selection says; a progressive one only the DC
    // table in a first DC scan (refinements read raw bits) and the AC table in an AC scan.
    const bool uses_dc = !arithmetic_ && (!progressive_ || (ss == 0 && ah == 0));
    const bool uses_ac = !arithmetic_ && (!progressive_ || se > 0);
    for (std::size_t i = 0; i < ns; ++i) {
      std::size_t c = 0;
      while (c < components_ && ids_[c] != p[1 + 2 * i]) ++c;
      if (c == components_) throw ImageError(where + ": component id " + std::to_string(p[1 + 2 * i]) + " is not in the frame");
      const std::size_t td = p[2 + 2 * i] >> 4, ta = p[2 + 2 * i] & 15;
      if (!quant_[tq_[c]]) throw ImageError(where + ": quantisation table " + std::to_string(tq_[c]) + " is used but was never defined");
      if ((uses_dc && (td > 3 || !huffman_[0][td])) || (uses_ac && (ta > 3 || !huffman_[1][ta])))
        throw ImageError(where + ": a Huffman table (DC " + std::to_string(td) + ", AC " + std::to_string(ta) + ") is used but was never defined");
    }
  }

  static std::string marker_name(std::uint8_t m) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "FF%02X", m);
    return buf;
  }

 private:
  std::string segment(const std::string& marker, std::size_t at) const {
    return file_ + ": segment " + marker + " at byte " + std::to_string(at);
  }

  std::string file_;
  std::array<std::array<bool, 4>, 2> huffman_{};  // [class: DC, AC][id]
  std::array<bool, 4> quant_{};
  std::array<std::uint8_t, 4> ids_{}, tq_{};
  std::size_t components_ = 0;
  bool frame_seen_ = false, progressive_ = false, arithmetic_ = false;
};

/// ImageError naming `name`, the marker and its offset unless the bytes run from SOI to an EOI through well-formed
/// segments (see the header). Bytes after EOI are allowed (cameras append data there).
inline void check_jpeg_markers(std::span<const std::uint8_t> bytes, std::string_view name) {
  const std::string file = "JPEG file '" + std::string(name) + "'";
  if (!has_jpeg_signature(bytes)) throw ImageError(file + ": does not start with the JPEG SOI marker FF D8");
  JpegTables tables(file);
  const std::size_t n = bytes.size();
  std::size_t pos = 2;
  int scans = 0;
  while (pos < n) {
    if (bytes[pos] != 0xFF)
      throw ImageError(file + ": expected a marker at byte " + std::to_string(pos) + ", found byte " + std::to_string(bytes[pos]));
    while (pos < n && bytes[pos] == 0xFF) ++pos;  // fill bytes may precede any marker
    if (pos >= n) break;
    const std::uint8_t m = bytes[pos++];
    const std::size_t at = pos - 2;
    if (m == 0xD9) return;                                // EOI
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // TEM, RSTn: no payload
    if (m == 0x00 || m == 0xD8)
      throw ImageError(file + ": unexpected marker " + JpegTables::marker_name(m) + " at byte " + std::to_string(at));
    if (n - pos < 2) break;
    const std::size_t length = (std::size_t{bytes[pos]} << 8) | bytes[pos + 1];
    if (length < 2)
      throw ImageError(file + ": segment " + JpegTables::marker_name(m) + " at byte " + std::to_string(at) + " has length " +
                       std::to_string(length) + " (at least 2)");
    if (length > n - pos)
      throw ImageError(file + ": truncated: segment " + JpegTables::marker_name(m) + " at byte " + std::to_string(at) +
                       " declares " + std::to_string(length) + " bytes but only " + std::to_string(n - pos) + " remain");
    const auto payload = bytes.subspan(pos + 2, length - 2);
    if (m == 0xC4) tables.huffman(payload, at);
    else if (m == 0xDB) tables.quantisation(payload, at);
    else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) tables.frame(payload, at, m);
    else if (m == 0xDA) tables.scan(payload, at);
    pos += length;
    if (m != 0xDA) continue;  // SOS: the entropy-coded data follows, up to the next real marker
    ++scans;
    while (pos < n) {
      if (bytes[pos] != 0xFF) {
        ++pos;
        continue;
      }
      if (pos + 1 >= n) break;
      const std::uint8_t next = bytes[pos + 1];
      if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) pos += 2;  // stuffed FF, restart marker
      else if (next == 0xFF) ++pos;
      else break;
    }
    if (pos + 1 >= n)
      throw ImageError(file + ": truncated: the file ends inside the compressed data of scan " + std::to_string(scans) +
                       ", before the end-of-image marker FF D9");
  }
  throw ImageError(file + ": truncated: the file ends at byte " + std::to_string(n) + " before the end-of-image marker FF D9");
}

}  // namespace detail
LATENTKIT_NAMESPACE_END
