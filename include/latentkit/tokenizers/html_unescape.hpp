// html.unescape with Python 3.11's rules: numeric references (&#65; &#x41;, ';' optional, Windows-1252 fix-ups
// for 0x80..0x9F, U+FFFD for 0, surrogates and values above U+10FFFF, nothing for the other invalid code points),
// and named references with the full HTML5 table, including the longest-prefix rule for legacy names written
// without ';' ("&ampx" -> "&x", "&notit;" -> "¬it;").
#pragma once
#include <string>
#include <string_view>

#include "latentkit/config/config.hpp"
#include "latentkit/tokenizers/html_entities.hpp"
#include "latentkit/tokenizers/unicode.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace html {

namespace detail {

// Python html._invalid_charrefs: what the HTML5 parser substitutes for a few numeric references.
inline char32_t numeric_fixup(std::uint32_t n, bool& replaced) noexcept {
  static constexpr char32_t cp1252[32] = {0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021,
                                          0x2C6,  0x2030, 0x160,  0x2039, 0x152,  0x8D,   0x17D,  0x8F,
                                          0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                          0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};
  replaced = true;
  if (n == 0) return unicode::replacement_character;
  if (n == 0x0D) return U'\r';
  if (n >= 0x80 && n <= 0x9F) return cp1252[n - 0x80];
  replaced = false;
  return 0;
}

// Python html._invalid_codepoints: references to these expand to nothing.
inline bool is_dropped_codepoint(std::uint32_t n) noexcept {
  return (n >= 0x1 && n <= 0x8) || n == 0xB || (n >= 0xE && n <= 0x1F) || (n >= 0x7F && n <= 0x9F) ||
         (n >= 0xFDD0 && n <= 0xFDEF) || (n <= 0x10FFFF && (n & 0xFFFE) == 0xFFFE);
}

inline bool is_ascii_digit(char32_t c) noexcept { return c >= U'0' && c <= U'9'; }
inline int hex_value(char32_t c) noexcept {
  if (c >= U'0' && c <= U'9') return static_cast<int>(c - U'0');
  if (c >= U'a' && c <= U'f') return static_cast<int>(c - U'a' + 10);
  if (c >= U'A' && c <= U'F') return static_cast<int>(c - U'A' + 10);
  return -1;
}
// Characters that end a named reference: [^\t\n\f <&#;]
inline bool ends_name(char32_t c) noexcept {
  return c == U'\t' || c == U'\n' || c == U'\f' || c == U' ' || c == U'<' || c == U'&' || c == U'#' || c == U';';
}

inline void append_entity(std::u32string& out, std::string_view utf8) {
  const std::u32string s = unicode::decode_utf8(utf8);
  out += s;
}

}  // namespace detail

/// One pass of Python's html.unescape over code points. (The CLIP tokenizer applies it twice.)
/// A decimal reference with more digits than Python 3.11 converts (4300) gives U+FFFD here, where Python raises.
inline std::u32string unescape(std::u32string_view s) {
  if (s.find(U'&') == std::u32string_view::npos) return std::u32string(s);
  std::u32string out;
  out.reserve(s.size());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    const std::size_t amp = i;
    std::size_t j = amp + 1;
    if (j < n && s[j] == U'#') {
      // &#[0-9]+;?  or  &#[xX][0-9a-fA-F]+;?
      const bool hex = j + 1 < n && (s[j + 1] == U'x' || s[j + 1] == U'X');
      std::size_t k = j + (hex ? 2 : 1);
      const std::size_t digits_begin = k;
      std::uint64_t value = 0;
      while (k < n && (hex ? detail::hex_value(s[k]) >= 0 : detail::is_ascii_digit(s[k]))) {
        const std::uint64_t d = hex ? static_cast<std::uint64_t>(detail::hex_value(s[k])) : s[k] - U'0';
        value = value > 0x10FFFF ? value : value * (hex ? 16 : 10) + d;  // saturate: only "too big" matters
        ++k;
      }
      if (k == digits_begin) {  // "&#" or "&#x" without digits: not a reference
        out.push_back(s[i++]);
        continue;
      }
      if (k < n && s[k] == U';') ++k;
      bool fixed = false;
      const auto v = static_cast<std::uint32_t>(value > 0x10FFFF ? 0x110000 : value);
      const char32_t f = detail::numeric_fixup(v, fixed);
      if (fixed) {
        out.push_back(f);
      } else if ((v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) {
        out.push_back(unicode::replacement_character);
      } else if (!detail::is_dropped_codepoint(v)) {
        out.push_back(static_cast<char32_t>(v));
      }
      i = k;
      continue;
    }
    // Named: [^\t\n\f <&#;]{1,32};?
    std::size_t k = j;
    while (k < n && k - j < 32 && !detail::ends_name(s[k])) ++k;
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    const bool semicolon = k < n && s[k] == U';';
    const std::size_t end = semicolon ? k + 1 : k;
    const std::string name = unicode::encode_utf8(s.substr(j, end - j));
    if (const auto* e = find_named_entity(name)) {
      detail::append_entity(out, e->utf8);
      i = end;
      continue;
    }
    // Longest prefix (at least two characters) that is a known name; the rest stays literal.
    const std::u32string_view body = s.substr(j, end - j);
    bool found = false;
    for (std::size_t len = body.size() - 1; len >= 2; --len) {
      if (const auto* e = find_named_entity(unicode::encode_utf8(body.substr(0, len)))) {
        detail::append_entity(out, e->utf8);
        out.append(body.substr(len));
        found = true;
        break;
      }
    }
    if (!found) {
      out.push_back(U'&');
      out.append(body);
    }
    i = end;
  }
  return out;
}

}  // namespace html
LATENTKIT_NAMESPACE_END
