// Unicode text helpers with Python's semantics, for tokenizers and the prompt parser: UTF-8 decoding with
// Python's errors="replace", str.isspace / regex `\s`, str.strip, str.lower (full mapping, final sigma) and the
// character classes of the CLIP pre-tokeniser. Character data comes from libutf8proc.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <utf8proc.h>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace unicode {

inline constexpr char32_t replacement_character = 0xFFFD;

/// Decodes UTF-8. Every maximal ill-formed subsequence (stray continuation byte, truncated sequence, overlong
/// form, surrogate, value above U+10FFFF) becomes one U+FFFD, exactly as Python's bytes.decode("utf-8", "replace").
inline std::u32string decode_utf8(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned b0 = s[i];
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int need = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    char32_t cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 1;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      cp = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;  // excludes UTF-16 surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      cp = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
      out.push_back(replacement_character);
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    bool ok = true;
    for (int k = 0; k < need; ++k, ++j) {
      const unsigned lo_k = k == 0 ? lo : 0x80, hi_k = k == 0 ? hi : 0xBF;
      if (j >= n || s[j] < lo_k || s[j] > hi_k) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (s[j] & 0x3F);
    }
    out.push_back(ok ? cp : replacement_character);
    i = j;  // on failure: resume at the byte that broke the sequence
  }
  return out;
}

inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

inline std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

inline utf8proc_category_t category(char32_t c) noexcept {
  return c > 0x10FFFF ? UTF8PROC_CATEGORY_CN : utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

/// The `regex` module's `\s` for str patterns: the Unicode White_Space property (no U+001C..U+001F).
inline bool is_regex_space(char32_t c) noexcept {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

/// Python's str.isspace() (also `\s` of the standard `re` module): White_Space plus U+001C..U+001F.
inline bool is_python_space(char32_t c) noexcept { return is_regex_space(c) || (c >= 0x1C && c <= 0x1F); }

/// \p{L}: general category L (Lu, Ll, Lt, Lm, Lo).
inline bool is_letter(char32_t c) noexcept {
  const auto k = category(c);
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
/// \p{N}: general category N (Nd, Nl, No).
inline bool is_number(char32_t c) noexcept {
  const auto k = category(c);
  return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}
/// Python re `\w` for str patterns: letters, numbers and '_'.
inline bool is_word(char32_t c) noexcept { return c == U'_' || is_letter(c) || is_number(c); }

/// Value of a decimal digit (category Nd, any script), or -1. Unicode assigns Nd digits in runs 0..9, so the
/// value is the distance to the start of the run, modulo 10.
inline int decimal_digit_value(char32_t c) noexcept {
  if (c >= U'0' && c <= U'9') return static_cast<int>(c - U'0');
  if (category(c) != UTF8PROC_CATEGORY_ND) return -1;
  char32_t start = c;
  while (start > 0 && category(start - 1) == UTF8PROC_CATEGORY_ND) --start;
  return static_cast<int>((c - start) % 10);
}

/// Python's str.strip() with no argument.
inline std::u32string_view strip(std::u32string_view s) noexcept {
  std::size_t b = 0, e = s.size();
  while (b < e && is_python_space(s[b])) ++b;
  while (e > b && is_python_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Case properties for the Final_Sigma rule. "Cased" = Lu/Ll/Lt or any character with a case mapping;
// "case-ignorable" = Mn/Me/Cf/Lm/Sk plus the Word_Break MidLetter/MidNumLet/Single_Quote characters.
inline bool is_cased(char32_t c) noexcept {
  const auto k = category(c);
  if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return true;
  const auto i = static_cast<utf8proc_int32_t>(c);
  return c <= 0x10FFFF && (utf8proc_tolower(i) != i || utf8proc_toupper(i) != i);
}
inline bool is_case_ignorable(char32_t c) noexcept {
  switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018: case 0x2019:
    case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default: break;
  }
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
         k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

/// Python's str.lower(): the simple lowercase mapping of each character, except the two rules CPython adds from
/// SpecialCasing.txt: U+0130 (İ) becomes "i" + U+0307, and U+03A3 (Σ) becomes final sigma U+03C2 when it ends a
/// cased word (a cased letter before it, none after it, skipping case-ignorable characters both ways).
inline std::u32string python_lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c < 0x80) {
      out.push_back((c >= U'A' && c <= U'Z') ? c + 32 : c);
    } else if (c == 0x130) {
      out.push_back(U'i');
      out.push_back(0x307);
    } else if (c == 0x3A3) {
      std::size_t j = i;
      while (j > 0 && is_case_ignorable(s[j - 1])) --j;
      bool final_sigma = j > 0 && is_cased(s[j - 1]);
      if (final_sigma) {
        std::size_t k = i + 1;
        while (k < s.size() && is_case_ignorable(s[k])) ++k;
        final_sigma = k == s.size() || !is_cased(s[k]);
      }
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
    } else if (c <= 0x10FFFF) {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace unicode
LATENTKIT_NAMESPACE_END
