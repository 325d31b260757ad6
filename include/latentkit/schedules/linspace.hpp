// Bit-exact replicas of the range helpers the upstream schedules are built from (numpy and torch CPU
// linspace/arange, numpy's round-half-to-even). Schedules differ from upstream in the last bits unless these
// ranges are reproduced exactly, and those bits decide rounded timesteps.
#pragma once
#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/shape.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// a*b rounded to T before it meets any addition. Upstream (numpy, torch kernels) never fused a multiply and an
/// add, but GCC contracts a*b+c into one FMA by default (GNU mode with -march=native), which moves results by an
/// ulp and flips rounded timesteps. The volatile store is the portable way to forbid that contraction.
template <std::floating_point T>
inline T mul_rounded(T a, T b) noexcept {
  volatile T product = a * b;
  return product;
}

/// numpy's `np.round`/`np.rint`: ties go to the even neighbour (std::round sends them away from zero).
inline double round_half_even(double x) noexcept {
  const double r = std::round(x);
  if (std::fabs(x - std::trunc(x)) == 0.5) return 2.0 * std::round(x / 2.0);
  return r;
}

namespace detail {
inline void check_count(index_t n, const char* what) {
  if (n < 0) throw Error(std::string(what) + ": the number of points must be >= 0, got " + std::to_string(n));
}
}  // namespace detail

/// `np.linspace(start, stop, n)` (float64, endpoint=True): start + i*step, with the last point set to `stop`.
inline std::vector<double> numpy_linspace(double start, double stop, index_t n) {
  detail::check_count(n, "numpy_linspace");
  std::vector<double> out(static_cast<std::size_t>(n));
  const index_t div = n - 1;
  const double delta = stop - start;
  for (index_t i = 0; i < n; ++i) {
    double y = static_cast<double>(i);
    if (div > 0) {
      const double step = delta / static_cast<double>(div);
      y = step == 0.0 ? mul_rounded(y / static_cast<double>(div), delta) : mul_rounded(y, step);
    } else {
      y = mul_rounded(y, delta);
    }
    out[static_cast<std::size_t>(i)] = y + start;
  }
  if (n > 1) out.back() = stop;
  return out;
}

/// `np.arange(start, stop, step)` in float64: numpy fills start + i*(second - start), where the second value is
/// start + step rounded; the length is ceil((stop - start) / step).
inline std::vector<double> numpy_arange(double start, double stop, double step) {
  if (step == 0.0 || !std::isfinite(step)) throw Error("numpy_arange: step must be finite and non-zero");
  const double len = std::ceil((stop - start) / step);
  if (!(len > 0)) return {};
  const auto n = static_cast<std::size_t>(len);
  std::vector<double> out(n);
  const double delta = (start + step) - start;
  for (std::size_t i = 0; i < n; ++i) out[i] = i == 0 ? start : (i == 1 ? start + step : start + mul_rounded(static_cast<double>(i), delta));
  return out;
}

/// The SIMD width torch's CPU kernels used for the fixtures (bytes of one vector register: 32 = AVX2 or the
/// generic 256-bit build). torch.linspace rounds differently inside vector chunks, so the width matters.
inline constexpr int torch_cpu_vector_bytes = 32;

/// `torch.linspace(start, end, n, dtype=T)` on the CPU, bit for bit (checked against torch 1.13's float32 and
/// float64 results, which the fixtures' betas pin down to the last bit). torch computes step = (end-start)/(n-1) in
/// T; the first half counts up from start and the second half down from end. Whole chunks of two vectors come
/// from `Vectorized::arange(first, step)` (first + k*step, each lane product rounded), the tail element by element.
/// Its AVX2 kernel is compiled with FMA contraction, so the per-element value start + step*idx (and the chunk's
/// first value) is one fused multiply-add; the lanes are not fused.
template <std::floating_point T>
std::vector<T> torch_linspace(double start_in, double end_in, index_t n, int vector_bytes = torch_cpu_vector_bytes) {
  detail::check_count(n, "torch_linspace");
  std::vector<T> out(static_cast<std::size_t>(n));
  const T start = static_cast<T>(start_in);
  const T end = static_cast<T>(end_in);
  if (n == 0) return out;
  if (n == 1) {
    out[0] = start;
    return out;
  }
  const T step = (end - start) / static_cast<T>(n - 1);
  const index_t halfway = n / 2;
  auto element = [&](index_t idx) -> T {
    return idx < halfway ? std::fma(step, static_cast<T>(idx), start)
                         : std::fma(-step, static_cast<T>(n - idx - 1), end);
  };
  const index_t width = vector_bytes > 0 ? static_cast<index_t>(vector_bytes / static_cast<int>(sizeof(T))) : 1;
  index_t i = 0;
  if (width > 1) {
    for (; i + 2 * width <= n; i += 2 * width) {  // two vectors per trip, as torch's vectorized_loop
      for (index_t v = i; v < i + 2 * width; v += width) {
        const T first = element(v);
        for (index_t k = 0; k < width; ++k)
          out[static_cast<std::size_t>(v + k)] = first + mul_rounded(static_cast<T>(k), step);
      }
    }
  }
  for (; i < n; ++i) out[static_cast<std::size_t>(i)] = element(i);
  return out;
}

LATENTKIT_NAMESPACE_END
