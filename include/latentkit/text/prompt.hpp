// Prompt emphasis syntax as AUTOMATIC1111's webui parses it (modules/prompt_parser.py, parse_prompt_attention):
// "(word)" x1.1, "[word]" /1.1, "(word:1.3)" x1.3, nesting multiplies, "\(" "\)" "\[" "\]" "\\" are literals,
// unbalanced brackets apply to the end of the prompt, "BREAK" (a whole word) starts a new 75-token chunk.
#pragma once
#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/tokenizers/unicode.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// A run of prompt text with one attention weight. A BREAK is the fragment {"BREAK", -1}, exactly as A1111
/// represents it (so a BREAK inside brackets gets its weight scaled and, as in A1111, is no longer a BREAK).
struct PromptFragment {
  std::string text;  ///< UTF-8
  double weight = 1.0;
  bool is_break() const noexcept { return weight == -1.0 && text == "BREAK"; }
  friend bool operator==(const PromptFragment&, const PromptFragment&) = default;
};

namespace detail {

// re.split(r"\s*\bBREAK\b\s*", piece): \s is str.isspace(), \b is a word/non-word boundary within the piece.
inline std::vector<std::u32string> split_on_break(std::u32string_view s) {
  static constexpr std::u32string_view keyword = U"BREAK";
  std::vector<std::u32string> parts;
  std::size_t part_begin = 0, p = 0;
  const std::size_t n = s.size();
  while (p < n) {
    std::size_t q = p;
    while (q < n && unicode::is_python_space(s[q])) ++q;
    const bool starts = s.substr(q, keyword.size()) == keyword && (q == 0 || !unicode::is_word(s[q - 1]));
    const std::size_t r = q + keyword.size();
    if (starts && (r == n || !unicode::is_word(s[r]))) {
      std::size_t e = r;
      while (e < n && unicode::is_python_space(s[e])) ++e;
      parts.emplace_back(s.substr(part_begin, p - part_begin));
      part_begin = p = e;
      continue;
    }
    // Every start inside the same whitespace run reaches the same q: skip past it.
    p = q > p ? q : p + 1;
  }
  parts.emplace_back(s.substr(part_begin));
  return parts;
}

// Python float() of a string matched by [+-]?[.\d]+ (\d = any Unicode decimal digit).
inline double parse_prompt_weight(std::u32string_view w, std::u32string_view context) {
  std::string ascii;
  int dots = 0, digits = 0;
  for (char32_t c : w) {
    if (c == U'+' || c == U'-' || c == U'.') {
      dots += c == U'.';
      if (c != U'+') ascii.push_back(static_cast<char>(c));
      continue;
    }
    ascii.push_back(static_cast<char>('0' + unicode::decimal_digit_value(c)));
    ++digits;
  }
  double value = 0;
  const auto [ptr, ec] = std::from_chars(ascii.data(), ascii.data() + ascii.size(), value);
  if (dots > 1 || digits == 0 || ec != std::errc() || ptr != ascii.data() + ascii.size())
    throw FormatError("prompt: in \"" + unicode::encode_utf8(context) + "\" the weight \"" + unicode::encode_utf8(w) +
                      "\" is not a number (A1111 rejects it too)");
  return value;
}

}  // namespace detail

/// Splits a prompt into (text, weight) fragments; runs of equal weight are merged, an empty prompt gives {"", 1}.
/// Throws FormatError for a weight such as "(a:1.2.3)" that Python's float() rejects.
inline std::vector<PromptFragment> parse_prompt_attention(std::string_view prompt) {
  const std::u32string s = unicode::decode_utf8(prompt);
  struct Frag {
    std::u32string text;
    double weight;
  };
  std::vector<Frag> res;
  std::vector<std::size_t> round, square;
  constexpr double round_multiplier = 1.1;
  constexpr double square_multiplier = 1 / 1.1;
  auto multiply_range = [&](std::size_t start, double m) {
    for (std::size_t p = start; p < res.size(); ++p) res[p].weight *= m;
  };
  auto push_text = [&](std::u32string_view text) {
    const auto parts = detail::split_on_break(text);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) res.push_back({U"BREAK", -1.0});
      res.push_back({parts[i], 1.0});
    }
  };
  auto is_syntax = [](char32_t c) { return c == U'\\' || c == U'(' || c == U')' || c == U'[' || c == U']' || c == U':'; };
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const char32_t c = s[i];
    if (c == U'\\') {
      // \( \) \[ \] \\ keep the character; a backslash before anything else vanishes.
      const bool escapes = i + 1 < n && (s[i + 1] == U'(' || s[i + 1] == U')' || s[i + 1] == U'[' || s[i + 1] == U']' || s[i + 1] == U'\\');
      res.push_back({escapes ? std::u32string(1, s[i + 1]) : std::u32string(), 1.0});
      i += escapes ? 2 : 1;
    } else if (c == U'(') {
      round.push_back(res.size());
      ++i;
    } else if (c == U'[') {
      square.push_back(res.size());
      ++i;
    } else if (c == U':') {
      // :\s*([+-]?[.\d]+)\s*\)
      std::size_t k = i + 1;
      while (k < n && unicode::is_python_space(s[k])) ++k;
      const std::size_t w_begin = k;
      if (k < n && (s[k] == U'+' || s[k] == U'-')) ++k;
      const std::size_t digits_begin = k;
      while (k < n && (s[k] == U'.' || unicode::decimal_digit_value(s[k]) >= 0)) ++k;
      const std::size_t w_end = k;
      while (k < n && unicode::is_python_space(s[k])) ++k;
      const bool weighted = w_end > digits_begin && k < n && s[k] == U')';
      if (weighted) {
        const std::u32string_view match = std::u32string_view(s).substr(i, k + 1 - i);
        if (!round.empty()) {
          const std::size_t start = round.back();
          round.pop_back();
          multiply_range(start, detail::parse_prompt_weight(std::u32string_view(s).substr(w_begin, w_end - w_begin), match));
        } else {
          push_text(match);
        }
        i = k + 1;
      } else {
        push_text(U":");
        ++i;
      }
    } else if (c == U')' && !round.empty()) {
      multiply_range(round.back(), round_multiplier);
      round.pop_back();
      ++i;
    } else if (c == U']' && !square.empty()) {
      multiply_range(square.back(), square_multiplier);
      square.pop_back();
      ++i;
    } else if (c == U')' || c == U']') {
      push_text(std::u32string_view(s).substr(i, 1));
      ++i;
    } else {
      std::size_t k = i;
      while (k < n && !is_syntax(s[k])) ++k;
      push_text(std::u32string_view(s).substr(i, k - i));
      i = k;
    }
  }
  for (std::size_t pos : round) multiply_range(pos, round_multiplier);
  for (std::size_t pos : square) multiply_range(pos, square_multiplier);
  if (res.empty()) res.push_back({U"", 1.0});
  // Merge runs of identical weights (in one pass; A1111 erases from a list).
  std::vector<PromptFragment> out;
  out.reserve(res.size());
  for (std::size_t k = 0; k < res.size();) {
    std::u32string text = std::move(res[k].text);
    std::size_t j = k + 1;
    while (j < res.size() && res[j].weight == res[k].weight) text += res[j++].text;
    out.push_back({unicode::encode_utf8(text), res[k].weight});
    k = j;
  }
  return out;
}

LATENTKIT_NAMESPACE_END
