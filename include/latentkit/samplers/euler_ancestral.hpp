// Euler ancestral: an Euler step down to sigma_down, then fresh noise of std sigma_up.
#pragma once
#include <cmath>
#include <cstddef>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct EulerAncestral {
  double eta = 1.0;      // 0: plain Euler; 1: full ancestral noise
  double s_noise = 1.0;  // scales the fresh noise

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "EulerAncestral");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      const auto [sigma_down, sigma_up] = ancestral_step(sigmas[i], sigmas[i + 1], eta);
      callback(i, sigmas[i], x, denoised);
      const X d = to_d(x, sigmas[i], denoised);
      x = X(x + d * (sigma_down - sigmas[i]));
      if (sigmas[i + 1] > 0) x = X(x + noise(sigmas[i], sigmas[i + 1], x) * (s_noise * sigma_up));
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
