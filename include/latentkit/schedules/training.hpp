// Training noise schedules of DDPM-style models: betas, their cumulative products and the discrete sigma table.
// The precision template parameter picks the upstream being reproduced: float = diffusers (torch float32
// tensors), double = CompVis ldm `make_beta_schedule` + `np.cumprod` (float64).
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/names.hpp"
#include "latentkit/schedules/linspace.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// How betas are laid out over the training timesteps (diffusers' `beta_schedule` names).
enum class BetaSchedule {
  linear,            ///< linspace(beta_start, beta_end)
  scaled_linear,     ///< linspace(sqrt(beta_start), sqrt(beta_end))^2: SD's schedule (CompVis calls it "linear")
  squaredcos_cap_v2  ///< Nichol & Dhariwal cosine alpha-bar, betas capped at max_beta
};

/// "linear", "scaled_linear" or "squaredcos_cap_v2"; anything else throws UnknownNameError.
inline BetaSchedule parse_beta_schedule(std::string_view name) {
  using B = BetaSchedule;
  static constexpr std::array<std::pair<std::string_view, B>, 3> names{
      {{"linear", B::linear}, {"scaled_linear", B::scaled_linear}, {"squaredcos_cap_v2", B::squaredcos_cap_v2}}};
  return lookup_name("beta schedule", name, names);
}

/// The knobs of a training schedule. Defaults are Stable Diffusion 1.x/2.x.
struct TrainingSchedule {
  BetaSchedule beta_schedule = BetaSchedule::scaled_linear;
  index_t num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  double max_beta = 0.999;  ///< cap for squaredcos_cap_v2

  void validate() const {
    if (num_train_timesteps < 2)
      throw Error("training schedule: num_train_timesteps must be >= 2, got " + std::to_string(num_train_timesteps));
    if (!(beta_start > 0 && beta_end > 0 && beta_start < 1 && beta_end < 1))
      throw Error("training schedule: beta_start and beta_end must lie in (0, 1)");
    if (!(max_beta > 0 && max_beta < 1)) throw Error("training schedule: max_beta must lie in (0, 1)");
  }
};

/// Betas in precision T. float: diffusers (`torch.linspace(..., dtype=float32)`, squared in float32; cosine
/// computed in Python doubles then cast). double: CompVis `make_beta_schedule` (torch float64 linspace).
template <std::floating_point T>
std::vector<T> make_betas(const TrainingSchedule& s) {
  s.validate();
  const index_t n = s.num_train_timesteps;
  switch (s.beta_schedule) {
    case BetaSchedule::linear:
      return torch_linspace<T>(s.beta_start, s.beta_end, n);
    case BetaSchedule::scaled_linear: {
      std::vector<T> b = torch_linspace<T>(std::sqrt(s.beta_start), std::sqrt(s.beta_end), n);
      for (T& x : b) x = x * x;
      return b;
    }
    case BetaSchedule::squaredcos_cap_v2: {
      // diffusers betas_for_alpha_bar: beta_i = min(1 - abar((i+1)/n) / abar(i/n), max_beta).
      auto alpha_bar = [](double t) {
        const double c = std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2);
        return c * c;
      };
      std::vector<T> b(static_cast<std::size_t>(n));
      for (index_t i = 0; i < n; ++i) {
        const double t1 = static_cast<double>(i) / static_cast<double>(n);
        const double t2 = static_cast<double>(i + 1) / static_cast<double>(n);
        b[static_cast<std::size_t>(i)] = static_cast<T>(std::min(1 - alpha_bar(t2) / alpha_bar(t1), s.max_beta));
      }
      return b;
    }
  }
  throw Error("training schedule: invalid beta_schedule value");
}

/// alpha-bar_t = prod_{i<=t} (1 - beta_i). Each (1 - beta) is rounded to T; the running product is kept in double
/// and rounded per entry, which is what torch's CPU cumprod (double accumulator) and np.cumprod both do.
template <std::floating_point T>
std::vector<T> alphas_cumprod(std::span<const T> betas) {
  std::vector<T> out(betas.size());
  double acc = 1.0;
  for (std::size_t i = 0; i < betas.size(); ++i) {
    const T beta = betas[i];
    if (!(beta > 0 && beta < 1)) throw Error("alphas_cumprod: beta[" + std::to_string(i) + "] is not in (0, 1)");
    acc *= static_cast<double>(static_cast<T>(T(1) - beta));
    out[i] = static_cast<T>(acc);
  }
  return out;
}

template <std::floating_point T>
std::vector<T> alphas_cumprod(const TrainingSchedule& s) {
  const std::vector<T> b = make_betas<T>(s);
  return alphas_cumprod<T>(std::span<const T>(b));
}

/// The VE noise level of each training timestep, sigma_t = sqrt((1 - abar_t) / abar_t), computed in T
/// (k-diffusion `DiscreteEpsDDPMDenoiser`, diffusers Euler/DPM tables).
template <std::floating_point T>
std::vector<T> discrete_sigmas(std::span<const T> alphas_cumprod) {
  std::vector<T> out(alphas_cumprod.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const T a = alphas_cumprod[i];
    if (!(a > 0 && a <= 1)) throw Error("discrete_sigmas: alphas_cumprod[" + std::to_string(i) + "] is not in (0, 1]");
    out[i] = std::sqrt((T(1) - a) / a);
  }
  return out;
}

/// Element-wise precision change (e.g. the float32 `alphas_cumprod` buffer of an SD checkpoint from the float64
/// CompVis schedule).
template <std::floating_point To, std::floating_point From>
std::vector<To> cast_values(std::span<const From> values) {
  return std::vector<To>(values.begin(), values.end());
}

LATENTKIT_NAMESPACE_END
