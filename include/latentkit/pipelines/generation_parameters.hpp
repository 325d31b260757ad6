// The generation parameters of an image as AUTOMATIC1111 writes them into the PNG "parameters" text (its
// infotext), so that the web UI, civitai and every other tool that reads A1111 PNGs can read ours:
//
//   a photograph of an astronaut riding a horse
//   Negative prompt: blurry, lowres
//   Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash:
//   6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.6, Clip skip: 2, RNG: CPU, Version: latentkit 0.1.0
//
// (the last line is one line). Writing follows modules/processing.py `create_infotext`: keys in its order, a key
// left out when A1111 leaves it out (Clip skip 1, the GPU noise source), values through `quote` (JSON-quoted when
// they hold a comma, a colon or a newline), the whole text stripped. Reading follows
// modules/infotext_utils.py `parse_generation_parameters`: the last line holds the parameters when its
// `key: value` regex finds at least three of them, earlier lines are the prompt up to a line starting with
// "Negative prompt:", quoted values are JSON-decoded. Where that regex would lose a value, writing quotes it too
// (empty values, values starting with a quote or with white space, values ending with white space or holding a
// control character); A1111 reads those back unchanged. Numbers are written as Python's repr writes them, except that integral values lose their
// ".0", as the web UI's sliders send them (CFG scale: 7).
#pragma once
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN

#define LATENTKIT_GP_STR_(x) #x
#define LATENTKIT_GP_STR(x) LATENTKIT_GP_STR_(x)
/// What latentkit writes as "Version" (A1111 writes its own version, e.g. v1.10.1).
inline constexpr std::string_view latentkit_version_label =
    "latentkit " LATENTKIT_GP_STR(LATENTKIT_VERSION_MAJOR) "." LATENTKIT_GP_STR(LATENTKIT_VERSION_MINOR) "." LATENTKIT_GP_STR(
        LATENTKIT_VERSION_PATCH);
#undef LATENTKIT_GP_STR
#undef LATENTKIT_GP_STR_

/// One image's parameters, with A1111's labels in the comments. Defaults are what A1111 assumes when a key is
/// missing.
struct GenerationParameters {
  std::string prompt, negative_prompt;       // "Negative prompt:" line only when non-empty
  int steps = 20;                            // Steps
  std::string sampler;                       // Sampler: A1111's label, e.g. "DPM++ 2M", "Euler a"
  std::string schedule;                      // Schedule type: e.g. "Karras", "Automatic"
  double cfg_scale = 7.0;                    // CFG scale
  std::int64_t seed = -1;                    // Seed
  int width = 512, height = 512;             // Size: WxH
  std::string model_hash, model_name;        // Model hash (a1111_model_hash), Model
  std::optional<double> denoising_strength;  // Denoising strength (img2img)
  int clip_skip = 1;                         // Clip skip: written only when > 1
  std::string rng;                           // RNG: "CPU" or "NV"; empty (or "GPU", the default) is not written
  std::string version = std::string(latentkit_version_label);  // Version; parsing leaves it empty when absent
  std::vector<std::pair<std::string, std::string>> extra;      // every other key, in order, values unquoted
};

