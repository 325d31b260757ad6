// The SigmaSchedule concept: a sigma spacing with knobs (a value type) that turns a step count into n+1 noise
// levels, decreasing, ending in 0 (k-diffusion's convention). Every spacing accepts a DiscreteSchedule (the model's
// training table); the range-only ones (Karras, Exponential, PolyExponential) also take a bare [sigma_min,
// sigma_max]. T is the precision the spacing computes in, like torch's default dtype upstream.
#pragma once
#include <cmath>
#include <concepts>
#include <string>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/schedules/discrete.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// A spacing usable with a model's training table: `s.sigmas<T>(n, model)` gives n+1 values ending in 0.
template <class S, class T = double, class M = float>
concept SigmaSchedule = std::floating_point<T> && std::floating_point<M> &&
                        requires(const S& s, index_t n, const DiscreteSchedule<M>& model) {
                          { S::name } -> std::convertible_to<std::string_view>;
                          { s.template sigmas<T>(n, model) } -> std::same_as<std::vector<T>>;
                        };

/// A spacing that needs only the noise range: `s.sigmas<T>(n, sigma_min, sigma_max)`.
template <class S, class T = double>
concept RangeSigmaSchedule = std::floating_point<T> && requires(const S& s, index_t n, double lo, double hi) {
  { s.template sigmas<T>(n, lo, hi) } -> std::same_as<std::vector<T>>;
};

namespace detail {
inline void check_steps(std::string_view schedule, index_t n) {
  if (n < 0) throw Error(std::string(schedule) + " schedule: the number of steps must be >= 0, got " + std::to_string(n));
}
/// sigma_min <= sigma_max, both finite; strictly positive when the spacing takes logarithms.
inline void check_sigma_range(std::string_view schedule, index_t n, double sigma_min, double sigma_max, bool need_positive) {
  check_steps(schedule, n);
  const bool ok_min = need_positive ? sigma_min > 0 : sigma_min >= 0;
  if (!ok_min || !std::isfinite(sigma_min) || !std::isfinite(sigma_max) || !(sigma_min <= sigma_max))
    throw Error(std::string(schedule) + " schedule: need " + (need_positive ? "0 < " : "0 <= ") +
                "sigma_min <= sigma_max, both finite; got sigma_min = " + std::to_string(sigma_min) +
                ", sigma_max = " + std::to_string(sigma_max));
}
/// Values converted to Out, then the trailing 0 (k-diffusion's append_zero).
template <std::floating_point Out, class In>
std::vector<Out> with_trailing_zero(const std::vector<In>& values) {
  std::vector<Out> out;
  out.reserve(values.size() + 1);
  for (const In& v : values) out.push_back(static_cast<Out>(v));
  out.push_back(Out(0));
  return out;
}
}  // namespace detail

LATENTKIT_NAMESPACE_END
