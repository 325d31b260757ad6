// The sinusoidal timestep embedding of the SD UNet, as CompVis ldm computes it (openaimodel.timestep_embedding):
//   freqs[i] = exp(-ln(max_period) * i / half),  i < half = dim / 2   (float32, as torch evaluates it)
//   args     = float32(t) * freqs                                       (fractional t allowed)
//   emb      = [cos(args), sin(args)]  (cos first), a zero column appended when dim is odd.
// The float32 roundings of the reference are reproduced step by step; exp, cos and sin are evaluated in double and
// rounded once, within one ulp of torch's float32 libm.
#pragma once
#include <cmath>
#include <span>
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// out [B, dim] = embedding of timesteps [B].
inline void timestep_embedding(std::span<const float> timesteps, TensorView<float> out, double max_period = 10000.0) {
  if (out.rank() != 2 || out.size(0) != static_cast<index_t>(timesteps.size()))
    throw ShapeError("timestep_embedding: output " + out.shape().str() + " is not [" + std::to_string(timesteps.size()) +
                     ", dim]");
  const index_t dim = out.size(1), half = dim / 2;
  const float neg_log_period = static_cast<float>(-std::log(max_period));
  for (index_t b = 0; b < out.size(0); ++b) {
    const float t = timesteps[static_cast<std::size_t>(b)];
    for (index_t i = 0; i < half; ++i) {
      const float exponent = (neg_log_period * static_cast<float>(i)) / static_cast<float>(half);
      const float freq = static_cast<float>(std::exp(static_cast<double>(exponent)));
      const double arg = static_cast<double>(t * freq);
      out(b, i) = static_cast<float>(std::cos(arg));
      out(b, half + i) = static_cast<float>(std::sin(arg));
    }
    if (dim % 2) out(b, dim - 1) = 0.0f;
  }
}

inline Tensor<float> timestep_embedding(std::span<const float> timesteps, index_t dim, double max_period = 10000.0) {
  Tensor<float> out({static_cast<index_t>(timesteps.size()), dim});
  timestep_embedding(timesteps, out.view(), max_period);
  return out;
}

LATENTKIT_NAMESPACE_END
