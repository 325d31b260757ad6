// Applying prompt weights to a text encoder's output, A1111's "Original" emphasis (modules/sd_emphasis.py):
// multiply each token's hidden state by its weight, then rescale the whole chunk so that its mean over all
// tokens and channels equals the mean before weighting.
#pragma once
#include <span>
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor_view.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// In place on `hidden` [tokens, width] (any strides) with one weight per token. Means are accumulated in double
/// in a fixed order (torch reduces in float32, so results may differ from A1111 by a few ulp). If the weighted
/// mean is exactly 0 the rescale is skipped (torch would divide by zero). A1111 takes the mean over the whole
/// batch of chunks it encodes together; call this per chunk for the single-prompt case.
inline void apply_prompt_weights(TensorView<float> hidden, std::span<const float> weights) {
  if (hidden.rank() != 2)
    throw ShapeError("apply_prompt_weights: expected hidden states [tokens, width], got " + hidden.shape().str());
  const index_t tokens = hidden.size(0), width = hidden.size(1);
  if (static_cast<index_t>(weights.size()) != tokens)
    throw ShapeError("apply_prompt_weights: " + std::to_string(weights.size()) + " weights for " + std::to_string(tokens) + " tokens");
  const index_t count = tokens * width;
  if (count == 0) return;
  double original_sum = 0, weighted_sum = 0;
  for (index_t t = 0; t < tokens; ++t) {
    const float w = weights[static_cast<std::size_t>(t)];
    for (index_t c = 0; c < width; ++c) {
      float& v = hidden(t, c);
      original_sum += v;
      v *= w;
      weighted_sum += v;
    }
  }
  if (weighted_sum == 0) return;
  const float original_mean = static_cast<float>(original_sum / static_cast<double>(count));
  const float weighted_mean = static_cast<float>(weighted_sum / static_cast<double>(count));
  const float scale = original_mean / weighted_mean;
  for (index_t t = 0; t < tokens; ++t)
    for (index_t c = 0; c < width; ++c) hidden(t, c) *= scale;
}

LATENTKIT_NAMESPACE_END
