// DPM-Solver++(2M): second-order multistep exponential integrator in t = -log sigma, one model call per step.
#pragma once
#include <cmath>
#include <cstddef>
#include <optional>
#include <utility>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct DPMpp2M {
  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DPMpp2M");
    (void)noise;
    std::optional<X> old_denoised;  // the multistep history
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      callback(i, sigmas[i], x, denoised);
      const double t = t_of_sigma(sigmas[i]), t_next = t_of_sigma(sigmas[i + 1]);
      const double h = t_next - t;
      const double ratio = sigma_of_t(t_next) / sigma_of_t(t);
      if (!old_denoised || sigmas[i + 1] == 0) {  // first order on the first and the last step
        x = X(ratio * x - std::expm1(-h) * denoised);
      } else {  // extrapolate D linearly in t from the previous step
        const double h_last = t - t_of_sigma(sigmas[i - 1]);
        const double r = h_last / h;
        const X denoised_d = X((1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * *old_denoised);
        x = X(ratio * x - std::expm1(-h) * denoised_d);
      }
      old_denoised = denoised;
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
