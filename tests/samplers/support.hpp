// Shared helpers of the sampler tests: fixture tensors as xarrays, the fixture model, recording wrappers.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>

#include "latentkit/denoisers/gaussian_mixture.hpp"
#include "latentkit/io/safetensors.hpp"
#include "support/fixtures.hpp"

namespace samplers_test {
namespace lk = latentkit;

template <class T>
xt::xarray<T> load(const lk::SafetensorsFile& f, const std::string& key) {
  const auto tensor = f.load<double>(key);
  std::vector<std::size_t> shape;
  for (auto d : tensor.shape()) shape.push_back(static_cast<std::size_t>(d));
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  std::transform(tensor.data(), tensor.data() + tensor.numel(), out.begin(), [](double v) { return static_cast<T>(v); });
  return out;
}
inline std::vector<double> load_vector(const lk::SafetensorsFile& f, const std::string& key) {
  const auto t = f.load<double>(key);
  return {t.data(), t.data() + t.numel()};
}
/// Row `i` of a (N, ...) tensor as its own (…) tensor.
template <class T>
xt::xarray<T> row(const xt::xarray<T>& stacked, std::size_t i) {
  std::vector<std::size_t> shape(stacked.shape().begin() + 1, stacked.shape().end());
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  std::copy_n(stacked.data() + i * out.size(), out.size(), out.data());
  return out;
}
/// The largest of m and v, NaN once either is (and NaN stays): std::max(m, NaN) keeps m, so a NaN result would pass.
inline double nan_max(double m, double v) { return (std::isnan(m) || v <= m) ? m : v; }
template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t k = 0; k < a.size(); ++k)
    m = nan_max(m, std::abs(static_cast<double>(a.data()[k]) - static_cast<double>(b.data()[k])));
  return m;
}
template <class A>
double max_abs(const A& a) {
  double m = 0;
  for (std::size_t k = 0; k < a.size(); ++k) m = nan_max(m, std::abs(static_cast<double>(a.data()[k])));
  return m;
}

/// The run prefixes "<a>.<b>...n<N>" of a fixture file: every key minus its last component, deduplicated.
inline std::vector<std::string> runs(const lk::SafetensorsFile& f) {
  std::set<std::string> prefixes;
  for (const auto& t : f.tensors()) {
    const auto dot = t.name.rfind('.');
    if (dot != std::string::npos) prefixes.insert(t.name.substr(0, dot));
  }
  return {prefixes.begin(), prefixes.end()};
}

/// The analytic model of the fixtures (problem.safetensors); `component` >= 0 keeps only that component (K=1).
inline lk::GaussianMixtureDenoiser fixture_model() {
  lk::SafetensorsFile p(latentkit_test::fixture("samplers/problem.safetensors"));
  return {load_vector(p, "means"), load_vector(p, "weights"), load_vector(p, "variances"),
          load_vector(p, "sigma_min").at(0), load_vector(p, "sigma_max").at(0)};
}

/// Wraps a denoiser and records the sigma of every call.
template <class D>
struct Recording {
  D& inner;
  std::vector<double> sigmas{};
  template <class X>
  X operator()(const X& x, double sigma) {
    sigmas.push_back(sigma);
    return inner(x, sigma);
  }
  double sigma_min() const { return inner.sigma_min(); }
  double sigma_max() const { return inner.sigma_max(); }
};

}  // namespace samplers_test
