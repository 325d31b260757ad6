// The inverse of the adapters: a Denoiser presented as a discrete-time VP network (epsilon, v or x0 at integer t).
#pragma once
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/denoisers/denoiser.hpp"
#include "latentkit/denoisers/prediction.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// net(x_t, t) for integer t with a = alphas_cumprod[t] (as double): sigma_t = sqrt((1 - a) / a),
///   x0 = D(x_t / sqrt(a), sigma_t),  eps = (x_t - sqrt(a) x0) / sqrt(1 - a),  v = sqrt(a) eps - sqrt(1 - a) x0.
/// This is how the analytic model stands in for a UNet in the diffusers-loop references and in examples.
template <class D>
class VpNetwork {
 public:
  VpNetwork(D denoiser, std::vector<double> alphas_cumprod, Prediction prediction)
      : denoiser_(std::forward<D>(denoiser)), alphas_cumprod_(std::move(alphas_cumprod)), prediction_(prediction) {
    for (double a : alphas_cumprod_)
      if (!(a > 0 && a < 1)) throw Error("VpNetwork: alphas_cumprod values must lie in (0, 1)");
  }

  template <Latent X>
  X operator()(const X& x_t, double t) {
    const double index = std::round(t);
    if (index != t || index < 0 || index >= static_cast<double>(alphas_cumprod_.size()))
      throw Error("VpNetwork: timestep " + std::to_string(t) + " is not an integer in [0, " +
                  std::to_string(alphas_cumprod_.size()) + ")");
    const double a = alphas_cumprod_[static_cast<std::size_t>(index)];
    const double sqrt_a = std::sqrt(a), sqrt_b = std::sqrt(1 - a);
    const double sigma = std::sqrt((1 - a) / a);
    const X x0 = denoiser_(X(x_t / sqrt_a), sigma);
    if (prediction_ == Prediction::sample) return x0;
    const X eps = X((x_t - sqrt_a * x0) / sqrt_b);
    if (prediction_ == Prediction::epsilon) return eps;
    return X(sqrt_a * eps - sqrt_b * x0);
  }

  Prediction prediction() const noexcept { return prediction_; }
  const std::vector<double>& alphas_cumprod() const noexcept { return alphas_cumprod_; }

 private:
  D denoiser_;
  std::vector<double> alphas_cumprod_;
  Prediction prediction_;
};

template <class D>
VpNetwork(D&&, std::vector<double>, Prediction) -> VpNetwork<D>;

LATENTKIT_NAMESPACE_END