namespace detail {

inline bool a1111_space(char c) noexcept {  // Python's str.isspace for the ASCII range (\x1c-\x1f included)
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}
inline std::string_view a1111_strip(std::string_view s) noexcept {
  while (!s.empty() && a1111_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && a1111_space(s.back())) s.remove_suffix(1);
  return s;
}
/// Python's \w on UTF-8 bytes: ASCII letters, digits and '_', and every non-ASCII character.
inline bool a1111_word(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') || u == '_';
}
inline bool a1111_key_char(char c) noexcept { return a1111_word(c) || c == ' ' || c == '-' || c == '/'; }
inline bool utf8_continuation(char c) noexcept { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

/// A value as `quote` writes it: JSON (non-ASCII kept) when it holds ',', ':' or '\n', and in the cases the
/// header lists where the reading regex would otherwise change it (and for any control character: a '\r' would
/// not survive readers that translate line ends).
inline std::string a1111_quote(std::string_view v) {
  bool needs = v.empty() || v.front() == '"' || a1111_space(v.front()) || a1111_space(v.back());
  for (const char c : v) needs = needs || c == ',' || c == ':' || static_cast<unsigned char>(c) < 0x20;
  if (!needs) return std::string(v);
  std::string out = "\"";
  for (const char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xF];
          out += hex[c & 0xF];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

/// `unquote`: a value in double quotes is JSON-decoded; one that does not decode stays as it is.
inline std::string a1111_unquote(std::string_view v) {
  if (v.empty() || v.front() != '"' || v.back() != '"') return std::string(v);
  try {
    const auto j = nlohmann::json::parse(v);
    if (j.is_string()) return j.get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  return std::string(v);
}

/// Python's repr of a float, but integral values without ".0" (see the header).
inline std::string a1111_number(double x) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));
  const auto e = sci.find('e');
  int exponent = 0;
  if (e != std::string_view::npos) std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'), sci.data() + sci.size(), exponent);
  if (e == std::string_view::npos || exponent < -4 || exponent >= 16) return std::string(sci);  // nan, inf, 1e-05, 1e+16
  r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

/// One `key: value` match of `re_param` (\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)) at `pos`.
struct ParamMatch {
  std::string_view key, value;
  std::size_t end = 0;
};

inline std::optional<ParamMatch> a1111_match_at(std::string_view s, std::size_t pos) {
  std::size_t i = pos;
  while (i < s.size() && a1111_space(s[i])) ++i;
  if (i >= s.size() || !a1111_word(s[i]) || utf8_continuation(s[i])) return std::nullopt;
  std::size_t j = i + 1, chars = 1;
  for (; j < s.size() && a1111_key_char(s[j]); ++j) chars += utf8_continuation(s[j]) ? 0u : 1u;
  if (chars < 2 || j >= s.size() || s[j] != ':') return std::nullopt;
  ParamMatch m;
  m.key = s.substr(i, j - i);
  std::size_t k = j + 1;
  while (k < s.size() && a1111_space(s[k])) ++k;
  if (k < s.size() && s[k] == '"') {  // first alternative: a quoted string followed by ',' or the end
    std::size_t q = k + 1;
    while (q < s.size() && s[q] != '"') {
      if (s[q] == '\\') {
        if (q + 1 >= s.size() || s[q + 1] == '\n') break;
        q += 2;
      } else {
        ++q;
      }
    }
    if (q < s.size() && s[q] == '"' && q > k + 1 && (q + 1 == s.size() || s[q + 1] == ',')) {
      m.value = s.substr(k, q + 1 - k);
      m.end = q + 1 == s.size() ? s.size() : q + 2;
      return m;
    }
  }
  const std::size_t comma = s.find(',', k);  // second alternative: everything up to the next comma
  const std::size_t stop = comma == std::string_view::npos ? s.size() : comma;
  m.value = s.substr(k, stop - k);
  m.end = comma == std::string_view::npos ? s.size() : comma + 1;
  return m;
}

/// `re_param.findall(line)`.
inline std::vector<ParamMatch> a1111_find_params(std::string_view line) {
  std::vector<ParamMatch> out;
  for (std::size_t pos = 0; pos < line.size();) {
    if (auto m = a1111_match_at(line, pos)) {
      pos = m->end;
      out.push_back(*m);
    } else {
      ++pos;
    }
  }
  return out;
}

[[noreturn]] inline void a1111_bad_value(std::string_view key, std::string_view value, const char* expected) {
  throw FormatError("A1111 parameters: '" + std::string(key) + "' is '" + std::string(value) + "'; expected " + expected);
}

template <class T>
T a1111_parse_number(std::string_view key, std::string_view value, const char* expected) {
  const std::string_view v = a1111_strip(value);
  T out{};
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size()) a1111_bad_value(key, value, expected);
  return out;
}

inline bool a1111_known_key(std::string_view k) noexcept {
  for (std::string_view known : {"Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model",
                                 "Denoising strength", "Clip skip", "RNG", "Version", "Prompt", "Negative prompt"})
    if (k == known) return true;
  return false;
}

}  // namespace detail

