// The CLIP BPE vocabulary: token strings by id and merges by rank, read from openai's
// bpe_simple_vocab_16e6.txt.gz or from a Hugging Face tokenizer folder (vocab.json + merges.txt), and the
// default places where latentkit looks for one.
#pragma once
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/tokenizers/unicode.hpp"

LATENTKIT_NAMESPACE_BEGIN

namespace detail {
constexpr bool printable_byte(unsigned x) noexcept { return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255); }
// The 68 bytes outside the printable set, in byte order: they become U+0100 + their index here.
constexpr std::array<std::uint8_t, 68> unprintable_bytes() noexcept {
  std::array<std::uint8_t, 68> out{};
  std::size_t n = 0;
  for (unsigned b = 0; b < 256; ++b)
    if (!printable_byte(b)) out[n++] = static_cast<std::uint8_t>(b);
  return out;
}
}  // namespace detail

/// GPT-2/CLIP byte-level alphabet: byte b <-> one printable code point (printable Latin-1 bytes map to themselves,
/// the 68 others to U+0100 + n in byte order), so that BPE never sees whitespace or control characters.
inline char32_t byte_to_unicode(std::uint8_t b) noexcept {
  if (detail::printable_byte(b)) return b;
  constexpr auto table = detail::unprintable_bytes();
  std::size_t n = 0;
  while (table[n] != b) ++n;
  return static_cast<char32_t>(256 + n);
}

/// Inverse of byte_to_unicode; -1 for a code point outside the alphabet.
inline int unicode_to_byte(char32_t c) noexcept {
  if (c < 256) return detail::printable_byte(static_cast<unsigned>(c)) ? static_cast<int>(c) : -1;
  if (c >= 256 + 68) return -1;
  constexpr auto table = detail::unprintable_bytes();
  return table[c - 256];
}

struct ClipVocabulary {
  std::vector<std::string> tokens;                              ///< id -> token (UTF-8 of byte-level symbols)
  std::vector<std::pair<std::string, std::string>> merges;      ///< merge rank -> (left, right)
  std::string source;                                           ///< where it was read from (for messages)

  /// openai's bpe_simple_vocab_16e6.txt.gz: as clip/simple_tokenizer.py, merges = lines 1..48894 of the file;
  /// vocabulary = 256 byte symbols, the same with "</w>", one token per merge, <|startoftext|>, <|endoftext|>.
  static ClipVocabulary from_bpe_gz(const std::filesystem::path& path);
  /// A Hugging Face CLIPTokenizer folder (or the path of its vocab.json): vocab.json {token: id} and merges.txt
  /// (an optional "#version" first line, then "left right" per line, in rank order).
  static ClipVocabulary from_hf_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);
  /// A .gz file, a vocab.json, or a folder holding either (also a model folder's tokenizer/ subfolder).
  static ClipVocabulary load(const std::filesystem::path& path);
};

namespace detail {

inline std::string gunzip_file(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path)) throw IoError(path.string() + ": no such file (CLIP BPE vocabulary)");
  {
    // zlib would read a plain file transparently; Python's gzip refuses it, and so do we.
    std::ifstream probe(path, std::ios::binary);
    char magic[2] = {0, 0};
    probe.read(magic, 2);
    if (probe.gcount() != 2 || static_cast<unsigned char>(magic[0]) != 0x1F || static_cast<unsigned char>(magic[1]) != 0x8B)
      throw FormatError(path.string() + ": not a gzip file (expected bpe_simple_vocab_16e6.txt.gz)");
  }
  gzFile f = gzopen(path.string().c_str(), "rb");
  if (!f) throw IoError(path.string() + ": cannot open (CLIP BPE vocabulary)");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int got = gzread(f, buf, sizeof buf);
    if (got < 0) {
      int code = 0;
      std::string what = gzerror(f, &code);
      gzclose(f);
      throw FormatError(path.string() + ": not a valid gzip stream (" + what + ")");
    }
    if (got == 0) break;
    out.append(buf, static_cast<std::size_t>(got));
    if (out.size() > (std::size_t{1} << 30)) {
      gzclose(f);
      throw FormatError(path.string() + ": decompresses to more than 1 GiB; not a BPE vocabulary");
    }
  }
  gzclose(f);
  return out;
}

