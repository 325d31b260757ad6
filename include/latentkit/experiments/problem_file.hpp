// Reading a MixtureProblem from a safetensors file, and picking the problem a comparison runs on by name.
//
// Two layouts are read (both are the fixtures' samplers/ files):
//  * problem.safetensors: `means` [K,D], `weights` [K], `variances` [K], `z` [B,D], `sigma_min` [1], `sigma_max` [1];
//  * convergence_k1.safetensors: `mu` [D], `s2` [1], `x_T` [B,D] (= z * sigma_max, SD1's sigma range).
#pragma once
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/experiments/mixture_problem.hpp"
#include "latentkit/io/safetensors.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace experiments {

namespace detail {

inline xt::xarray<double> load_matrix(const SafetensorsFile& file, const std::string& key, int rank) {
  const Tensor<double> t = file.load<double>(key);
  if (t.shape().rank() != rank)
    throw ShapeError(file.path().string() + ", tensor '" + key + "': expected rank " + std::to_string(rank) +
                     ", got shape " + t.shape().str());
  std::vector<std::size_t> shape;
  for (int i = 0; i < rank; ++i) shape.push_back(static_cast<std::size_t>(t.shape()[i]));
  xt::xarray<double> out = xt::zeros<double>(shape);
  std::copy(t.data(), t.data() + t.numel(), out.data());
  return out;
}

inline std::vector<double> load_vector(const SafetensorsFile& file, const std::string& key) {
  const Tensor<double> t = file.load<double>(key);
  return std::vector<double>(t.data(), t.data() + t.numel());
}

inline double load_scalar(const SafetensorsFile& file, const std::string& key) {
  const std::vector<double> v = load_vector(file, key);
  if (v.size() != 1)
    throw ShapeError(file.path().string() + ", tensor '" + key + "': expected one value, got " + std::to_string(v.size()));
  return v[0];
}

}  // namespace detail

/// Reads either layout; throws IoError / FormatError naming the file and key, ShapeError on inconsistent shapes.
inline MixtureProblem load_mixture_problem(const std::filesystem::path& path) {
  const SafetensorsFile file(path);
  MixtureProblem p;
  p.origin = path.filename().string();
  if (file.contains("means")) {
    p.means = detail::load_matrix(file, "means", 2);
    p.weights = detail::load_vector(file, "weights");
    p.variances = detail::load_vector(file, "variances");
    p.z = detail::load_matrix(file, "z", 2);
    p.sigma_min = detail::load_scalar(file, "sigma_min");
    p.sigma_max = detail::load_scalar(file, "sigma_max");
  } else if (file.contains("mu")) {
    const xt::xarray<double> mu = detail::load_matrix(file, "mu", 1);
    p.means = xt::zeros<double>({std::size_t{1}, mu.size()});
    std::copy(mu.begin(), mu.end(), p.means.begin());
    p.weights = {1.0};
    p.variances = {detail::load_scalar(file, "s2")};
    p.sigma_min = sd1_sigma_min;
    p.sigma_max = sd1_sigma_max;
    p.z = detail::load_matrix(file, "x_T", 2) / p.sigma_max;
  } else {
    throw FormatError(path.string() + ": neither a mixture problem ('means', 'weights', 'variances', 'z', 'sigma_min', "
                      "'sigma_max') nor a K=1 convergence problem ('mu', 's2', 'x_T')");
  }
  p.validate();
  return p;
}

/// The fixtures' problem file when $LATENTKIT_FIXTURES points at them, else empty.
inline std::filesystem::path fixtures_problem_file() {
  const char* dir = std::getenv("LATENTKIT_FIXTURES");
  if (!dir || !*dir) return {};
  std::filesystem::path p = std::filesystem::path(dir) / "samplers" / "problem.safetensors";
  return std::filesystem::exists(p) ? p : std::filesystem::path{};
}

/// "k3": the fixtures' K=3 problem if available, else the embedded one; "k1": its first component alone (the
/// closed-form case); anything else is a file path (either layout).
inline MixtureProblem select_problem(const std::string& spec) {
  if (spec == "k3" || spec == "k1") {
    const std::filesystem::path file = fixtures_problem_file();
    MixtureProblem p = file.empty() ? embedded_mixture_problem() : load_mixture_problem(file);
    if (!file.empty()) p.origin = "fixtures problem.safetensors";
    return spec == "k1" ? p.single_component(0) : p;
  }
  if (!std::filesystem::exists(spec))
    throw IoError("compare: --problem " + spec + ": expected k1, k3 or an existing .safetensors file");
  return load_mixture_problem(spec);
}

}  // namespace experiments
LATENTKIT_NAMESPACE_END
