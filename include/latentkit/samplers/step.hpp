// What every step policy shares: the sigma list, the per-step callback, and the small formulas of k-diffusion.
#pragma once
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/denoisers/denoiser.hpp"
#include "latentkit/samplers/latent.hpp"
#include "latentkit/samplers/noise.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Noise levels to visit, decreasing, usually ending in 0 (VE scale). A sampler runs sigmas.size() - 1 steps.
using Sigmas = std::span<const double>;

/// Called once per step with the step index, sigma_i, the state x at the start of the step and the denoiser output
/// of that step's first model call (progress bars, previews, tests).
template <class C, class X>
concept StepCallback = std::invocable<C&, std::size_t, double, const X&, const X&>;

struct NoCallback {
  template <class X>
  void operator()(std::size_t, double, const X&, const X&) const noexcept {}
};

/// Throws unless sigmas has at least one step, never increases, every sigma before the last is finite and > 0 and
/// the last is finite and >= 0. Only the final sigma may be 0: the steps divide by the current sigma (to_d, the
/// ancestral split), so an earlier zero would silently turn the result into NaN.
inline void check_sigmas(Sigmas sigmas, const char* sampler) {
  if (sigmas.size() < 2)
    throw Error(std::string(sampler) + ": at least 2 sigmas (one step) expected, got " + std::to_string(sigmas.size()));
  const std::size_t last = sigmas.size() - 1;
  for (std::size_t i = 0; i < sigmas.size(); ++i) {
    if (!std::isfinite(sigmas[i]) || !(i == last ? sigmas[i] >= 0 : sigmas[i] > 0))
      throw Error(std::string(sampler) + ": sigma " + std::to_string(i) + " is " + std::to_string(sigmas[i]) +
                  "; expected finite and " + (i == last ? ">= 0 (the last one)" : "> 0 (only the last one may be 0)"));
    if (i && sigmas[i] > sigmas[i - 1])
      throw Error(std::string(sampler) + ": sigmas must not increase (index " + std::to_string(i) + ")");
  }
}

/// The Karras ODE derivative dx/dsigma = (x - D(x, sigma)) / sigma.
template <Latent X>
X to_d(const X& x, double sigma, const X& denoised) {
  return X((x - denoised) / sigma);
}

/// Ancestral split of a step sigma_from -> sigma_to into a deterministic step to sigma_down and fresh noise of
/// std sigma_up, with sigma_down^2 + sigma_up^2 = sigma_to^2; eta scales the noise (0: deterministic).
struct AncestralStep {
  double sigma_down, sigma_up;
};
inline AncestralStep ancestral_step(double sigma_from, double sigma_to, double eta = 1.0) {
  if (eta == 0) return {sigma_to, 0.0};
  const double up = std::min(
      sigma_to, eta * std::sqrt(sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
                                (sigma_from * sigma_from)));
  return {std::sqrt(sigma_to * sigma_to - up * up), up};
}

/// Log-SNR style time of DPM-Solver: t = -log(sigma), sigma = exp(-t).
inline double t_of_sigma(double sigma) { return -std::log(sigma); }
inline double sigma_of_t(double t) { return std::exp(-t); }

/// Stochastic churn of Karras et al. 2022, Algorithm 2 (Euler, Heun, DPM2): raise the noise level from sigma_i to
/// sigma_hat = sigma_i (1 + gamma) by adding fresh noise, when sigma_i lies in [s_tmin, s_tmax]. s_churn = 0 (the
/// default) turns it off and draws no noise.
struct Churn {
  double s_churn = 0.0;
  double s_tmin = 0.0;
  double s_tmax = std::numeric_limits<double>::infinity();
  double s_noise = 1.0;

  /// Returns sigma_hat; adds the churn noise to x when gamma > 0.
  template <Latent X, NoiseSource<X> N>
  double apply(X& x, Sigmas sigmas, std::size_t i, N& noise) const {
    const double sigma = sigmas[i];
    const double gamma = (s_tmin <= sigma && sigma <= s_tmax)
                             ? std::min(s_churn / static_cast<double>(sigmas.size() - 1), std::sqrt(2.0) - 1.0)
                             : 0.0;
    const double sigma_hat = sigma * (gamma + 1.0);
    if (gamma > 0) x = X(x + noise(sigma, sigma_hat, x) * (s_noise * std::sqrt(sigma_hat * sigma_hat - sigma * sigma)));
    return sigma_hat;
  }
};

LATENTKIT_NAMESPACE_END