inline std::string read_file(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open (" + std::string(what) + ")");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Splits on Python's str.split() whitespace; a merge line must have exactly two parts.
inline std::pair<std::string, std::string> parse_merge_line(std::string_view line, const std::string& file, std::size_t lineno) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\v' || line[i] == '\f')) ++i;
    std::size_t b = i;
    while (i < line.size() && !(line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\v' || line[i] == '\f')) ++i;
    if (i > b) parts.push_back(line.substr(b, i - b));
  }
  if (parts.size() != 2)
    throw FormatError(file + ": line " + std::to_string(lineno) + ": expected a merge \"left right\", got \"" +
                      std::string(line.substr(0, 80)) + "\"");
  return {std::string(parts[0]), std::string(parts[1])};
}

}  // namespace detail

inline ClipVocabulary ClipVocabulary::from_bpe_gz(const std::filesystem::path& path) {
  const std::string text = detail::gunzip_file(path);
  ClipVocabulary v;
  v.source = path.string();
  constexpr std::size_t merge_count = 49152 - 256 - 2;  // the slice simple_tokenizer.py takes
  std::size_t pos = 0, lineno = 0;
  while (pos <= text.size() && v.merges.size() < merge_count) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (lineno >= 1) v.merges.push_back(detail::parse_merge_line(std::string_view(text).substr(pos, nl - pos), v.source, lineno + 1));
    ++lineno;
    pos = nl + 1;
    if (nl == text.size()) break;
  }
  if (v.merges.empty()) throw FormatError(v.source + ": no merges found (expected a version line, then \"left right\" lines)");
  // Byte symbols in bytes_to_unicode() order: the printable bytes first, then the 68 others.
  std::string sym;
  for (int pass = 0; pass < 2; ++pass)
    for (unsigned b = 0; b < 256; ++b) {
      if (detail::printable_byte(b) != (pass == 0)) continue;
      sym.clear();
      unicode::append_utf8(sym, byte_to_unicode(static_cast<std::uint8_t>(b)));
      v.tokens.push_back(sym);
    }
  for (std::size_t i = 0; i < 256; ++i) v.tokens.push_back(v.tokens[i] + "</w>");
  for (const auto& [l, r] : v.merges) v.tokens.push_back(l + r);
  v.tokens.emplace_back("<|startoftext|>");
  v.tokens.emplace_back("<|endoftext|>");
  return v;
}

inline ClipVocabulary ClipVocabulary::from_hf_files(const std::filesystem::path& vocab_json,
                                                    const std::filesystem::path& merges_txt) {
  ClipVocabulary v;
  v.source = vocab_json.string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(detail::read_file(vocab_json, "CLIP vocab.json"));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(vocab_json.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object() || j.empty()) throw FormatError(vocab_json.string() + ": expected a non-empty object {token: id}");
  if (j.size() > (std::size_t{1} << 24)) throw FormatError(vocab_json.string() + ": more than 2^24 tokens");
  v.tokens.assign(j.size(), std::string());
  std::vector<bool> seen(j.size(), false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer())
      throw FormatError(vocab_json.string() + ": key \"" + it.key() + "\": expected an integer id");
    const auto id = it.value().get<std::int64_t>();
    if (id < 0 || static_cast<std::size_t>(id) >= j.size() || seen[static_cast<std::size_t>(id)])
      throw FormatError(vocab_json.string() + ": key \"" + it.key() + "\": id " + std::to_string(id) +
                        " is out of range or repeated (ids must be 0.." + std::to_string(j.size() - 1) + ", each once)");
    seen[static_cast<std::size_t>(id)] = true;
    v.tokens[static_cast<std::size_t>(id)] = it.key();
  }
  const std::string text = detail::read_file(merges_txt, "CLIP merges.txt");
  std::size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line = std::string_view(text).substr(pos, nl - pos);
    ++lineno;
    pos = nl + 1;
    if (lineno == 1 && line.starts_with("#version")) continue;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    v.merges.push_back(detail::parse_merge_line(line, merges_txt.string(), lineno));
  }
  if (v.merges.empty()) throw FormatError(merges_txt.string() + ": no merges found");
  return v;
}

