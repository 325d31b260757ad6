// Sampler<Step, Schedule>: a step policy (how to move between noise levels) composed with a schedule (which levels).
#pragma once
#include <concepts>
#include <cstddef>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/denoisers/denoiser.hpp"
#include "latentkit/samplers/step.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// A sigma spacing from the schedules module (Karras{rho}, Exponential, ...): `s.sigmas<double>(n, lo, hi)` gives
/// n sigmas from sigma_max down to sigma_min plus a trailing 0.
template <class S>
concept RangeSpacing = requires(const S& s, index_t n, double lo, double hi) {
  { s.template sigmas<double>(n, lo, hi) } -> std::same_as<std::vector<double>>;
};
/// A spacing that reads the model's training table (Normal, Simple, ... and the range ones too), usable when the
/// denoiser exposes it as `d.schedule()` (DiscreteTimeDenoiser does).
template <class S, class D>
concept TableSpacingFor = requires(const S& s, index_t n, const D& d) {
  { s.template sigmas<double>(n, d.schedule()) } -> std::same_as<std::vector<double>>;
};
/// Also accepted: any callable `s(n, sigma_min, sigma_max)` returning a range of floating-point sigmas.
template <class S>
concept CallableSpacing = requires(const S& s, int n, double lo, double hi) {
  { std::begin(s(n, lo, hi)) };
  { std::end(s(n, lo, hi)) };
};
template <class S>
concept SigmaSpacing = RangeSpacing<S> || CallableSpacing<S> || requires { S::name; };

/// A step policy runs `step(model, x, sigmas, noise, callback)` over an explicit sigma list and returns the final x.
/// Every sampler header (Euler, DPMpp2M, ...) defines one; use them directly for img2img or replayed references.
template <class Step, class X, class D, class N, class C>
concept StepPolicyFor = requires(const Step& step, D& model, X x, Sigmas sigmas, N& noise, C& callback) {
  { step(model, x, sigmas, noise, callback) } -> std::convertible_to<X>;
};

/// The sigmas of `schedule` for `steps` steps on `model`: from its training table when both support it (needed by
/// Normal and Simple), otherwise from its [sigma_min, sigma_max].
template <class Schedule, class D>
std::vector<double> make_sigmas(const Schedule& schedule, int steps, const D& model) {
  if (steps < 1) throw Error("make_sigmas: steps must be >= 1, got " + std::to_string(steps));
  const double lo = static_cast<double>(model.sigma_min()), hi = static_cast<double>(model.sigma_max());
  if constexpr (TableSpacingFor<Schedule, D>) {
    return schedule.template sigmas<double>(steps, model.schedule());
  } else if constexpr (RangeSpacing<Schedule>) {
    return schedule.template sigmas<double>(steps, lo, hi);
  } else if constexpr (CallableSpacing<Schedule>) {
    std::vector<double> sigmas;
    for (const auto& s : schedule(steps, lo, hi)) sigmas.push_back(static_cast<double>(s));
    return sigmas;
  } else {
    static_assert(TableSpacingFor<Schedule, D>,
                  "this schedule needs the model's training table: the denoiser must expose schedule()");
    return {};
  }
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
    const std::vector<double> sigmas = make_sigmas(schedule, steps, model);
    return step(model, X(unit_noise * sigmas.front()), Sigmas(sigmas), noise, callback);
  }
};

LATENTKIT_NAMESPACE_END
