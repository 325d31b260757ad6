// LCM (latent consistency models): jump to the denoised estimate, then re-noise to the next level with fresh noise.
#pragma once
#include <cstddef>
#include <type_traits>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// x_{i+1} = D(x_i, sigma_i) + sigma_{i+1} z. Meant for consistency-distilled models (few steps, low or no CFG);
/// on an ordinary denoiser it is a maximally stochastic sampler.
struct LCM {
  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "LCM");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      callback(i, sigmas[i], x, denoised);
      x = denoised;
      if (sigmas[i + 1] > 0) x = X(x + noise(sigmas[i], sigmas[i + 1], x) * sigmas[i + 1]);
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
