// The "normal" (k-diffusion "discrete") spacing: n timesteps evenly spaced from the last training timestep down
// to 0, each mapped to its sigma by log-linear interpolation of the model's table, then 0. This is k-diffusion
// `DiscreteSchedule.get_sigmas(n)` (what A1111 calls "Automatic"/normal); ComfyUI's "normal" is the same for SD
// models. The table precision M decides the arithmetic; the result is converted to T.
#pragma once
#include <string_view>
#include <vector>

#include "latentkit/schedules/sigma_schedule.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct Normal {
  static constexpr std::string_view name = "normal";

  template <std::floating_point T = double, std::floating_point M>
  std::vector<T> sigmas(index_t n, const DiscreteSchedule<M>& model) const {
    detail::check_steps(name, n);
    const std::vector<M> s = model.get_sigmas(n);
    return std::vector<T>(s.begin(), s.end());
  }
};

LATENTKIT_NAMESPACE_END
