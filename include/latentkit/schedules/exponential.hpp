// Exponential sigma spacing: evenly spaced in log sigma. Follows k-diffusion `sampling.get_sigmas_exponential`:
// exp(torch.linspace(log sigma_max, log sigma_min, n)) in T, the logs taken in double.
#pragma once
#include <cmath>
#include <string_view>
#include <vector>

#include "latentkit/schedules/linspace.hpp"
#include "latentkit/schedules/sigma_schedule.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct Exponential {
  static constexpr std::string_view name = "exponential";

  template <std::floating_point T = double>
  std::vector<T> sigmas(index_t n, double sigma_min, double sigma_max) const {
    detail::check_sigma_range(name, n, sigma_min, sigma_max, true);
    std::vector<T> out = torch_linspace<T>(std::log(sigma_max), std::log(sigma_min), n);
    for (T& x : out) x = std::exp(x);
    out.push_back(T(0));
    return out;
  }
  template <std::floating_point T = double, std::floating_point M>
  std::vector<T> sigmas(index_t n, const DiscreteSchedule<M>& model) const {
    return sigmas<T>(n, static_cast<double>(model.sigma_min()), static_cast<double>(model.sigma_max()));
  }
};

LATENTKIT_NAMESPACE_END
