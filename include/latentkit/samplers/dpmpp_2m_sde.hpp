// DPM-Solver++(2M) SDE: the 2M multistep update with SDE noise injection (midpoint or Heun correction).
#pragma once
#include <cmath>
#include <cstddef>
#include <optional>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

enum class SolverType { midpoint, heun };

struct DPMpp2MSDE {
  double eta = 1.0;
  double s_noise = 1.0;
  SolverType solver_type = SolverType::midpoint;

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DPMpp2MSDE");
    std::optional<X> old_denoised;
    double h_last = 0.0;
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      callback(i, sigmas[i], x, denoised);
      double h = h_last;
      if (sigmas[i + 1] == 0) {  // final denoising step
        x = denoised;
      } else {
        const double t = -std::log(sigmas[i]), s = -std::log(sigmas[i + 1]);
        h = s - t;
        const double eta_h = eta * h;
        const double phi_1 = -std::expm1(-h - eta_h);
        x = X(sigmas[i + 1] / sigmas[i] * std::exp(-eta_h) * x + phi_1 * denoised);
        if (old_denoised) {
          const double r = h_last / h;
          const double correction = solver_type == SolverType::heun ? (phi_1 / (-h - eta_h) + 1) * (1 / r)
                                                                    : 0.5 * phi_1 * (1 / r);
          x = X(x + correction * (denoised - *old_denoised));
        }
        if (eta != 0)
          x = X(x + noise(sigmas[i], sigmas[i + 1], x) *
                        (sigmas[i + 1] * std::sqrt(-std::expm1(-2 * eta_h)) * s_noise));
      }
      old_denoised = denoised;
      h_last = h;
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
