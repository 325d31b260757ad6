// Polynomial-in-log-sigma spacing. Follows k-diffusion `sampling.get_sigmas_polyexponential`:
// ramp = torch.linspace(1, 0, n)^rho, sigma = exp(ramp * (log sigma_max - log sigma_min) + log sigma_min), in T.
// rho = 1 is the exponential spacing; larger rho spends more steps at low noise.
#pragma once
#include <cmath>
#include <string_view>
#include <vector>

#include "latentkit/schedules/linspace.hpp"
#include "latentkit/schedules/sigma_schedule.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct PolyExponential {
  static constexpr std::string_view name = "polyexponential";
  double rho = 1.0;

  template <std::floating_point T = double>
  std::vector<T> sigmas(index_t n, double sigma_min, double sigma_max) const {
    detail::check_sigma_range(name, n, sigma_min, sigma_max, true);
    if (!(rho > 0) || !std::isfinite(rho)) throw Error("polyexponential schedule: rho must be finite and > 0");
    const double log_min = std::log(sigma_min);
    const T log_span = static_cast<T>(std::log(sigma_max) - log_min);
    std::vector<T> out = torch_linspace<T>(1.0, 0.0, n);
    for (T& r : out) {
      const T ramp = rho == 1.0 ? r : std::pow(r, static_cast<T>(rho));  // torch's pow(x, 1) is a copy
      r = std::exp(mul_rounded(ramp, log_span) + static_cast<T>(log_min));
    }
    out.push_back(T(0));
    return out;
  }
  template <std::floating_point T = double, std::floating_point M>
  std::vector<T> sigmas(index_t n, const DiscreteSchedule<M>& model) const {
    return sigmas<T>(n, static_cast<double>(model.sigma_min()), static_cast<double>(model.sigma_max()));
  }
};

LATENTKIT_NAMESPACE_END
