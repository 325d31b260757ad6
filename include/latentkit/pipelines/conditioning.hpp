// Prompt -> text conditioning, A1111 style: the prompt syntax ((word:1.2), [word], BREAK) splits a prompt into
// 75-token chunks with per-token weights; each chunk becomes [bos] + 75 tokens + [eos] (SD1 pads with the end
// token, OpenCLIP with 0), is encoded on its own (clip skip applied), weighted with the mean-restoring rule,
// and the chunks are concatenated: [chunks * 77, width]. The prompt and the negative prompt get the same chunk
// count (the shorter is padded with the encoding of an empty chunk) so that they batch for classifier-free
// guidance.
#pragma once
#include <cstddef>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/models/clip_text.hpp"
#include "latentkit/text/emphasis.hpp"
#include "latentkit/text/prompt_chunks.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct ConditioningOptions {
  int clip_skip = 0;                 ///< 0: the encoder's default (SD1: 1, SD2 OpenCLIP: 2 = penultimate)
  bool parse_emphasis = true;        ///< false: A1111 emphasis "None" (brackets are plain text, weights 1)
  std::size_t comma_backtrack = 20;  ///< A1111 comma_padding_backtrack
};

struct Conditioning {
  Tensor<float> cond;    ///< [chunks * 77, width]
  Tensor<float> uncond;  ///< [chunks * 77, width]
  std::vector<std::size_t> cond_chunk_tokens;    ///< prompt tokens in each chunk (without start/end/padding)
  std::vector<std::size_t> uncond_chunk_tokens;
  std::size_t chunks = 0;
  int clip_skip = 1;
};

/// The chunking rules for prompts fed to `encoder` (its layout decides the padding).
inline PromptChunkOptions prompt_chunk_options(const ClipTextEncoder& encoder, const ConditioningOptions& options = {}) {
  PromptChunkOptions o;
  o.chunk_length = static_cast<std::size_t>(encoder.config().context_length) - 2;
  o.comma_backtrack = options.comma_backtrack;
  o.padding = encoder.layout().padding;
  o.parse_emphasis = options.parse_emphasis;
  return o;
}

/// Prompt tokens of a chunk: those between the start token and the first end token.
inline std::size_t chunk_prompt_tokens(const PromptChunk& chunk, const ClipTokenizer& tokenizer) {
  std::size_t n = 0;
  for (std::size_t k = 1; k < chunk.tokens.size() && chunk.tokens[k] != tokenizer.eos_id(); ++k) ++n;
  return n;
}

/// Encodes every chunk of `prompt` (one batch), applies each chunk's weights and concatenates the chunks:
/// [chunks * 77, width].
inline Tensor<float> encode_prompt_chunks(const ClipTextEncoder& encoder, const TokenizedPrompt& prompt,
                                          const ConditioningOptions& options = {}) {
  const Tensor<std::int64_t> tokens = chunk_token_tensor(prompt);
  ClipTextOptions encode;
  encode.clip_skip = options.clip_skip;
  ClipTextOutput out = encoder.forward(tokens.view(), encode);
  const index_t chunks = out.hidden.size(0), length = out.hidden.size(1), width = out.hidden.size(2);
  for (index_t c = 0; c < chunks; ++c)
    apply_prompt_weights(out.hidden.view().select(0, c), std::span<const float>(prompt.chunks[static_cast<std::size_t>(c)].weights));
  return std::move(out.hidden).reshape({chunks * length, width});
}

/// cond and uncond for a prompt and a negative prompt (see the header comment).
inline Conditioning encode_conditioning(const ClipTextEncoder& encoder, const ClipTokenizer& tokenizer,
                                        std::string_view prompt, std::string_view negative_prompt = "",
                                        const ConditioningOptions& options = {}) {
  const PromptChunkOptions chunking = prompt_chunk_options(encoder, options);
  TokenizedPrompt cond = tokenize_prompt(tokenizer, prompt, chunking);
  TokenizedPrompt uncond = tokenize_prompt(tokenizer, negative_prompt, chunking);
  equalize_chunk_counts(cond, uncond, tokenizer, chunking);
  Conditioning result;
  result.chunks = cond.chunks.size();
  result.clip_skip = options.clip_skip == 0 ? encoder.clip_skip_default() : options.clip_skip;
  for (const auto& c : cond.chunks) result.cond_chunk_tokens.push_back(chunk_prompt_tokens(c, tokenizer));
  for (const auto& c : uncond.chunks) result.uncond_chunk_tokens.push_back(chunk_prompt_tokens(c, tokenizer));
  result.cond = encode_prompt_chunks(encoder, cond, options);
  result.uncond = encode_prompt_chunks(encoder, uncond, options);
  return result;
}

LATENTKIT_NAMESPACE_END
