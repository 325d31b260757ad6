// The CLIP byte-level BPE tokenizer, bit-compatible with openai's clip/simple_tokenizer.py (SD1) and
// open_clip's copy of it (SD2): text cleaning, pre-tokenisation, BPE by merge rank, special tokens, decoding, and
// the 77-token input rows that SD1 and OpenCLIP feed to their text encoders.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/tokenizers/clip_vocabulary.hpp"
#include "latentkit/tokenizers/html_unescape.hpp"
#include "latentkit/tokenizers/unicode.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Which literal spellings of the two special tokens the text may contain. Both map to the same ids
/// (49406/49407 in the CLIP vocabulary); only what counts as "the literal special token" differs.
enum class ClipFlavor {
  openai,     ///< "<|startoftext|>", "<|endoftext|>"  (openai CLIP, SD1, Hugging Face CLIPTokenizer)
  open_clip,  ///< "<start_of_text>", "<end_of_text>"  (open_clip.tokenize, SD2 / FrozenOpenCLIPEmbedder)
};

/// How a token row is padded after its end token.
enum class ClipPadding {
  end_token,  ///< SD1 (HF CLIPTokenizer for openai/clip-vit-large-patch14): pad with <|endoftext|> = 49407
  zero,       ///< OpenCLIP / SD2 (open_clip.tokenize): pad with 0
};

/// [bos] + ids + [eos] in a row of `context_length`, as SD1 and open_clip.tokenize build it: longer inputs keep
/// their first context_length - 2 ids and still end with eos; the rest is padding.
inline std::vector<std::int32_t> make_clip_input_row(std::span<const std::int32_t> ids, std::int32_t bos,
                                                     std::int32_t eos, ClipPadding padding,
                                                     std::size_t context_length = 77) {
  if (context_length < 2) throw ShapeError("CLIP input row: context_length must be at least 2, got " + std::to_string(context_length));
  std::vector<std::int32_t> row(context_length, padding == ClipPadding::end_token ? eos : 0);
  const std::size_t keep = std::min(ids.size(), context_length - 2);
  row[0] = bos;
  for (std::size_t i = 0; i < keep; ++i) row[i + 1] = ids[i];
  row[keep + 1] = eos;
  return row;
}

class ClipTokenizer {
 public:
  /// Validates the vocabulary: every byte symbol, with and without "</w>", every merge's parts and result, and
  /// the two special tokens must be present. Throws FormatError naming the source and the missing token.
  explicit ClipTokenizer(const ClipVocabulary& vocab, ClipFlavor flavor = ClipFlavor::openai);
  /// ClipVocabulary::load(path): a bpe_simple_vocab_16e6.txt.gz, a vocab.json (merges.txt beside it) or a folder.
  static ClipTokenizer load(const std::filesystem::path& path, ClipFlavor flavor = ClipFlavor::openai) {
    return ClipTokenizer(ClipVocabulary::load(path), flavor);
  }
  /// The first vocabulary on clip_vocabulary_search_path() ($LATENTKIT_TOKENIZER, ~/.cache/latentkit, ...).
  static ClipTokenizer load_default(ClipFlavor flavor = ClipFlavor::openai) { return load(find_clip_vocabulary(), flavor); }

  /// A moved-from tokenizer holds no vocabulary: encode/decode/tokens/token on it throw Error (never UB).
  ClipTokenizer(ClipTokenizer&&) noexcept = default;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept = default;

  /// Token ids of `text` (UTF-8; ill-formed bytes read as U+FFFD), without start/end tokens.
  /// Safe to call from several threads at once (the BPE cache is guarded by a mutex).
  std::vector<std::int32_t> encode(std::string_view text) const;
  /// simple_tokenizer.decode: token strings joined, mapped back to bytes, decoded as UTF-8 with U+FFFD for
  /// ill-formed bytes, every "</w>" replaced by a space. Throws UnknownNameError for an id outside the vocabulary.
  std::string decode(std::span<const std::int32_t> ids) const;
  /// The vocabulary strings of `ids` (byte-level symbols, e.g. "photo</w>").
  std::vector<std::string> tokens(std::span<const std::int32_t> ids) const;

  /// A 77-token row: SD1 pads with the end token, OpenCLIP with 0 (see make_clip_input_row).
  std::vector<std::int32_t> input_ids(std::string_view text, ClipPadding padding, std::size_t context_length = 77) const {
    const auto ids = encode(text);
    return make_clip_input_row(ids, bos_, eos_, padding, context_length);
  }
  /// SD1 conditioning input: [49406] + ids[:75] + [49407], padded to 77 with 49407.
  std::vector<std::int32_t> sd_input_ids(std::string_view text) const { return input_ids(text, ClipPadding::end_token); }
  /// SD2 / open_clip.tokenize: [49406] + ids[:75] + [49407], padded to 77 with 0.
  std::vector<std::int32_t> openclip_input_ids(std::string_view text) const { return input_ids(text, ClipPadding::zero); }

