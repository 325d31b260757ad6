// "sgm_uniform" spacing (ComfyUI comfy/samplers.py `normal_scheduler(..., sgm=True)`, also stable-diffusion.cpp
// `SGMUniformSchedule`): n+1 timesteps evenly spaced (torch float32 linspace) from timestep(sigma_max) to
// timestep(sigma_min), the last one dropped, each mapped through t_to_sigma, then 0. ComfyUI's timestep() is the
// quantized (nearest-log-sigma) one. Unlike "normal" it never lands on the smallest training sigma.
#pragma once
#include <string_view>
#include <vector>

#include "latentkit/schedules/linspace.hpp"
#include "latentkit/schedules/sigma_schedule.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct Uniform {
  static constexpr std::string_view name = "sgm_uniform";

  template <std::floating_point T = double, std::floating_point M>
  std::vector<T> sigmas(index_t n, const DiscreteSchedule<M>& model) const {
    detail::check_steps(name, n);
    const index_t t_start = model.sigma_to_t_quantized(model.sigma_max());
    const index_t t_end = model.sigma_to_t_quantized(model.sigma_min());
    const std::vector<float> ts =
        torch_linspace<float>(static_cast<double>(t_start), static_cast<double>(t_end), n + 1);
    std::vector<T> out;
    out.reserve(static_cast<std::size_t>(n) + 1);
    for (index_t i = 0; i < n; ++i) out.push_back(static_cast<T>(model.t_to_sigma(ts[static_cast<std::size_t>(i)])));
    out.push_back(T(0));
    return out;
  }
};

LATENTKIT_NAMESPACE_END
