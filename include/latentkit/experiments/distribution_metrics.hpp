// Distribution-level errors for stochastic samplers. An ancestral or SDE sampler does not follow the
// probability-flow ODE, so its sample is not compared with the ODE solution; instead a batch of seeded samples is
// compared with the distribution it should come from, the mixture's noisy marginal at the final sigma.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/experiments/mixture_problem.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace experiments {

struct DistributionError {
  double sliced_w1 = 0.0;      ///< sliced Wasserstein-1 distance between the samples and exact draws
  double mean_error = 0.0;     ///< max_d |sample mean - mixture mean|
  double assignment_tv = 0.0;  ///< total variation between component frequencies (MAP assignment) and weights
};

/// Sliced Wasserstein-1 between two equally sized point sets [N, D]: the mean over `directions` seeded random
/// unit vectors of the 1-D W1 of the projections (sorted, matched in order). Deterministic for a given seed.
inline double sliced_wasserstein1(const xt::xarray<double>& a, const xt::xarray<double>& b, int directions = 64,
                                  std::uint64_t seed = 7) {
  if (a.dimension() != 2 || a.shape() != b.shape() || a.shape()[0] == 0)
    throw ShapeError("sliced_wasserstein1: need two non-empty [N, D] sets of the same shape");
  const std::size_t n = a.shape()[0], dim = a.shape()[1];
  PortableGaussian gauss(seed);
  std::vector<double> dir(dim), pa(n), pb(n);
  double total = 0.0;
  for (int l = 0; l < directions; ++l) {
    double norm = 0.0;
    for (auto& v : dir) norm += (v = gauss()) * v;
    norm = std::sqrt(norm);
    for (std::size_t i = 0; i < n; ++i) {
      double sa = 0.0, sb = 0.0;
      for (std::size_t d = 0; d < dim; ++d) {
        sa += a(i, d) * dir[d];
        sb += b(i, d) * dir[d];
      }
      pa[i] = sa / norm;
      pb[i] = sb / norm;
    }
    std::sort(pa.begin(), pa.end());
    std::sort(pb.begin(), pb.end());
    double w1 = 0.0;
    for (std::size_t i = 0; i < n; ++i) w1 += std::abs(pa[i] - pb[i]);
    total += w1 / static_cast<double>(n);
  }
  return total / directions;
}

/// How far `samples` [N, D] are from the problem's marginal at `sigma` (0 = the data distribution). The sliced
/// W1 uses N exact draws made with `exact_seed`; with finite N it has a noise floor, measure_floor() gives it.
inline DistributionError distribution_error(const MixtureProblem& problem, const xt::xarray<double>& samples,
                                            double sigma, std::uint64_t exact_seed = 99) {
  if (samples.dimension() != 2 || samples.shape()[1] != problem.dims() || samples.shape()[0] == 0)
    throw ShapeError("distribution_error: samples must be [N, " + std::to_string(problem.dims()) + "]");
  const std::size_t n = samples.shape()[0];
  DistributionError e;
  e.sliced_w1 = sliced_wasserstein1(samples, problem.sample_marginal(n, sigma, exact_seed));

  const std::vector<double> mean = problem.mixture_mean();
  for (std::size_t d = 0; d < problem.dims(); ++d) {
    double m = 0.0;
    for (std::size_t i = 0; i < n; ++i) m += samples(i, d);
    e.mean_error = std::max(e.mean_error, std::abs(m / static_cast<double>(n) - mean[d]));
  }

  const xt::xarray<double> r = problem.log_responsibilities(samples, sigma);
  std::vector<double> freq(problem.components(), 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t best = 0;
    for (std::size_t k = 1; k < problem.components(); ++k)
      if (r(i, k) > r(i, best)) best = k;
    freq[best] += 1.0 / static_cast<double>(n);
  }
  for (std::size_t k = 0; k < problem.components(); ++k) e.assignment_tv += 0.5 * std::abs(freq[k] - problem.weights[k]);
  return e;
}

/// The Monte-Carlo floor of distribution_error for N samples: the same metrics for N exact draws (another seed).
/// A stochastic sampler cannot be told apart from exact sampling once its error is at this level.
inline DistributionError measure_floor(const MixtureProblem& problem, std::size_t n, double sigma,
                                       std::uint64_t exact_seed = 99) {
  return distribution_error(problem, problem.sample_marginal(n, sigma, exact_seed + 1000003), sigma, exact_seed);
}

}  // namespace experiments
LATENTKIT_NAMESPACE_END