  std::int32_t bos_id() const noexcept { return bos_; }
  std::int32_t eos_id() const noexcept { return eos_; }
  std::size_t vocab_size() const noexcept { return id_to_token_.size(); }
  ClipFlavor flavor() const noexcept { return flavor_; }
  /// Id of a vocabulary string such as ",</w>", or nullopt.
  std::optional<std::int32_t> token_id(std::string_view token) const {
    auto it = token_to_id_.find(std::string(token));
    return it == token_to_id_.end() ? std::nullopt : std::optional<std::int32_t>(it->second);
  }
  const std::string& token(std::int32_t id) const { return id_to_token_.at(checked_index(id)); }

  /// The cleaning before pre-tokenisation: html.unescape twice, strip, runs of whitespace -> one space, strip,
  /// Python str.lower(). (ftfy.fix_text, which upstream runs first, is not applied.)
  static std::u32string normalize(std::string_view text);
  /// regex.findall of the CLIP pattern over normalized text:
  /// <special>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (IGNORECASE).
  std::vector<std::u32string_view> pretokenize(std::u32string_view normalized) const;

 private:
  struct Merge {
    std::int32_t rank;
    std::int32_t merged;
  };
  struct Cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<std::int32_t>> words;
  };
  static constexpr std::size_t cache_capacity = 1 << 16;   // entries; the map is cleared when full
  static constexpr std::size_t cache_max_word_bytes = 128;  // longer words are not cached

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  // The move constructor leaves cache_ null and the tables empty; every entry point checks this first.
  void require_usable(const char* what) const {
    if (!cache_) throw Error(std::string("ClipTokenizer::") + what + ": the tokenizer was moved from and holds no vocabulary");
  }
  std::size_t checked_index(std::int32_t id) const {
    require_usable("token lookup");
    if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size())
      throw UnknownNameError("token id " + std::to_string(id) + " is not in the CLIP vocabulary (ids 0.." +
                             std::to_string(id_to_token_.size() - 1) + ")");
    return static_cast<std::size_t>(id);
  }
  std::int32_t require(const std::string& token, const std::string& why) const {
    auto it = token_to_id_.find(token);
    if (it == token_to_id_.end()) throw FormatError(source_ + ": vocabulary lacks token \"" + token + "\" (" + why + ")");
    return it->second;
  }
  void bpe_word(std::string_view utf8_word, std::vector<std::int32_t>& out) const;
  bool literal_at(std::u32string_view text, std::size_t pos, std::u32string_view literal) const noexcept;

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, std::int32_t> token_to_id_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::array<std::int32_t, 256> byte_id_{};
  std::array<std::int32_t, 256> byte_end_id_{};
  std::int32_t bos_ = 0, eos_ = 0;
  std::u32string bos_literal_, eos_literal_;
  ClipFlavor flavor_ = ClipFlavor::openai;
  std::string source_;
  std::unique_ptr<Cache> cache_ = std::make_unique<Cache>();
};

inline ClipTokenizer::ClipTokenizer(const ClipVocabulary& vocab, ClipFlavor flavor)
    : id_to_token_(vocab.tokens), flavor_(flavor), source_(vocab.source) {
  if (id_to_token_.empty() || id_to_token_.size() > 0x7FFFFFFF)
    throw FormatError(source_ + ": vocabulary is empty or too large");
  token_to_id_.reserve(id_to_token_.size());
  // As dict(zip(vocab, range(...))): a repeated string keeps its last id.
  for (std::size_t i = 0; i < id_to_token_.size(); ++i) token_to_id_[id_to_token_[i]] = static_cast<std::int32_t>(i);
  std::string sym;
  for (int b = 0; b < 256; ++b) {
    sym.clear();
    unicode::append_utf8(sym, byte_to_unicode(static_cast<std::uint8_t>(b)));
    byte_id_[static_cast<std::size_t>(b)] = require(sym, "byte symbol");
    byte_end_id_[static_cast<std::size_t>(b)] = require(sym + "</w>", "word-final byte symbol");
  }
  merges_.reserve(vocab.merges.size());
  for (std::size_t r = 0; r < vocab.merges.size(); ++r) {
    const auto& [l, rt] = vocab.merges[r];
    const std::string why = "merge " + std::to_string(r + 1) + " \"" + l + " " + rt + "\"";
    const std::int32_t a = require(l, why), b = require(rt, why), m = require(l + rt, why);
    merges_[pair_key(a, b)] = Merge{static_cast<std::int32_t>(r), m};  // a repeated pair keeps its last rank
  }
  auto special = [&](const char* a, const char* b) {
    if (auto it = token_to_id_.find(a); it != token_to_id_.end()) return it->second;
    if (auto it = token_to_id_.find(b); it != token_to_id_.end()) return it->second;
    throw FormatError(source_ + ": vocabulary lacks the special token " + a + " (or " + b + ")");
  };
  bos_ = special("<|startoftext|>", "<start_of_text>");
  eos_ = special("<|endoftext|>", "<end_of_text>");
  bos_literal_ = flavor == ClipFlavor::openai ? U"<|startoftext|>" : U"<start_of_text>";
  eos_literal_ = flavor == ClipFlavor::openai ? U"<|endoftext|>" : U"<end_of_text>";
}

