// DPM-Solver++(2S) ancestral: a single-step second-order DPM-Solver++ step to sigma_down, then fresh noise.
#pragma once
#include <cmath>
#include <cstddef>
#include <optional>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct DPMpp2SAncestral {
  double eta = 1.0;
  double s_noise = 1.0;

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DPMpp2SAncestral");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      const auto [sigma_down, sigma_up] = ancestral_step(sigmas[i], sigmas[i + 1], eta);
      callback(i, sigmas[i], x, denoised);
      if (sigma_down == 0) {
        x = X(x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i]));
      } else {  // evaluate at the midpoint s of t = -log sigma, then an exponential-integrator step with that D
        const double t = t_of_sigma(sigmas[i]), t_next = t_of_sigma(sigma_down);
        const double h = t_next - t, s = t + 0.5 * h;
        const X x_2 = X((sigma_of_t(s) / sigma_of_t(t)) * x - std::expm1(-h * 0.5) * denoised);
        const X denoised_2 = model(x_2, sigma_of_t(s));
        x = X((sigma_of_t(t_next) / sigma_of_t(t)) * x - std::expm1(-h) * denoised_2);
      }
      if (sigmas[i + 1] > 0) x = X(x + noise(sigmas[i], sigmas[i + 1], x) * (s_noise * sigma_up));
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
