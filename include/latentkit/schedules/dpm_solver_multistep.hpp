// diffusers `DPMSolverMultistepScheduler.set_timesteps` (scheduling_dpmsolver_multistep.py @58eb52c, default
// lambda_min_clipped = -inf): integer timesteps and N+1 float32 sigmas. With Karras sigmas the timesteps are the
// rounded `_sigma_to_t` of each sigma, so the model is evaluated at a slightly different noise level than the
// sigma the solver steps with.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "latentkit/schedules/diffusers_sigmas.hpp"
#include "latentkit/schedules/timestep_spacing.hpp"
#include "latentkit/schedules/training.hpp"

LATENTKIT_NAMESPACE_BEGIN

using DpmSolverMultistepConfig = DiffusersSigmaConfig;  // the options diffusers' sigma-based schedulers share

struct DpmSolverMultistepTimesteps {
  std::vector<std::int64_t> timesteps;  ///< N, descending
  std::vector<float> sigmas;            ///< N+1
};

inline DpmSolverMultistepTimesteps dpm_solver_multistep_timesteps(std::span<const float> alphas_cumprod,
                                                                  const DpmSolverMultistepConfig& cfg,
                                                                  index_t num_inference_steps) {
  const DiffusersSigmaTable table(alphas_cumprod);
  DpmSolverMultistepTimesteps out;
  std::vector<double> sigmas;
  double last = 0.0;
  if (cfg.use_karras_sigmas) {
    detail::check_inference_steps("dpm_solver_multistep_timesteps", num_inference_steps, table.size());
    // the ramp spans the whole table: flip(sigmas)[-1] is the smallest, [0] the largest
    sigmas = diffusers_karras_sigmas(num_inference_steps, table.sigmas().front(), table.sigmas().back(),
                                     cfg.karras_rho);
    for (double s : sigmas) out.timesteps.push_back(static_cast<std::int64_t>(round_half_even(table.sigma_to_t(s))));
    if (cfg.final_sigmas_type == FinalSigma::sigma_min) last = sigmas.back();
  } else {
    out.timesteps =
        dpm_solver_spacing_timesteps(num_inference_steps, cfg.timestep_spacing, cfg.steps_offset, table.size());
    for (std::int64_t t : out.timesteps) sigmas.push_back(table.interp(static_cast<double>(t)));
    if (cfg.final_sigmas_type == FinalSigma::sigma_min) last = table.sigmas().front();
  }
  out.sigmas.assign(sigmas.begin(), sigmas.end());
  out.sigmas.push_back(static_cast<float>(last));
  return out;
}

inline DpmSolverMultistepTimesteps dpm_solver_multistep_timesteps(const DpmSolverMultistepConfig& cfg,
                                                                  index_t num_inference_steps) {
  const std::vector<float> ac = alphas_cumprod<float>(cfg.train);
  return dpm_solver_multistep_timesteps(std::span<const float>(ac), cfg, num_inference_steps);
}

LATENTKIT_NAMESPACE_END
