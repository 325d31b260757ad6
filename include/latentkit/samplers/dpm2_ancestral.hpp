// DPM2 ancestral: a DPM2 step down to sigma_down, then fresh noise of std sigma_up.
#pragma once
#include <cmath>
#include <cstddef>
#include <utility>

#include "latentkit/samplers/step.hpp"

#include "latentkit/samplers/dpm2.hpp"
LATENTKIT_NAMESPACE_BEGIN

struct DPM2Ancestral {
  double eta = 1.0;
  double s_noise = 1.0;

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DPM2Ancestral");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      const auto [sigma_down, sigma_up] = ancestral_step(sigmas[i], sigmas[i + 1], eta);
      callback(i, sigmas[i], x, denoised);
      const X d = to_d(x, sigmas[i], denoised);
      if (sigma_down == 0) {
        x = X(x + d * (sigma_down - sigmas[i]));
      } else {
        const double sigma_mid = log_midpoint(sigmas[i], sigma_down);
        const X x_2 = X(x + d * (sigma_mid - sigmas[i]));
        const X d_2 = to_d(x_2, sigma_mid, X(model(x_2, sigma_mid)));
        x = X(x + d_2 * (sigma_down - sigmas[i]));
        x = X(x + noise(sigmas[i], sigmas[i + 1], x) * (s_noise * sigma_up));
      }
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