inline ClipVocabulary ClipVocabulary::load(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    for (const fs::path& dir : {path, path / "tokenizer"}) {
      if (fs::is_regular_file(dir / "bpe_simple_vocab_16e6.txt.gz")) return from_bpe_gz(dir / "bpe_simple_vocab_16e6.txt.gz");
      if (fs::is_regular_file(dir / "vocab.json") && fs::is_regular_file(dir / "merges.txt"))
        return from_hf_files(dir / "vocab.json", dir / "merges.txt");
    }
    throw IoError(path.string() + ": folder holds no CLIP vocabulary (expected bpe_simple_vocab_16e6.txt.gz, or "
                                  "vocab.json + merges.txt, there or in tokenizer/)");
  }
  if (!fs::is_regular_file(path)) throw IoError(path.string() + ": no such file or folder (CLIP vocabulary)");
  if (path.extension() == ".json") {
    const fs::path merges = path.parent_path() / "merges.txt";
    if (!fs::is_regular_file(merges)) throw IoError(merges.string() + ": missing (needed beside " + path.filename().string() + ")");
    return from_hf_files(path, merges);
  }
  return from_bpe_gz(path);
}

/// The places searched, in order, when no vocabulary path is given:
///   1. $LATENTKIT_TOKENIZER (a .gz file, a vocab.json, or a folder holding one of them),
///   2. $XDG_CACHE_HOME/latentkit, else $HOME/.cache/latentkit,
///   3. /usr/local/share/latentkit, /usr/share/latentkit.
inline std::vector<std::filesystem::path> clip_vocabulary_search_path() {
  std::vector<std::filesystem::path> out;
  if (const char* env = std::getenv("LATENTKIT_TOKENIZER"); env && *env) out.emplace_back(env);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    out.push_back(std::filesystem::path(xdg) / "latentkit");
  else if (const char* home = std::getenv("HOME"); home && *home)
    out.push_back(std::filesystem::path(home) / ".cache" / "latentkit");
  out.emplace_back("/usr/local/share/latentkit");
  out.emplace_back("/usr/share/latentkit");
  return out;
}

/// The first existing vocabulary on clip_vocabulary_search_path(); IoError listing every place tried otherwise.
inline std::filesystem::path find_clip_vocabulary() {
  namespace fs = std::filesystem;
  std::string tried;
  for (const auto& p : clip_vocabulary_search_path()) {
    tried += "\n  " + p.string();
    if (fs::is_regular_file(p)) return p;
    if (fs::is_directory(p)) {
      for (const fs::path& dir : {p, p / "tokenizer"}) {
        if (fs::is_regular_file(dir / "bpe_simple_vocab_16e6.txt.gz")) return dir / "bpe_simple_vocab_16e6.txt.gz";
        if (fs::is_regular_file(dir / "vocab.json") && fs::is_regular_file(dir / "merges.txt")) return dir / "vocab.json";
      }
    }
  }
  throw IoError("no CLIP tokenizer vocabulary found; looked in:" + tried +
                "\nProvide one: set LATENTKIT_TOKENIZER to openai's bpe_simple_vocab_16e6.txt.gz or to a Hugging Face "
                "tokenizer/ folder (vocab.json + merges.txt), or copy one of them into ~/.cache/latentkit/");
}

LATENTKIT_NAMESPACE_END
