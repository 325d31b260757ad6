// DDIM (Song et al. 2021) on the VE scale: jump to the denoised estimate, re-noise along the predicted epsilon.
#pragma once
#include <cmath>
#include <cstddef>
#include <optional>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// With alpha_bar = 1 / (1 + sigma^2), DDIM's update x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - s^2) eps + s z,
/// divided by sqrt(a_prev), becomes x_next = D + sigma_down * eps + sigma_up * z with eps = (x - D) / sigma and
/// sigma_up^2 = eta^2 sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2: the ancestral split. eta = 0 is the
/// deterministic DDIM, which equals Euler on the same sigmas.
struct DDIM {
  double eta = 0.0;
  double s_noise = 1.0;

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DDIM");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      callback(i, sigmas[i], x, denoised);
      const auto [sigma_down, sigma_up] = ancestral_step(sigmas[i], sigmas[i + 1], eta);
      const X eps = to_d(x, sigmas[i], denoised);
      x = X(denoised + eps * sigma_down);
      if (sigmas[i + 1] > 0 && sigma_up > 0) x = X(x + noise(sigmas[i], sigmas[i + 1], x) * (s_noise * sigma_up));
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
