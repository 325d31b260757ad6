// The diffusers DPMSolverMultistepScheduler loop (dpmsolver++, order 2, midpoint) with its float32 arithmetic.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "latentkit/samplers/diffusers_ddim.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Reproduces `for t in timesteps: x = DPMSolverMultistepScheduler.step(net(x, t), t, x).prev_sample` with
/// algorithm_type "dpmsolver++", solver_order 2, solver_type "midpoint", final_sigmas_type "zero". `sigmas` are the
/// scheduler's float32 sigmas (N+1, ending in 0; see the schedules module). As in diffusers: alpha_t =
/// 1/sqrt(sigma^2+1), sigma_t = sigma alpha_t, lambda = log alpha_t - log sigma_t and h are float32 scalars; the
/// model output becomes x0 in the latent's type; the sample is cast to float32 before the update ("upcast" in
/// diffusers, a downcast for double latents); the first step and the last step are first order.
struct DiffusersDPMSolverMultistep {
  Prediction prediction = Prediction::epsilon;

  template <Latent X, class Net, class C = NoDiffusersCallback>
    requires ContiguousLatent<X> && DiscreteTimeNetwork<std::remove_reference_t<Net>, X> &&
             DiffusersStepCallback<std::remove_cvref_t<C>, X>
  X operator()(Net&& net, X x, std::span<const std::int64_t> timesteps, std::span<const float> sigmas,
               C&& callback = {}) const {
    const std::size_t n = timesteps.size();
    if (n == 0 || sigmas.size() != n + 1)
      throw Error("DiffusersDPMSolverMultistep: expected N timesteps and N+1 sigmas, got " + std::to_string(n) +
                  " and " + std::to_string(sigmas.size()));
    struct AlphaSigma {
      float alpha, sigma, lambda;
    };
    const auto alpha_sigma = [](float sigma) {
      const float alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
      const float sigma_t = sigma * alpha;
      return AlphaSigma{alpha, sigma_t, std::log(alpha) - std::log(sigma_t)};
    };
    std::optional<X> previous_x0;
    for (std::size_t i = 0; i < n; ++i) {
      const X out = net(x, static_cast<double>(timesteps[i]));
      const AlphaSigma s0 = alpha_sigma(sigmas[i]);
      X x0 = out;
      if (prediction == Prediction::epsilon) x0 = X((x - double(s0.sigma) * out) / double(s0.alpha));
      if (prediction == Prediction::v_prediction) x0 = X(double(s0.alpha) * x - double(s0.sigma) * out);
      callback(i, timesteps[i], x, out, x0);

      const X sample = round_through_float(x);
      const AlphaSigma st = alpha_sigma(sigmas[i + 1]);
      const float h = st.lambda - s0.lambda;
      const float phi = st.alpha * (std::exp(-h) - 1.0f);
      const X decay = round_through_float(X(double(st.sigma / s0.sigma) * sample));  // a float32 product
      const bool first_order = !previous_x0 || i + 1 == n;
      if (first_order) {
        x = X(decay - double(phi) * x0);
      } else {
        const AlphaSigma s1 = alpha_sigma(sigmas[i - 1]);
        const float r0 = (s0.lambda - s1.lambda) / h;
        const X d1 = X(double(1.0f / r0) * (x0 - *previous_x0));
        x = X(decay - double(phi) * x0 - double(0.5f * phi) * d1);
      }
      previous_x0 = x0;
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
