// Shared helpers of the GEMM/conv tests: random data and the float32 error bound the kernels are held to.
//
// Error bound. Each output is alpha * sum_k a_k b_k (+ beta * c) evaluated in float32 with fused multiply-adds:
// a term passes through at most K - 1 accumulations inside its K slices, ceil(K / KC) slice merges and the alpha
// and beta roundings, i.e. fewer than 2K + 2 roundings of relative size u = 2^-24. To first order
//   |computed - exact| <= (2K + 2) u (|alpha| sum_k |a_k b_k| + |beta c|)
// (Higham, Accuracy and Stability of Numerical Algorithms, 3.1). The tests use exactly this bound, per element,
// against a float64 reference computed from the same (already rounded) operands.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "latentkit/core/half.hpp"
#include "latentkit/core/shape.hpp"

namespace gemm_test {

using latentkit::index_t;

inline constexpr double unit_roundoff = 0x1p-24;

inline double error_bound(index_t k, double magnitude) {
  return (2.0 * static_cast<double>(k) + 2.0) * unit_roundoff * magnitude;
}

/// Uniform values in [-1, 1) with no zeros (a zero could hide a packing that drops elements).
template <class T = float>
std::vector<T> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<T> v(n);
  for (auto& x : v) {
    float f = dist(gen);
    if (f == 0.0f) f = 0.5f;
    x = T(f);
  }
  return v;
}

/// Checks computed[i] against exact[i] within error_bound(k, magnitude[i]); reports the worst element.
inline void check_within_bound(const std::vector<double>& exact, const std::vector<double>& magnitude,
                               const std::vector<float>& computed, index_t k) {
  REQUIRE(exact.size() == computed.size());
  std::size_t worst = 0;
  double worst_ratio = 0.0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    const double err = std::abs(static_cast<double>(computed[i]) - exact[i]);
    const double bound = error_bound(k, magnitude[i]);
    const double ratio = bound > 0.0 ? err / bound : (err == 0.0 ? 0.0 : INFINITY);
    if (!(ratio <= worst_ratio)) worst_ratio = ratio, worst = i;
  }
  INFO("worst element " << worst << ": computed " << computed[worst] << ", exact " << exact[worst]
                        << ", error / bound = " << worst_ratio);
  CHECK(worst_ratio <= 1.0);
}

struct GemmCase {
  index_t m, n, k;
};

/// Checks C (row stride ldc) against alpha * sum_k A(i, k) B(k, j) + beta * C0 computed in float64, within the
/// float32 error bound, and that C's padding columns are untouched. C0 is not read when beta == 0.
template <class AOf, class BOf>
void check_product(const GemmCase& s, const AOf& A, const BOf& B, float alpha, float beta, const std::vector<float>& c0,
                   const std::vector<float>& c, index_t ldc) {
  std::vector<double> exact, magnitude;
  std::vector<float> computed;
  for (index_t i = 0; i < s.m; ++i)
    for (index_t j = 0; j < s.n; ++j) {
      double sum = 0.0, abs_sum = 0.0;
      for (index_t p = 0; p < s.k; ++p) {
        sum += static_cast<double>(A(i, p)) * B(p, j);
        abs_sum += std::abs(static_cast<double>(A(i, p)) * B(p, j));
      }
      const double old = beta == 0.0f ? 0.0 : c0[static_cast<std::size_t>(i * ldc + j)];
      exact.push_back(alpha * sum + beta * old);
      magnitude.push_back(std::abs(alpha) * abs_sum + std::abs(beta * old));
      computed.push_back(c[static_cast<std::size_t>(i * ldc + j)]);
    }
  check_within_bound(exact, magnitude, computed, s.k);
  for (index_t i = 0; i < s.m; ++i)
    for (index_t j = s.n; j < ldc; ++j) REQUIRE(c[static_cast<std::size_t>(i * ldc + j)] == c0[static_cast<std::size_t>(i * ldc + j)]);
}

}  // namespace gemm_test
