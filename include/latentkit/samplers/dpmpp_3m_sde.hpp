// DPM-Solver++(3M) SDE: third-order multistep exponential integrator with SDE noise injection.
#pragma once
#include <cmath>
#include <cstddef>
#include <optional>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct DPMpp3MSDE {
  double eta = 1.0;
  double s_noise = 1.0;

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DPMpp3MSDE");
    std::optional<X> denoised_1, denoised_2;  // the last two denoiser outputs
    std::optional<double> h_1, h_2;            // and the last two step sizes in t = -log sigma
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      callback(i, sigmas[i], x, denoised);
      std::optional<double> h = h_1;  // unchanged on the final step, as upstream
      if (sigmas[i + 1] == 0) {
        x = denoised;
      } else {
        const double t = -std::log(sigmas[i]), s = -std::log(sigmas[i + 1]);
        h = s - t;
        const double h_eta = *h * (eta + 1);
        x = X(std::exp(-h_eta) * x + (-std::expm1(-h_eta)) * denoised);
        if (h_2) {
          const double r0 = *h_1 / *h, r1 = *h_2 / *h;
          const X d1_0 = X((denoised - *denoised_1) / r0);
          const X d1_1 = X((*denoised_1 - *denoised_2) / r1);
          const X d1 = X(d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1)));
          const X d2 = X((d1_0 - d1_1) / (r0 + r1));
          const double phi_2 = std::expm1(-h_eta) / h_eta + 1;
          const double phi_3 = phi_2 / h_eta - 0.5;
          x = X(x + phi_2 * d1 - phi_3 * d2);
        } else if (h_1) {
          const double r = *h_1 / *h;
          const double phi_2 = std::expm1(-h_eta) / h_eta + 1;
          x = X(x + phi_2 * X((denoised - *denoised_1) / r));
        }
        if (eta != 0)
          x = X(x + noise(sigmas[i], sigmas[i + 1], x) *
                        (sigmas[i + 1] * std::sqrt(-std::expm1(-2 * *h * eta)) * s_noise));
      }
      denoised_2 = std::move(denoised_1);
      denoised_1 = denoised;
      h_2 = h_1;
      h_1 = h;
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
