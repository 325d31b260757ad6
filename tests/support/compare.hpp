// Comparisons and thread-count scopes shared by the test areas: largest absolute difference, bit identity, and an
// OpenMP thread count set for a scope (for the 1/2/3-thread determinism checks).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>

#include <catch2/catch.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"

namespace latentkit_test {

/// max |a - b| over two float views of the same shape.
inline double max_abs_diff(latentkit::TensorView<const float> a, latentkit::TensorView<const float> b) {
  REQUIRE(a.shape() == b.shape());
  const auto ad = latentkit::contiguous(a), bd = latentkit::contiguous(b);
  double m = 0;
  for (latentkit::index_t i = 0; i < ad.numel(); ++i)
    m = std::max(m, std::abs(static_cast<double>(ad.data()[i]) - bd.data()[i]));
  return m;
}

/// max |a| over a float view.
inline double max_abs(latentkit::TensorView<const float> a) {
  const auto ad = latentkit::contiguous(a);
  double m = 0;
  for (latentkit::index_t i = 0; i < ad.numel(); ++i) m = std::max(m, std::abs(static_cast<double>(ad.data()[i])));
  return m;
}

inline bool bit_identical(const latentkit::Tensor<float>& a, const latentkit::Tensor<float>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(float)) == 0;
}

/// Sets the OpenMP thread count for a scope (no-op without OpenMP).
struct ThreadScope {
  explicit ThreadScope(int n) : saved(latentkit::max_threads()) { set(n); }
  ~ThreadScope() { set(saved); }
  static void set([[maybe_unused]] int n) {
#if LATENTKIT_HAS_OPENMP
    omp_set_num_threads(n);
#endif
  }
  int saved;
};

}  // namespace latentkit_test
