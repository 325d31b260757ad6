// Every sampler, the composition and the name registry (prefer the specific headers in your own code).
#pragma once
#include "latentkit/denoisers/denoiser.hpp"
#include "latentkit/denoisers/discrete_time.hpp"
#include "latentkit/denoisers/gaussian_mixture.hpp"
#include "latentkit/denoisers/guidance.hpp"
#include "latentkit/denoisers/prediction.hpp"
#include "latentkit/denoisers/vp_network.hpp"
#include "latentkit/samplers/diffusers_ddim.hpp"
#include "latentkit/samplers/diffusers_dpm_solver.hpp"
#include "latentkit/samplers/noise.hpp"
#include "latentkit/samplers/registry.hpp"
#include "latentkit/samplers/sampler.hpp"
