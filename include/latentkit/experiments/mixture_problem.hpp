// The analytic test problem of the sampler comparison: a mixture of isotropic Gaussians whose noisy marginals,
// MMSE denoiser and (for one component) probability-flow solution are all known exactly.
//
//   x0 ~ sum_k w_k N(mu_k, s_k^2 I),   x_sigma = x0 + sigma n   =>   x_sigma ~ sum_k w_k N(mu_k, (s_k^2 + sigma^2) I)
//
// The problem also carries the starting noise z (rows of a batch) and the sigma range, so a comparison run is
// fully described by one value. It is either read from the fixtures (problem_file.hpp) or generated here from a
// seed, so that `latentkit compare` works on a machine without the fixtures.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xview.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/denoisers/gaussian_mixture.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace experiments {

/// SD1's noise range (the ends of its float32 sigma table), for problems that do not store one.
inline constexpr double sd1_sigma_min = 0.029167532920837402;
inline constexpr double sd1_sigma_max = 14.614642143249512;

/// Standard normal numbers reproducible bit for bit on every platform: std::mt19937_64 (whose output sequence the
/// C++ standard fixes) feeding a Box-Muller transform written here (std::normal_distribution is not portable).
class PortableGaussian {
 public:
  explicit PortableGaussian(std::uint64_t seed) : engine_(seed) {}
  double operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    // 53-bit uniforms in (0, 1]; u1 > 0 keeps log finite.
    const double u1 = (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }
  /// A [rows, cols] array of independent N(0, 1) values, filled row by row.
  xt::xarray<double> matrix(std::size_t rows, std::size_t cols) {
    xt::xarray<double> out = xt::zeros<double>({rows, cols});
    for (auto& v : out) v = (*this)();
    return out;
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

struct MixtureProblem {
  xt::xarray<double> means;        ///< [K, D]
  std::vector<double> weights;     ///< [K], sums to 1
  std::vector<double> variances;   ///< [K], s_k^2
  xt::xarray<double> z;            ///< [B, D] standard normal starting noise: x_T = z * sigma_T
  double sigma_min = 0.0;
  double sigma_max = 0.0;
  std::string origin;              ///< where it came from, for reports ("embedded k3 seed 1234", a file path)

  std::size_t components() const { return weights.size(); }
  std::size_t dims() const { return means.shape().size() == 2 ? means.shape()[1] : 0; }

  /// Throws ShapeError unless every field agrees with K and D and the numbers make sense.
  void validate() const {
    const auto fail = [&](const std::string& what) { throw ShapeError("mixture problem " + origin + ": " + what); };
    if (means.dimension() != 2 || means.shape()[0] == 0 || means.shape()[1] == 0) fail("means must be [K, D]");
    if (weights.size() != means.shape()[0] || variances.size() != means.shape()[0])
      fail("weights and variances must have K = " + std::to_string(means.shape()[0]) + " entries");
    if (z.dimension() != 2 || z.shape()[1] != means.shape()[1] || z.shape()[0] == 0) fail("z must be [B, D]");
    double total = 0.0;
    for (std::size_t k = 0; k < weights.size(); ++k) {
      if (!(weights[k] > 0.0) || !(variances[k] > 0.0)) fail("weights and variances must be positive");
      total += weights[k];
    }
    if (std::abs(total - 1.0) > 1e-9) fail("weights must sum to 1 (they sum to " + std::to_string(total) + ")");
    if (!(sigma_min > 0.0) || !(sigma_max > sigma_min)) fail("need 0 < sigma_min < sigma_max");
  }

  /// Log of the unnormalised responsibilities of each component for every row of x at noise level sigma
  /// ([B, K]); the (D/2) log(2 pi) term is common to all components and dropped.
  xt::xarray<double> log_responsibilities(const xt::xarray<double>& x, double sigma) const {
    const std::size_t batch = x.shape()[0], dim = dims(), k_count = components();
    xt::xarray<double> logits = xt::zeros<double>({batch, k_count});
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t k = 0; k < k_count; ++k) {
        const double v = variances[k] + sigma * sigma;
        double dist2 = 0.0;
        for (std::size_t d = 0; d < dim; ++d) {
          const double diff = x(b, d) - means(k, d);
          dist2 += diff * diff;
        }
        logits(b, k) = std::log(weights[k]) - 0.5 * static_cast<double>(dim) * std::log(v) - dist2 / (2.0 * v);
      }
    return logits;
  }

  /// The exact MMSE denoiser of this mixture (the library's analytic model), ready for any sampler.
  GaussianMixtureDenoiser denoiser() const {
    return GaussianMixtureDenoiser(std::vector<double>(means.begin(), means.end()), weights, variances, sigma_min,
                                   sigma_max);
  }

  /// The mean of the noisy marginal at any sigma (sigma does not move it): sum_k w_k mu_k.
  std::vector<double> mixture_mean() const {
    std::vector<double> mean(dims(), 0.0);
    for (std::size_t k = 0; k < components(); ++k)
      for (std::size_t d = 0; d < dims(); ++d) mean[d] += weights[k] * means(k, d);
    return mean;
  }

  /// `count` exact draws from the noisy marginal p_sigma, from a seeded PortableGaussian.
  xt::xarray<double> sample_marginal(std::size_t count, double sigma, std::uint64_t seed) const {
    PortableGaussian gauss(seed);
    std::mt19937_64 pick(seed ^ 0x9e3779b97f4a7c15ULL);
    xt::xarray<double> out = xt::zeros<double>({count, dims()});
    for (std::size_t b = 0; b < count; ++b) {
      const double u = static_cast<double>(pick() >> 11) * 0x1.0p-53;
      std::size_t k = 0;
      for (double acc = weights[0]; k + 1 < components() && u >= acc; acc += weights[++k]) {}
      const double scale = std::sqrt(variances[k] + sigma * sigma);
      for (std::size_t d = 0; d < dims(); ++d) out(b, d) = means(k, d) + scale * gauss();
    }
    return out;
  }

  /// The same problem restricted to component k, renormalised to weight 1: the K=1 case with a closed form.
  MixtureProblem single_component(std::size_t k = 0) const {
    if (k >= components()) throw ShapeError("mixture problem " + origin + ": no component " + std::to_string(k));
    MixtureProblem one;
    one.means = xt::xarray<double>(xt::view(means, xt::range(k, k + 1), xt::all()));
    one.weights = {1.0};
    one.variances = {variances[k]};
    one.z = z;
    one.sigma_min = sigma_min;
    one.sigma_max = sigma_max;
    one.origin = origin + " (component " + std::to_string(k) + " alone)";
    return one;
  }

  /// K=1 only: the exact probability-flow solution at `sigma_end` from x_start at `sigma_start`:
  /// x(sigma) = mu + (x_start - mu) sqrt((s^2 + sigma^2) / (s^2 + sigma_start^2)).
  xt::xarray<double> exact_flow_k1(const xt::xarray<double>& x_start, double sigma_start, double sigma_end) const {
    if (components() != 1) throw ShapeError("exact_flow_k1 needs a single-component problem, " + origin + " has " +
                                            std::to_string(components()));
    const double s2 = variances[0];
    const double ratio = std::sqrt((s2 + sigma_end * sigma_end) / (s2 + sigma_start * sigma_start));
    xt::xarray<double> out = x_start;
    for (std::size_t b = 0; b < out.shape()[0]; ++b)
      for (std::size_t d = 0; d < dims(); ++d) out(b, d) = means(0, d) + (x_start(b, d) - means(0, d)) * ratio;
    return out;
  }
};

/// The embedded problem: same kind and scale as the fixtures' samplers/problem.safetensors, generated from a
/// seed. K = 3 components in D = 64 with weights (0.5, 0.3, 0.2) and standard deviations (0.5, 0.3, 0.8); means
/// are N(0, 0.6^2 I) draws; `batch` rows of starting noise z; the sigma range is SD1's (float32 table values).
inline MixtureProblem embedded_mixture_problem(std::uint64_t seed = 1234, std::size_t batch = 4, std::size_t dims = 64) {
  PortableGaussian gauss(seed);
  MixtureProblem p;
  p.weights = {0.5, 0.3, 0.2};
  p.variances = {0.25, 0.09, 0.64};
  p.means = gauss.matrix(3, dims) * 0.6;
  p.z = gauss.matrix(batch, dims);
  p.sigma_min = sd1_sigma_min;
  p.sigma_max = sd1_sigma_max;
  p.origin = "embedded K=3 D=" + std::to_string(dims) + " seed " + std::to_string(seed);
  p.validate();
  return p;
}

}  // namespace experiments
LATENTKIT_NAMESPACE_END
