// Heun (Karras et al. 2022, Algorithm 2): second order, two model calls per step (one on the last step to 0).
#pragma once
#include <cmath>
#include <cstddef>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct Heun {
  Churn churn{};

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "Heun");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const double sigma_hat = churn.apply(x, sigmas, i, noise);
      const X denoised = model(x, sigma_hat);
      const X d = to_d(x, sigma_hat, denoised);
      callback(i, sigmas[i], x, denoised);
      const double dt = sigmas[i + 1] - sigma_hat;
      if (sigmas[i + 1] == 0) {  // Euler on the last step: D is not defined at sigma = 0
        x = X(x + d * dt);
      } else {  // trapezoid: average the slopes at both ends
        const X x_2 = X(x + d * dt);
        const X d_2 = to_d(x_2, sigmas[i + 1], X(model(x_2, sigmas[i + 1])));
        x = X(x + (d + d_2) / 2.0 * dt);
      }
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
