// The Denoiser concept: D(x, sigma) ~ E[x0 | x = x0 + sigma * n], the object every k-diffusion-style sampler calls.
#pragma once
#include <concepts>

#include "latentkit/config/config.hpp"
#include "latentkit/samplers/latent.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// D models Denoiser<X> when `d(x, sigma)` returns the denoised estimate of x at noise level sigma (VE scale:
/// x = x0 + sigma * n) as something convertible to X, and `d.sigma_min()` / `d.sigma_max()` give the range of noise
/// levels the model was trained on (schedules are built inside it). A UNet adapter, a guidance wrapper and the
/// analytic test model all model it.
template <class D, class X>
concept Denoiser = Latent<X> && requires(D& d, const X& x, double sigma) {
  { d(x, sigma) } -> std::convertible_to<X>;
  { d.sigma_min() } -> std::floating_point;
  { d.sigma_max() } -> std::floating_point;
};

/// A denoiser that also takes a conditioning batch `c` (text embeddings, ...), batched along the first axis with x.
/// Classifier-free guidance wraps one of these into a plain Denoiser.
template <class D, class X, class C>
concept ConditionedDenoiser = Latent<X> && requires(D& d, const X& x, double sigma, const C& c) {
  { d(x, sigma, c) } -> std::convertible_to<X>;
  { d.sigma_min() } -> std::floating_point;
  { d.sigma_max() } -> std::floating_point;
};

LATENTKIT_NAMESPACE_END
