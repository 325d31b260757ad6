// The diffusers DDIMScheduler step loop on the VP scale, with its float32 scheduler arithmetic.
#pragma once
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/denoisers/discrete_time.hpp"
#include "latentkit/denoisers/prediction.hpp"
#include "latentkit/samplers/latent.hpp"
#include "latentkit/samplers/noise.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Per-step callback of the diffusers loops: (i, timestep, sample x_t, raw model output, predicted x0).
template <class C, class X>
concept DiffusersStepCallback = std::invocable<C&, std::size_t, std::int64_t, const X&, const X&, const X&>;

struct NoDiffusersCallback {
  template <class X>
  void operator()(std::size_t, std::int64_t, const X&, const X&, const X&) const noexcept {}
};

/// Reproduces `for t in timesteps: x = DDIMScheduler.step(net(x, t), t, x).prev_sample`. diffusers keeps
/// alphas_cumprod as a float32 tensor, so every scheduler scalar (sqrt(a_t), 1 - a_t, the variance, ...) is a
/// float32 value; the samples stay in the latent's own type. prev_t = t - num_train_timesteps / len(timesteps);
/// below 0 the final alpha is 1 (set_alpha_to_one) or alphas_cumprod[0] (SD's setting).
struct DiffusersDDIM {
  std::span<const float> alphas_cumprod;  // the training table (1000 entries for SD)
  Prediction prediction = Prediction::epsilon;
  bool set_alpha_to_one = false;
  double eta = 0.0;  // > 0 needs a noise source

  template <Latent X, class Net, class N = NoNoise, class C = NoDiffusersCallback>
    requires DiscreteTimeNetwork<std::remove_reference_t<Net>, X> && NoiseSource<std::remove_cvref_t<N>, X> &&
             DiffusersStepCallback<std::remove_cvref_t<C>, X>
  X operator()(Net&& net, X x, std::span<const std::int64_t> timesteps, N&& noise = {}, C&& callback = {}) const {
    const auto train_steps = static_cast<std::int64_t>(alphas_cumprod.size());
    if (timesteps.empty()) throw Error("DiffusersDDIM: no timesteps");
    const std::int64_t stride = train_steps / static_cast<std::int64_t>(timesteps.size());
    const float final_alpha = set_alpha_to_one ? 1.0f : alphas_cumprod[0];
    for (std::size_t i = 0; i < timesteps.size(); ++i) {
      const std::int64_t t = timesteps[i];
      if (t < 0 || t >= train_steps)
        throw Error("DiffusersDDIM: timestep " + std::to_string(t) + " outside [0, " + std::to_string(train_steps) + ")");
      const std::int64_t prev_t = t - stride;
      const float a_t = alphas_cumprod[static_cast<std::size_t>(t)];
      const float a_prev = prev_t >= 0 ? alphas_cumprod[static_cast<std::size_t>(prev_t)] : final_alpha;
      const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
      const float sqrt_a = std::sqrt(a_t), sqrt_b = std::sqrt(b_t);
      const X out = net(x, static_cast<double>(t));
      X x0 = out, eps = out;
      switch (prediction) {
        case Prediction::epsilon: x0 = X((x - double(sqrt_b) * out) / double(sqrt_a)); break;
        case Prediction::v_prediction:
          x0 = X(double(sqrt_a) * x - double(sqrt_b) * out);
          eps = X(double(sqrt_a) * out + double(sqrt_b) * x);
          break;
        case Prediction::sample: eps = X((x - double(sqrt_a) * x0) / double(sqrt_b)); break;
      }
      callback(i, t, x, out, x0);
      const float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
      const float std_dev = static_cast<float>(eta) * std::sqrt(variance);
      const float direction = std::sqrt(1.0f - a_prev - std_dev * std_dev);
      x = X(double(std::sqrt(a_prev)) * x0 + double(direction) * eps);
      if (eta > 0) x = X(x + noise(0.0, 0.0, x) * double(std_dev));
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