/// The infotext of `p`, as A1111 writes it (see the header). FormatError when an extra key could not be read back
/// (it must be a word character followed by word characters, spaces, '-' or '/', and not a field's own key).
inline std::string format_a1111_parameters(const GenerationParameters& p) {
  std::vector<std::pair<std::string, std::string>> kv;
  auto add = [&](std::string key, std::string value) { kv.emplace_back(std::move(key), std::move(value)); };
  add("Steps", std::to_string(p.steps));
  if (!p.sampler.empty()) add("Sampler", p.sampler);
  if (!p.schedule.empty()) add("Schedule type", p.schedule);
  add("CFG scale", detail::a1111_number(p.cfg_scale));
  add("Seed", std::to_string(p.seed));
  add("Size", std::to_string(p.width) + "x" + std::to_string(p.height));
  if (!p.model_hash.empty()) add("Model hash", p.model_hash);
  if (!p.model_name.empty()) add("Model", p.model_name);
  if (p.denoising_strength) add("Denoising strength", detail::a1111_number(*p.denoising_strength));
  if (p.clip_skip > 1) add("Clip skip", std::to_string(p.clip_skip));
  if (!p.rng.empty() && p.rng != "GPU") add("RNG", p.rng);
  for (const auto& [key, value] : p.extra) {
    const std::string probe = key + ": x";  // the key must read back whole
    const auto m = detail::a1111_match_at(probe, 0);
    if (!m || m->key != key || detail::a1111_known_key(key))
      throw FormatError("A1111 parameters: extra key '" + key + "' cannot be written: " +
                        (m && m->key == key ? "it names a field of GenerationParameters" : "it must be a letter, digit or '_' then letters, digits, '_', ' ', '-' or '/'"));
    add(key, value);
  }
  if (!p.version.empty()) add("Version", p.version);

  std::string line;
  for (const auto& [key, value] : kv) {
    if (!line.empty()) line += ", ";
    line += key == value ? key : key + ": " + detail::a1111_quote(value);  // A1111 writes a flag as its bare key
  }
  std::string text = p.prompt;
  if (!p.negative_prompt.empty()) text += "\nNegative prompt: " + p.negative_prompt;
  text += "\n" + line;
  return std::string(detail::a1111_strip(text));
}

/// Reads an infotext (the inverse of format_a1111_parameters, and what A1111's "PNG Info" tab reads). Missing keys
/// keep the defaults of GenerationParameters (version: empty); unknown keys go to `extra` in order. FormatError
/// naming the key when Steps, CFG scale, Seed, Size, Denoising strength or Clip skip is not a number of its kind.
inline GenerationParameters parse_a1111_parameters(std::string_view text) {
  using namespace detail;
  GenerationParameters p;
  p.version.clear();
  std::vector<std::string_view> lines;
  const std::string_view all = a1111_strip(text);
  for (std::size_t start = 0;;) {
    const std::size_t nl = all.find('\n', start);
    lines.push_back(all.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  std::vector<ParamMatch> params = a1111_find_params(lines.back());
  if (params.size() < 3) params.clear();
  else lines.pop_back();

  bool negative = false;
  for (std::string_view line : lines) {
    line = a1111_strip(line);
    if (line.starts_with("Negative prompt:")) {
      negative = true;
      line = a1111_strip(line.substr(16));
    }
    std::string& target = negative ? p.negative_prompt : p.prompt;
    if (!target.empty()) target += '\n';
    target += line;
  }

  for (const auto& m : params) {
    if (m.value.empty()) continue;  // A1111 drops these (its v[0] test fails on them)
    const std::string value = a1111_unquote(m.value);
    const std::string_view k = m.key;
    if (k == "Steps") p.steps = a1111_parse_number<int>(k, value, "an integer");
    else if (k == "Sampler") p.sampler = value;
    else if (k == "Schedule type") p.schedule = value;
    else if (k == "CFG scale") p.cfg_scale = a1111_parse_number<double>(k, value, "a number");
    else if (k == "Seed") p.seed = a1111_parse_number<std::int64_t>(k, value, "an integer");
    else if (k == "Size") {
      const auto x = value.find('x');
      if (x == std::string::npos || x == 0 || x + 1 == value.size() ||
          value.find_first_not_of("0123456789x") != std::string::npos || value.find('x', x + 1) != std::string::npos)
        a1111_bad_value(k, value, "WIDTHxHEIGHT");
      p.width = a1111_parse_number<int>(k, std::string_view(value).substr(0, x), "WIDTHxHEIGHT");
      p.height = a1111_parse_number<int>(k, std::string_view(value).substr(x + 1), "WIDTHxHEIGHT");
    } else if (k == "Model hash") p.model_hash = value;
    else if (k == "Model") p.model_name = value;
    else if (k == "Denoising strength") p.denoising_strength = a1111_parse_number<double>(k, value, "a number");
    else if (k == "Clip skip") p.clip_skip = a1111_parse_number<int>(k, value, "an integer");
    else if (k == "RNG") p.rng = value;
    else if (k == "Version") p.version = value;
    else if (k == "Prompt") p.prompt = value;  // A1111 lets these keys override the lines above, too
    else if (k == "Negative prompt") p.negative_prompt = value;
    else {
      bool replaced = false;  // a repeated key keeps its first place and its last value, as a Python dict
      for (auto& [key, v] : p.extra)
        if (key == k) v = value, replaced = true;
      if (!replaced) p.extra.emplace_back(std::string(k), value);
    }
  }
  return p;
}

LATENTKIT_NAMESPACE_END
