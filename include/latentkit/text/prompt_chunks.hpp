// Weighted prompt -> 77-token chunks with per-token weights, as AUTOMATIC1111's webui builds them
// (modules/sd_hijack_clip.py, tokenize_line / empty_chunk / forward), ready for a CLIP text encoder:
// one row of token ids and one row of weights per chunk.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/text/prompt.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// One encoder input: [bos] + chunk_length tokens (padded) + [eos], and a weight per token (1 for bos/eos/padding).
struct PromptChunk {
  std::vector<std::int32_t> tokens;
  std::vector<float> weights;
  friend bool operator==(const PromptChunk&, const PromptChunk&) = default;
};

struct PromptChunkOptions {
  std::size_t chunk_length = 75;     ///< prompt tokens per chunk (77 - start - end)
  std::size_t comma_backtrack = 20;  ///< A1111 "comma_padding_backtrack"; 0 disables the comma rule
  ClipPadding padding = ClipPadding::end_token;  ///< SD1: pad with eos; OpenCLIP/SD2: 0 after the first eos
  bool parse_emphasis = true;        ///< false = A1111 emphasis "None": the whole prompt has weight 1
};

struct TokenizedPrompt {
  std::vector<PromptChunk> chunks;  ///< at least one
  std::size_t token_count = 0;      ///< A1111's count: chunk_length per full chunk + the tokens of the last one
};

namespace detail {

// A1111 pads with the end token, then (SD2 only) replaces everything after the first end token with 0.
inline void finish_chunk(PromptChunk& chunk, const ClipTokenizer& tok, const PromptChunkOptions& opt) {
  if (chunk.tokens.size() < opt.chunk_length) {
    chunk.weights.resize(opt.chunk_length, 1.0f);
    chunk.tokens.resize(opt.chunk_length, tok.eos_id());
  }
  chunk.tokens.insert(chunk.tokens.begin(), tok.bos_id());
  chunk.tokens.push_back(tok.eos_id());
  chunk.weights.insert(chunk.weights.begin(), 1.0f);
  chunk.weights.push_back(1.0f);
  if (opt.padding == ClipPadding::zero) {
    auto first_end = std::find(chunk.tokens.begin(), chunk.tokens.end(), tok.eos_id());
    std::fill(first_end + 1, chunk.tokens.end(), 0);
  }
}

}  // namespace detail

/// The chunk of an empty prompt: [bos] + [eos] * (chunk_length + 1), all weights 1 (then OpenCLIP zero padding).
/// A1111 uses it to give every prompt of a batch, and cond/uncond, the same number of chunks.
inline PromptChunk empty_prompt_chunk(const ClipTokenizer& tok, const PromptChunkOptions& opt = {}) {
  PromptChunk chunk;
  detail::finish_chunk(chunk, tok, opt);
  return chunk;
}

/// Splits a prompt into chunks of opt.chunk_length tokens. Rules (A1111 tokenize_line):
///  * each fragment of parse_prompt_attention is tokenized on its own; its tokens carry its weight;
///  * a BREAK fragment closes the current chunk (padding it);
///  * when a chunk is full and the next token is not a comma, and a comma was seen within the last
///    comma_backtrack tokens of that chunk, the tokens after the comma move to the next chunk;
///  * the last chunk is always emitted; an empty prompt gives one empty chunk.
inline TokenizedPrompt tokenize_prompt(const ClipTokenizer& tok, std::string_view prompt, const PromptChunkOptions& opt = {}) {
  if (opt.chunk_length == 0) throw ShapeError("tokenize_prompt: chunk_length must be positive");
  const std::vector<PromptFragment> fragments =
      opt.parse_emphasis ? parse_prompt_attention(prompt) : std::vector<PromptFragment>{{std::string(prompt), 1.0}};
  const std::optional<std::int32_t> comma = tok.token_id(",</w>");
  TokenizedPrompt out;
  PromptChunk chunk;
  std::ptrdiff_t last_comma = -1;
  auto next_chunk = [&](bool is_last) {
    out.token_count += is_last ? chunk.tokens.size() : opt.chunk_length;
    detail::finish_chunk(chunk, tok, opt);
    last_comma = -1;
    out.chunks.push_back(std::move(chunk));
    chunk = PromptChunk{};
  };
  for (const auto& fragment : fragments) {
    if (fragment.is_break()) {
      next_chunk(false);
      continue;
    }
    const float weight = static_cast<float>(fragment.weight);
    for (const std::int32_t token : tok.encode(fragment.text)) {
      if (comma && token == *comma) {
        last_comma = static_cast<std::ptrdiff_t>(chunk.tokens.size());
      } else if (opt.comma_backtrack != 0 && chunk.tokens.size() == opt.chunk_length && last_comma != -1 &&
                 chunk.tokens.size() - static_cast<std::size_t>(last_comma) <= opt.comma_backtrack) {
        const auto cut = static_cast<std::size_t>(last_comma + 1);
        std::vector<std::int32_t> moved_tokens(chunk.tokens.begin() + static_cast<std::ptrdiff_t>(cut), chunk.tokens.end());
        std::vector<float> moved_weights(chunk.weights.begin() + static_cast<std::ptrdiff_t>(cut), chunk.weights.end());
        chunk.tokens.resize(cut);
        chunk.weights.resize(cut);
        next_chunk(false);
        chunk.tokens = std::move(moved_tokens);
        chunk.weights = std::move(moved_weights);
      }
      if (chunk.tokens.size() == opt.chunk_length) next_chunk(false);
      chunk.tokens.push_back(token);
      chunk.weights.push_back(weight);
    }
  }
  if (!chunk.tokens.empty() || out.chunks.empty()) next_chunk(true);
  return out;
}

