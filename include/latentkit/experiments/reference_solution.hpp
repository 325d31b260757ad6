// The exact probability-flow solution that deterministic samplers are measured against, for any denoiser:
// classical RK4 on the ODE in log-sigma time, step count doubled until the answer stops moving.
//
// In t = log(sigma) the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma becomes
// dx/dt = x - D(x, e^t), which is smooth and non-stiff over the whole range (its Jacobian I - dD/dx lies in
// [0, 1] for the Gaussian mixture), so a uniform RK4 grid converges at order 4 everywhere.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>

#include <xtensor/xarray.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace experiments {

/// sigma = 0 is the end of the flow but log(0) is not a time: integrate to this instead. For the mixture the
/// solution moves by O(sigma^2 / s^2) near 0, i.e. ~1e-17 here, far below every error that is reported.
inline constexpr double zero_sigma_stand_in = 1e-8;

inline double max_abs_difference(const xt::xarray<double>& a, const xt::xarray<double>& b) {
  if (a.shape() != b.shape()) throw ShapeError("max_abs_difference: arrays of different shapes");
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a.flat(i) - b.flat(i)));
  return worst;
}

inline double rms_difference(const xt::xarray<double>& a, const xt::xarray<double>& b) {
  if (a.shape() != b.shape()) throw ShapeError("rms_difference: arrays of different shapes");
  if (a.size() == 0) return 0.0;
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += (a.flat(i) - b.flat(i)) * (a.flat(i) - b.flat(i));
  return std::sqrt(sum / static_cast<double>(a.size()));
}

/// `steps` uniform RK4 steps of dx/dt = x - denoise(x, e^t) from sigma_start down to sigma_end (0 allowed).
template <class Denoise>
xt::xarray<double> rk4_probability_flow(Denoise&& denoise, const xt::xarray<double>& x_start, double sigma_start,
                                        double sigma_end, int steps) {
  if (!(sigma_start > 0.0) || !(sigma_end >= 0.0) || !(sigma_end < sigma_start) || steps < 1)
    throw Error("rk4_probability_flow: need sigma_start > sigma_end >= 0 and steps >= 1 (got " +
                std::to_string(sigma_start) + " -> " + std::to_string(sigma_end) + ", " + std::to_string(steps) + ")");
  const double t0 = std::log(sigma_start);
  const double t1 = std::log(std::max(sigma_end, zero_sigma_stand_in));
  const double h = (t1 - t0) / steps;
  const auto slope = [&](const xt::xarray<double>& x, double t) -> xt::xarray<double> {
    return x - denoise(x, std::exp(t));
  };
  xt::xarray<double> x = x_start;
  for (int i = 0; i < steps; ++i) {
    const double t = t0 + i * h;  // from the index, not accumulated, so rounding does not drift
    const xt::xarray<double> k1 = slope(x, t);
    const xt::xarray<double> k2 = slope(xt::xarray<double>(x + (0.5 * h) * k1), t + 0.5 * h);
    const xt::xarray<double> k3 = slope(xt::xarray<double>(x + (0.5 * h) * k2), t + 0.5 * h);
    const xt::xarray<double> k4 = slope(xt::xarray<double>(x + h * k3), t + h);
    x = x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
  }
  return x;
}

/// A reference solution and the evidence that it has converged.
struct ReferenceSolution {
  xt::xarray<double> x;          ///< the answer at the finest grid
  int steps = 0;                 ///< RK4 steps of the finest grid
  double change_on_doubling = 0; ///< max |x(steps) - x(steps / 2)|: the convergence evidence
};

/// RK4 from `initial_steps`, doubling until the answer changes by less than `tolerance` (max-abs); throws if
/// `max_steps` is reached first. The returned change is an upper bound on the error of the coarser grid, and
/// with order 4 the finer one is ~16x better still.
template <class Denoise>
ReferenceSolution converged_reference(Denoise&& denoise, const xt::xarray<double>& x_start, double sigma_start,
                                      double sigma_end, double tolerance = 1e-10, int initial_steps = 64,
                                      int max_steps = 1 << 17) {
  ReferenceSolution ref;
  ref.steps = initial_steps;
  ref.x = rk4_probability_flow(denoise, x_start, sigma_start, sigma_end, ref.steps);
  while (true) {
    if (ref.steps * 2 > max_steps)
      throw Error("converged_reference: change " + std::to_string(ref.change_on_doubling) + " still above " +
                  std::to_string(tolerance) + " at " + std::to_string(ref.steps) + " RK4 steps");
    xt::xarray<double> finer = rk4_probability_flow(denoise, x_start, sigma_start, sigma_end, ref.steps * 2);
    ref.change_on_doubling = max_abs_difference(finer, ref.x);
    ref.x = std::move(finer);
    ref.steps *= 2;
    if (ref.change_on_doubling < tolerance) return ref;
  }
}

}  // namespace experiments
LATENTKIT_NAMESPACE_END
