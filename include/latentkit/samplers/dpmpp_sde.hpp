// DPM-Solver++ SDE: a stochastic second-order single-step solver (two model calls and two noise draws per step).
#pragma once
#include <cmath>
#include <cstddef>
#include <optional>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct DPMppSDE {
  double eta = 1.0;
  double s_noise = 1.0;
  double r = 0.5;  // where the intermediate evaluation sits, as a fraction of the step in t = -log sigma

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DPMppSDE");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      callback(i, sigmas[i], x, denoised);
      if (sigmas[i + 1] == 0) {
        x = X(x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i]));
        continue;
      }
      const double t = t_of_sigma(sigmas[i]), t_next = t_of_sigma(sigmas[i + 1]);
      const double h = t_next - t, s = t + h * r, fac = 1 / (2 * r);
      // stage 1: ancestral step from t to s
      const auto [sd_1, su_1] = ancestral_step(sigma_of_t(t), sigma_of_t(s), eta);
      const double s_down = t_of_sigma(sd_1);
      X x_2 = X((sigma_of_t(s_down) / sigma_of_t(t)) * x - std::expm1(t - s_down) * denoised);
      x_2 = X(x_2 + noise(sigma_of_t(t), sigma_of_t(s), x) * (s_noise * su_1));
      const X denoised_2 = model(x_2, sigma_of_t(s));
      // stage 2: ancestral step from t to t_next with the blended denoiser output
      const auto [sd_2, su_2] = ancestral_step(sigma_of_t(t), sigma_of_t(t_next), eta);
      const double t_down = t_of_sigma(sd_2);
      const X denoised_d = X((1 - fac) * denoised + fac * denoised_2);
      x = X((sigma_of_t(t_down) / sigma_of_t(t)) * x - std::expm1(t - t_down) * denoised_d);
      x = X(x + noise(sigma_of_t(t), sigma_of_t(t_next), x) * (s_noise * su_2));
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
