// Adapters from a discrete-time network net(x_scaled, t) (a UNet) to a Denoiser (k-diffusion CompVisDenoiser,
// CompVisVDenoiser and an x0 variant).
#pragma once
#include <cmath>
#include <concepts>
#include <type_traits>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/denoisers/denoiser.hpp"
#include "latentkit/denoisers/prediction.hpp"
#include "latentkit/samplers/latent.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// The part of a training schedule the adapters need: the map between a noise level sigma and the network's
/// (possibly fractional) timestep t, and the range of sigmas. latentkit's DiscreteSchedule models it.
template <class S>
concept DiscreteTimeSchedule = requires(const S& s, double v) {
  { s.sigma_to_t(v) } -> std::convertible_to<double>;
  { s.t_to_sigma(v) } -> std::convertible_to<double>;
  { s.sigma_min() } -> std::convertible_to<double>;
  { s.sigma_max() } -> std::convertible_to<double>;
};

/// net(x_in, t) -> X: a network on the VP scale (x_in = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) n) at timestep t.
template <class Net, class X>
concept DiscreteTimeNetwork = Latent<X> && requires(Net& net, const X& x, double t) {
  { net(x, t) } -> std::convertible_to<X>;
};

/// net(x_in, t, context) -> X: a conditioned network (a text-conditioned UNet), context batched along the first
/// axis with x_in.
template <class Net, class X, class C>
concept ConditionedDiscreteTimeNetwork = Latent<X> && requires(Net& net, const X& x, double t, const C& context) {
  { net(x, t, context) } -> std::convertible_to<X>;
};

/// D(x, sigma) from net(c_in x, t(sigma)) with c_in = 1 / sqrt(sigma^2 + 1) (the VE sample moved to the VP scale)
/// and, by prediction type (sigma_data = 1):
///   epsilon: D = x - sigma * out
///   v:       D = x / (sigma^2 + 1) - sigma / sqrt(sigma^2 + 1) * out
///   sample:  D = out
/// `quantize` rounds t to the nearest integer timestep (k-diffusion's quantize=True picks the table entry nearest in
/// log sigma, which is the same index because t interpolates linearly in log sigma).
template <class Net, DiscreteTimeSchedule Schedule>
class DiscreteTimeDenoiser {
 public:
  DiscreteTimeDenoiser(Net net, Schedule schedule, Prediction prediction = Prediction::epsilon, bool quantize = false)
      : net_(std::forward<Net>(net)), schedule_(std::move(schedule)), prediction_(prediction), quantize_(quantize) {}

  template <Latent X>
    requires DiscreteTimeNetwork<std::remove_reference_t<Net>, X>
  X operator()(const X& x, double sigma) {
    return from_output(x, sigma, X(net_(X(x * c_in(sigma)), timestep(sigma))));
  }

  /// The conditioned form D(x, sigma, context) = from net(c_in x, t, context); with it the adapter models
  /// ConditionedDenoiser and can be wrapped by ClassifierFreeGuidance.
  template <Latent X, class C>
    requires ConditionedDiscreteTimeNetwork<std::remove_reference_t<Net>, X, C>
  X operator()(const X& x, double sigma, const C& context) {
    return from_output(x, sigma, X(net_(X(x * c_in(sigma)), timestep(sigma), context)));
  }

  double sigma_min() const { return static_cast<double>(schedule_.sigma_min()); }
  double sigma_max() const { return static_cast<double>(schedule_.sigma_max()); }
  const Schedule& schedule() const noexcept { return schedule_; }
  Prediction prediction() const noexcept { return prediction_; }
  bool quantize() const noexcept { return quantize_; }

 private:
  static double c_in(double sigma) { return 1.0 / std::sqrt(sigma * sigma + 1.0); }
  double timestep(double sigma) const {
    const double t_continuous = static_cast<double>(schedule_.sigma_to_t(sigma));
    return quantize_ ? std::round(t_continuous) : t_continuous;
  }
  template <Latent X>
  X from_output(const X& x, double sigma, const X& out) const {
    switch (prediction_) {
      case Prediction::epsilon: return X(x + out * (-sigma));
      case Prediction::v_prediction: return X(out * (-sigma * c_in(sigma)) + x * (1.0 / (sigma * sigma + 1.0)));
      case Prediction::sample: return out;
    }
    return out;
  }

  Net net_;
  Schedule schedule_;
  Prediction prediction_;
  bool quantize_;
};

template <class Net, class Schedule>
DiscreteTimeDenoiser(Net&&, Schedule, Prediction = Prediction::epsilon, bool = false)
    -> DiscreteTimeDenoiser<Net, Schedule>;

LATENTKIT_NAMESPACE_END
