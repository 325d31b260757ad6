// DPM-Solver++(2M) v2 (stable-diffusion.cpp's `dpm++2mv2`, after an A1111 discussion): the 2M update with the
// step sizes of the current and previous step symmetrised, which damps the extrapolation when they differ.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <type_traits>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// With h = t_next - t and h_last = t - t_prev (t = -log sigma): r = max(h, h_last) / min(h, h_last) and
/// h_d = (h + h_last) / 2 replace DPM++ 2M's r = h_last / h and h in the exponential factor:
///   D_d = (1 + 1/(2r)) D - (1/(2r)) D_prev,   x_next = (sigma_next / sigma) x - (exp(-h_d) - 1) D_d.
/// On evenly spaced log-sigmas (the exponential schedule) r = 1 and h_d = h: identical to DPMpp2M.
struct DPMpp2MV2 {
  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "DPMpp2MV2");
    (void)noise;  // deterministic
    std::optional<X> old_denoised;
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      callback(i, sigmas[i], x, denoised);
      const double ratio = sigmas[i + 1] / sigmas[i];
      if (!old_denoised || sigmas[i + 1] == 0) {
        const double h = t_of_sigma(sigmas[i + 1]) - t_of_sigma(sigmas[i]);
        x = X(ratio * x - std::expm1(-h) * denoised);
      } else {
        const double t = t_of_sigma(sigmas[i]);
        const double h = t_of_sigma(sigmas[i + 1]) - t, h_last = t - t_of_sigma(sigmas[i - 1]);
        const double h_min = std::min(h, h_last), h_max = std::max(h, h_last);
        const double r = h_max / h_min, h_d = (h_max + h_min) / 2;
        const X denoised_d = X((1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * *old_denoised);
        x = X(ratio * x - std::expm1(-h_d) * denoised_d);
      }
      old_denoised = denoised;
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
