// diffusers `EulerDiscreteScheduler.set_timesteps` (scheduling_euler_discrete.py @58eb52c, timestep_type
// "discrete", interpolation "linear"): float32 timesteps, N+1 float32 sigmas and init_noise_sigma.
#pragma once
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "latentkit/schedules/diffusers_sigmas.hpp"
#include "latentkit/schedules/timestep_spacing.hpp"
#include "latentkit/schedules/training.hpp"

LATENTKIT_NAMESPACE_BEGIN

using EulerDiscreteConfig = DiffusersSigmaConfig;  // the options diffusers' sigma-based schedulers share

struct EulerDiscreteTimesteps {
  std::vector<float> timesteps;  ///< N, descending; fractional with Karras sigmas
  std::vector<float> sigmas;     ///< N+1
  float init_noise_sigma = 1.0f; ///< scale of the initial noise: max sigma, or sqrt(max^2+1) for "leading"
};

/// set_timesteps(num_inference_steps) for a scheduler whose float32 alphas_cumprod is given.
inline EulerDiscreteTimesteps euler_discrete_timesteps(std::span<const float> alphas_cumprod,
                                                       const EulerDiscreteConfig& cfg, index_t num_inference_steps) {
  const DiffusersSigmaTable table(alphas_cumprod);
  const std::vector<float> spaced =
      euler_spacing_timesteps(num_inference_steps, cfg.timestep_spacing, cfg.steps_offset, table.size());
  std::vector<double> sigmas(spaced.size());
  for (std::size_t i = 0; i < spaced.size(); ++i) sigmas[i] = table.interp(static_cast<double>(spaced[i]));

  EulerDiscreteTimesteps out;
  if (cfg.use_karras_sigmas) {
    // the ramp runs between the interpolated end points, not the table's extremes
    sigmas = diffusers_karras_sigmas(num_inference_steps, sigmas.back(), sigmas.front(), cfg.karras_rho);
    for (double s : sigmas) out.timesteps.push_back(static_cast<float>(table.sigma_to_t(s)));
  } else {
    out.timesteps = spaced;
  }
  const double last = cfg.final_sigmas_type == FinalSigma::zero ? 0.0 : static_cast<double>(table.sigmas().front());
  out.sigmas.assign(sigmas.begin(), sigmas.end());
  out.sigmas.push_back(static_cast<float>(last));

  const float max_sigma = *std::max_element(out.sigmas.begin(), out.sigmas.end());
  out.init_noise_sigma = cfg.timestep_spacing == TimestepSpacing::leading
                             ? std::sqrt(mul_rounded(max_sigma, max_sigma) + 1.0f)
                             : max_sigma;
  return out;
}

/// The same with the table computed from cfg.train in float32, as the scheduler's constructor does.
inline EulerDiscreteTimesteps euler_discrete_timesteps(const EulerDiscreteConfig& cfg, index_t num_inference_steps) {
  const std::vector<float> ac = alphas_cumprod<float>(cfg.train);
  return euler_discrete_timesteps(std::span<const float>(ac), cfg, num_inference_steps);
}

LATENTKIT_NAMESPACE_END
