// Karras et al. (2022) sigma spacing: evenly spaced in sigma^(1/rho). Follows k-diffusion
// `sampling.get_sigmas_karras` (crowsonkb/k-diffusion @4601bf0): ramp = torch.linspace(0, 1, n) in T,
// sigma_i = (max^(1/rho) + ramp_i * (min^(1/rho) - max^(1/rho)))^rho, the 1/rho powers taken in double.
#pragma once
#include <cmath>
#include <string_view>
#include <vector>

#include "latentkit/schedules/linspace.hpp"
#include "latentkit/schedules/sigma_schedule.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct Karras {
  static constexpr std::string_view name = "karras";
  double rho = 7.0;

  template <std::floating_point T = double>
  std::vector<T> sigmas(index_t n, double sigma_min, double sigma_max) const {
    detail::check_sigma_range(name, n, sigma_min, sigma_max, false);
    if (!(rho > 0) || !std::isfinite(rho)) throw Error("karras schedule: rho must be finite and > 0");
    const double min_inv_rho = std::pow(sigma_min, 1.0 / rho);
    const double max_inv_rho = std::pow(sigma_max, 1.0 / rho);
    const T span = static_cast<T>(min_inv_rho - max_inv_rho);
    std::vector<T> out = torch_linspace<T>(0.0, 1.0, n);
    for (T& r : out) r = std::pow(static_cast<T>(max_inv_rho) + mul_rounded(r, span), static_cast<T>(rho));
    out.push_back(T(0));
    return out;
  }
  /// With the model's range (its smallest and largest training sigma).
  template <std::floating_point T = double, std::floating_point M>
  std::vector<T> sigmas(index_t n, const DiscreteSchedule<M>& model) const {
    return sigmas<T>(n, static_cast<double>(model.sigma_min()), static_cast<double>(model.sigma_max()));
  }
};

LATENTKIT_NAMESPACE_END
