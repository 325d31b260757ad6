// iPNDM (Zhang & Chen 2023, "improved pseudo numerical methods"): explicit Adams-Bashforth in sigma with the
// fixed-step coefficients, warming up from first to fourth order; one model call per step.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <deque>
#include <type_traits>

#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * sum_j b_j d_{i-j} with d = (x - D)/sigma and the Adams-Bashforth
/// weights of order min(i+1, 4): (1), (3, -1)/2, (23, -16, 5)/12, (55, -59, 37, -9)/24. The weights assume equal
/// steps (unlike LMS, which integrates the interpolant over the actual sigmas); stable-diffusion.cpp's `ipndm`.
struct IPNDM {
  int max_order = 4;

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "IPNDM");
    (void)noise;  // deterministic
    if (max_order < 1 || max_order > 4) throw Error("IPNDM: max_order must be in [1, 4]");
    static constexpr std::array<std::array<double, 4>, 4> weights{{{1.0, 0, 0, 0},
                                                                   {3.0 / 2, -1.0 / 2, 0, 0},
                                                                   {23.0 / 12, -16.0 / 12, 5.0 / 12, 0},
                                                                   {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24}}};
    std::deque<X> derivatives;  // newest first
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      callback(i, sigmas[i], x, denoised);
      derivatives.push_front(to_d(x, sigmas[i], denoised));
      if (derivatives.size() > static_cast<std::size_t>(max_order)) derivatives.pop_back();
      const std::size_t order = derivatives.size();
      const auto& b = weights[order - 1];
      X slope = X(derivatives[0] * b[0]);
      for (std::size_t j = 1; j < order; ++j) slope = X(slope + derivatives[j] * b[j]);
      x = X(x + slope * (sigmas[i + 1] - sigmas[i]));
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
