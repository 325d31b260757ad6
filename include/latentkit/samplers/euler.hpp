// Euler (Karras et al. 2022, Algorithm 2 with Euler steps): first order, one model call per step.
#pragma once
#include <cmath>
#include <cstddef>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// x_{i+1} = x + (sigma_{i+1} - sigma_hat) * (x - D(x, sigma_hat)) / sigma_hat, with optional churn (s_churn > 0).
struct Euler {
  Churn churn{};

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "Euler");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const double sigma_hat = churn.apply(x, sigmas, i, noise);
      const X denoised = model(x, sigma_hat);
      const X d = to_d(x, sigma_hat, denoised);
      callback(i, sigmas[i], x, denoised);
      x = X(x + d * (sigmas[i + 1] - sigma_hat));
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
