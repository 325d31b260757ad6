// Random weights for any model at its full size, for benchmarks and smoke runs without a checkpoint: matrices and
// kernels uniform with the variance of PyTorch's default initialisation scale (1 / fan_in), so activations keep
// realistic magnitudes through the normalised blocks; norm gains 1, biases 0. Counter-based (SplitMix64 of the
// element index), so the values do not depend on the thread count.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/nn/parameters.hpp"
#include "latentkit/samplers/noise.hpp"

LATENTKIT_NAMESPACE_BEGIN


/// Fills every parameter; call model.prepare(options) afterwards to pack the weights in the compute type.

template <HasParameters Model>
void fill_random_parameters(Model& model, std::uint64_t seed) {
  std::uint64_t tensor_index = 0;
  model.visit_parameters(
      [&](const std::string& name, TensorView<float> target) {
        const std::uint64_t key = splitmix64(seed ^ splitmix64(++tensor_index));
        if (target.rank() < 2) {
          const float value = name.ends_with("weight") ? 1.0f : 0.0f;
          target.for_each([&](float& x) { x = value; });
          return;
        }
        const double fan_in = static_cast<double>(target.numel()) / static_cast<double>(target.size(0));
        const float half_width = static_cast<float>(std::sqrt(3.0 / fan_in));  // uniform(-a, a) has variance a^2 / 3
        Tensor<float> values(target.shape());
        const index_t n = values.numel();
        float* out = values.data();
        LATENTKIT_OMP(parallel for schedule(static))
        for (index_t i = 0; i < n; ++i) {
          const double u = static_cast<double>(splitmix64(key + static_cast<std::uint64_t>(i)) >> 11) * 0x1.0p-53;
          out[i] = static_cast<float>((2.0 * u - 1.0) * half_width);
        }
        copy(std::as_const(values).view(), target);
      },
      std::string());
}

LATENTKIT_NAMESPACE_END
