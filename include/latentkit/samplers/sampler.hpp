// Sampler<Step, Schedule>: a step policy (how to move between noise levels) composed with a schedule (which levels).
#pragma once
#include <concepts>
#include <cstddef>
#include <iterator>
#include <type_traits>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/denoisers/denoiser.hpp"
#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// A sigma spacing: schedule(n, sigma_min, sigma_max) gives n sigmas from sigma_max down to sigma_min plus a
/// trailing 0 (Karras{rho}, Exponential, ...), as any range of floating-point values.
template <class S>
concept SigmaSpacing = requires(const S& s, int n, double lo, double hi) {
  { std::begin(s(n, lo, hi)) };
  { std::end(s(n, lo, hi)) };
};

/// A step policy runs `step(model, x, sigmas, noise, callback)` over an explicit sigma list and returns the final x.
/// Every sampler header (Euler, DPMpp2M, ...) defines one; use them directly for img2img or replayed references.
template <class Step, class X, class D, class N, class C>
concept StepPolicyFor = requires(const Step& step, D& model, X x, Sigmas sigmas, N& noise, C& callback) {
  { step(model, x, sigmas, noise, callback) } -> std::convertible_to<X>;
};

template <SigmaSpacing Schedule>
std::vector<double> make_sigmas(const Schedule& schedule, int steps, double sigma_min, double sigma_max) {
  if (steps < 1) throw Error("make_sigmas: steps must be >= 1");
  std::vector<double> sigmas;
  for (const auto& s : schedule(steps, sigma_min, sigma_max)) sigmas.push_back(static_cast<double>(s));
  return sigmas;
}

/// Sampler<DPMpp2M, Karras> sample{.schedule = {.rho = 7}};  x = sample(denoiser, noise, 20, GaussianNoise{seed});
/// builds the sigmas from the denoiser's range, scales the unit-variance starting noise by sigmas[0] and runs the
/// step policy. The policy keeps its own multistep history; the denoiser is the only thing that runs a network.
template <class Step, SigmaSpacing Schedule>
struct Sampler {
  Step step{};
  Schedule schedule{};

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires StepPolicyFor<Step, X, D, std::remove_cvref_t<N>, std::remove_cvref_t<C>>
  X operator()(D& model, const X& unit_noise, int steps, N&& noise, C&& callback = {}) const {
    const std::vector<double> sigmas =
        make_sigmas(schedule, steps, static_cast<double>(model.sigma_min()), static_cast<double>(model.sigma_max()));
    return step(model, X(unit_noise * sigmas.front()), Sigmas(sigmas), noise, callback);
  }
};

LATENTKIT_NAMESPACE_END
