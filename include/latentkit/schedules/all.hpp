// Every schedules header. Noise schedules: training schedules, the discrete sigma<->timestep map, sigma spacings (k-diffusion/ComfyUI),
// diffusers timestep spacings (DDIM, Euler, DPM-Solver), img2img strength and the by-name registry.
#pragma once
#include "latentkit/schedules/diffusers_sigmas.hpp"
#include "latentkit/schedules/discrete.hpp"
#include "latentkit/schedules/dpm_solver_multistep.hpp"
#include "latentkit/schedules/euler_discrete.hpp"
#include "latentkit/schedules/exponential.hpp"
#include "latentkit/schedules/img2img.hpp"
#include "latentkit/schedules/karras.hpp"
#include "latentkit/schedules/linspace.hpp"
#include "latentkit/schedules/normal.hpp"
#include "latentkit/schedules/polyexponential.hpp"
#include "latentkit/schedules/registry.hpp"
#include "latentkit/schedules/sigma_schedule.hpp"
#include "latentkit/schedules/simple.hpp"
#include "latentkit/schedules/timestep_spacing.hpp"
#include "latentkit/schedules/training.hpp"
#include "latentkit/schedules/uniform.hpp"
