// Shared helpers of the ops tests: seeded random tensors, thread-count scopes, bit-exact comparison.
#pragma once
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "latentkit/core/tensor.hpp"
#include "support/compare.hpp"

namespace ops_test {

using namespace latentkit;

/// Unit roundoff of float32 (2^-24): the error unit of every bound in these tests.
inline constexpr double u32 = 0x1p-24;

/// offset + sigma * N(0, 1), seeded: never all zeros.
inline Tensor<float> random_tensor(const Dims& shape, std::uint32_t seed, double sigma = 1.0, double offset = 0.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  Tensor<float> t(shape);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(offset + sigma * dist(rng));
  return t;
}

using latentkit_test::bit_identical;
using latentkit_test::ThreadScope;

/// Largest |got - want| / bound over all elements (<= 1 passes); bound(i) is the per-element error bound.
template <class Bound>
double worst_ratio(TensorView<const float> got, const Tensor<double>& want, Bound bound) {
  const Tensor<float> g = contiguous(got);
  double worst = 0.0;
  for (index_t i = 0; i < g.numel(); ++i) {
    const double err = std::abs(static_cast<double>(g.data()[i]) - want.data()[i]);
    if (!(err <= bound(i) * 1e6)) return std::numeric_limits<double>::infinity();  // NaN or wildly off
    worst = std::max(worst, err / bound(i));
  }
  return worst;
}

}  // namespace ops_test
