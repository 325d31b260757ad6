// DPM2: the midpoint method with the midpoint taken in log sigma (k-diffusion sample_dpm_2).
#pragma once
#include <cmath>
#include <cstddef>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// torch.lerp(a, b, 1/2) on logs: the geometric mean of two sigmas, computed the way k-diffusion does.
inline double log_midpoint(double sigma_a, double sigma_b) {
  const double a = std::log(sigma_a), b = std::log(sigma_b);
  return std::exp(b - (b - a) * 0.5);
}

struct DPM2 {
  Churn churn{};

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DPM2");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const double sigma_hat = churn.apply(x, sigmas, i, noise);
      const X denoised = model(x, sigma_hat);
      const X d = to_d(x, sigma_hat, denoised);
      callback(i, sigmas[i], x, denoised);
      if (sigmas[i + 1] == 0) {
        x = X(x + d * (sigmas[i + 1] - sigma_hat));
      } else {  // slope at the log-midpoint, applied over the whole step
        const double sigma_mid = log_midpoint(sigma_hat, sigmas[i + 1]);
        const X x_2 = X(x + d * (sigma_mid - sigma_hat));
        const X d_2 = to_d(x_2, sigma_mid, X(model(x_2, sigma_mid)));
        x = X(x + d_2 * (sigmas[i + 1] - sigma_hat));
      }
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