inline std::u32string ClipTokenizer::normalize(std::string_view text) {
  std::u32string t = unicode::decode_utf8(text);
  t = html::unescape(html::unescape(t));
  const std::u32string_view stripped = unicode::strip(t);
  std::u32string collapsed;
  collapsed.reserve(stripped.size());
  for (std::size_t i = 0; i < stripped.size();) {
    if (unicode::is_regex_space(stripped[i])) {
      collapsed.push_back(U' ');
      while (i < stripped.size() && unicode::is_regex_space(stripped[i])) ++i;
    } else {
      collapsed.push_back(stripped[i++]);
    }
  }
  return unicode::python_lower(unicode::strip(collapsed));
}

// IGNORECASE literal match. The text is already lower-case; the one character that still case-folds onto a
// letter of these literals is U+017F (long s) -> 's'.
inline bool ClipTokenizer::literal_at(std::u32string_view text, std::size_t pos, std::u32string_view literal) const noexcept {
  if (text.size() - pos < literal.size()) return false;
  for (std::size_t i = 0; i < literal.size(); ++i) {
    const char32_t t = text[pos + i], l = literal[i];
    if (t != l && !(l == U's' && t == 0x17F)) return false;
  }
  return true;
}

inline std::vector<std::u32string_view> ClipTokenizer::pretokenize(std::u32string_view s) const {
  static constexpr std::u32string_view contractions[] = {U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  std::vector<std::u32string_view> out;
  std::size_t i = 0;
  const std::size_t n = s.size();
  // U+0345 (combining ypogegrammeni) folds to a letter, so under IGNORECASE the `regex` module matches it with
  // neither [\p{L}] nor [^\s\p{L}\p{N}]: it is skipped like whitespace.
  auto is_other = [](char32_t c) {
    return c != 0x345 && !unicode::is_regex_space(c) && !unicode::is_letter(c) && !unicode::is_number(c);
  };
  while (i < n) {
    std::size_t len = 0;
    if (literal_at(s, i, bos_literal_)) {
      len = bos_literal_.size();
    } else if (literal_at(s, i, eos_literal_)) {
      len = eos_literal_.size();
    } else if (s[i] == U'\'') {
      for (auto c : contractions)
        if (literal_at(s, i, c)) {
          len = c.size();
          break;
        }
    }
    if (len == 0) {
      if (unicode::is_letter(s[i])) {
        len = 1;
        while (i + len < n && unicode::is_letter(s[i + len])) ++len;
      } else if (unicode::is_number(s[i])) {
        len = 1;
      } else if (is_other(s[i])) {
        len = 1;
        while (i + len < n && is_other(s[i + len])) ++len;
      }
    }
    if (len == 0) {
      ++i;
      continue;
    }
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

// BPE of one pre-token: start from its bytes (the last one with "</w>"), then repeatedly merge every occurrence
// of the adjacent pair of lowest rank, left to right, as simple_tokenizer.bpe does. A heap of candidate pairs
// keyed by (rank, position) makes this O(n log n); all entries of the current lowest rank are taken together so
// that pairs created during a pass wait for the next pass, exactly like the upstream loop.
inline void ClipTokenizer::bpe_word(std::string_view word, std::vector<std::int32_t>& out) const {
  const std::size_t n = word.size();
  if (n == 0) return;
  std::vector<std::int32_t> id(n);
  std::vector<std::int32_t> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = static_cast<unsigned char>(word[i]);
    id[i] = i + 1 == n ? byte_end_id_[b] : byte_id_[b];
    prev[i] = static_cast<std::int32_t>(i) - 1;
    next[i] = i + 1 == n ? -1 : static_cast<std::int32_t>(i + 1);
  }
  struct Candidate {
    std::int32_t rank, left, left_id, right_id;
    bool operator>(const Candidate& o) const noexcept { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](std::int32_t left) {
    if (left < 0 || next[static_cast<std::size_t>(left)] < 0) return;
    const std::int32_t a = id[static_cast<std::size_t>(left)], b = id[static_cast<std::size_t>(next[static_cast<std::size_t>(left)])];
    if (auto it = merges_.find(pair_key(a, b)); it != merges_.end()) heap.push({it->second.rank, left, a, b});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<std::int32_t>(i));
  std::vector<bool> alive(n, true);
  auto valid = [&](const Candidate& c) {
    const auto l = static_cast<std::size_t>(c.left);
    if (!alive[l] || id[l] != c.left_id || next[l] < 0) return false;
    return id[static_cast<std::size_t>(next[l])] == c.right_id;
  };
  std::vector<Candidate> pass;
  while (!heap.empty()) {
    if (!valid(heap.top())) {
      heap.pop();
      continue;
    }
    const std::int32_t rank = heap.top().rank;
    pass.clear();
    while (!heap.empty() && heap.top().rank == rank) {
      pass.push_back(heap.top());
      heap.pop();
    }
    for (const auto& c : pass) {
      if (!valid(c)) continue;  // overlapped by the previous merge of this pass ("a a a")
      const auto l = static_cast<std::size_t>(c.left);
      const auto r = static_cast<std::size_t>(next[l]);
      id[l] = merges_.at(pair_key(c.left_id, c.right_id)).merged;
      alive[r] = false;
      next[l] = next[r];
      if (next[r] >= 0) prev[static_cast<std::size_t>(next[r])] = static_cast<std::int32_t>(l);
      push(prev[l]);
      push(static_cast<std::int32_t>(l));
    }
  }
  for (std::int32_t i = 0; i >= 0; i = next[static_cast<std::size_t>(i)]) out.push_back(id[static_cast<std::size_t>(i)]);
}

inline std::vector<std::int32_t> ClipTokenizer::encode(std::string_view text) const {
  require_usable("encode");
  const std::u32string normalized = normalize(text);
  std::vector<std::int32_t> ids;
  std::string word;
  std::vector<std::int32_t> word_ids;
  for (const std::u32string_view piece : pretokenize(normalized)) {
    // Only the exact literal is special; a case-folded variant ("<|ſtartoftext|>") is ordinary text.
    if (piece == bos_literal_) {
      ids.push_back(bos_);
      continue;
    }
    if (piece == eos_literal_) {
      ids.push_back(eos_);
      continue;
    }
    word = unicode::encode_utf8(piece);
    const bool cacheable = word.size() <= cache_max_word_bytes;
    if (cacheable) {
      std::lock_guard lock(cache_->mutex);
      if (auto it = cache_->words.find(word); it != cache_->words.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    word_ids.clear();
    bpe_word(word, word_ids);
    ids.insert(ids.end(), word_ids.begin(), word_ids.end());
    if (cacheable) {
      std::lock_guard lock(cache_->mutex);
      if (cache_->words.size() >= cache_capacity) cache_->words.clear();
      cache_->words.emplace(word, word_ids);
    }
  }
  return ids;
}

inline std::vector<std::string> ClipTokenizer::tokens(std::span<const std::int32_t> ids) const {
  require_usable("tokens");
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (auto id : ids) out.push_back(id_to_token_[checked_index(id)]);
  return out;
}

inline std::string ClipTokenizer::decode(std::span<const std::int32_t> ids) const {
  require_usable("decode");
  std::string bytes;
  for (auto id : ids) {
    for (char32_t c : unicode::decode_utf8(id_to_token_[checked_index(id)])) {
      const int b = unicode_to_byte(c);
      if (b >= 0)
        bytes.push_back(static_cast<char>(b));
      else
        unicode::append_utf8(bytes, c);  // not a byte symbol (only possible in a foreign vocabulary): keep it
    }
  }
  const std::u32string text = unicode::decode_utf8(bytes);
  std::u32string out;
  out.reserve(text.size());
  static constexpr std::u32string_view end_of_word = U"</w>";
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, end_of_word.size(), end_of_word) == 0) {
      out.push_back(U' ');
      i += end_of_word.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return unicode::encode_utf8(out);
}

LATENTKIT_NAMESPACE_END