/// Appends empty chunks until the prompt has `count` chunks (A1111 forward(): shorter prompts of a batch).
inline void pad_to_chunk_count(TokenizedPrompt& prompt, std::size_t count, const ClipTokenizer& tok,
                               const PromptChunkOptions& opt = {}) {
  while (prompt.chunks.size() < count) prompt.chunks.push_back(empty_prompt_chunk(tok, opt));
}

/// Gives cond and uncond the same chunk count by padding the shorter with empty chunks, so that their encodings
/// ([chunks * 77, width]) can be batched for classifier-free guidance.
inline void equalize_chunk_counts(TokenizedPrompt& cond, TokenizedPrompt& uncond, const ClipTokenizer& tok,
                                  const PromptChunkOptions& opt = {}) {
  const std::size_t count = std::max(cond.chunks.size(), uncond.chunks.size());
  pad_to_chunk_count(cond, count, tok, opt);
  pad_to_chunk_count(uncond, count, tok, opt);
}

/// Token ids as an int64 tensor [chunks, tokens per chunk]: the input a text encoder embeds.
inline Tensor<std::int64_t> chunk_token_tensor(const TokenizedPrompt& prompt) {
  if (prompt.chunks.empty()) throw ShapeError("chunk_token_tensor: prompt has no chunks");
  const auto width = static_cast<index_t>(prompt.chunks.front().tokens.size());
  Tensor<std::int64_t> t(Dims{static_cast<index_t>(prompt.chunks.size()), width});
  for (std::size_t c = 0; c < prompt.chunks.size(); ++c) {
    if (static_cast<index_t>(prompt.chunks[c].tokens.size()) != width) throw ShapeError("chunk_token_tensor: chunks differ in length");
    std::copy(prompt.chunks[c].tokens.begin(), prompt.chunks[c].tokens.end(), t.data() + static_cast<index_t>(c) * width);
  }
  return t;
}

/// Per-token weights as a float tensor [chunks, tokens per chunk], matching chunk_token_tensor.
inline Tensor<float> chunk_weight_tensor(const TokenizedPrompt& prompt) {
  if (prompt.chunks.empty()) throw ShapeError("chunk_weight_tensor: prompt has no chunks");
  const auto width = static_cast<index_t>(prompt.chunks.front().weights.size());
  Tensor<float> t(Dims{static_cast<index_t>(prompt.chunks.size()), width});
  for (std::size_t c = 0; c < prompt.chunks.size(); ++c) {
    if (static_cast<index_t>(prompt.chunks[c].weights.size()) != width) throw ShapeError("chunk_weight_tensor: chunks differ in length");
    std::copy(prompt.chunks[c].weights.begin(), prompt.chunks[c].weights.end(), t.data() + static_cast<index_t>(c) * width);
  }
  return t;
}

LATENTKIT_NAMESPACE_END
