// DiscreteSchedule<T>: the map between continuous noise levels sigma and the discrete training timesteps of a
// DDPM-style model, as k-diffusion's `external.DiscreteSchedule` (the base of CompVisDenoiser) defines it.
// T is the precision of the sigma table: float reproduces an SD checkpoint's float32 `alphas_cumprod` buffer (what
// A1111 and ComfyUI use), double the float64 CompVis schedule.
#pragma once
#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/schedules/linspace.hpp"
#include "latentkit/schedules/training.hpp"

LATENTKIT_NAMESPACE_BEGIN

template <std::floating_point T>
class DiscreteSchedule {
 public:
  using value_type = T;

  /// `sigmas[t]` for t = 0..n-1, increasing (at least 2 entries, all finite and > 0).
  explicit DiscreteSchedule(std::vector<T> sigmas) : sigmas_(std::move(sigmas)) {
    if (sigmas_.size() < 2)
      throw Error("DiscreteSchedule: need at least 2 training sigmas, got " + std::to_string(sigmas_.size()));
    log_sigmas_.resize(sigmas_.size());
    for (std::size_t i = 0; i < sigmas_.size(); ++i) {
      const T s = sigmas_[i];
      if (!(s > 0) || !std::isfinite(s))
        throw Error("DiscreteSchedule: sigma[" + std::to_string(i) + "] = " + std::to_string(s) +
                    " is not finite and > 0");
      if (i > 0 && !(s > sigmas_[i - 1]))
        throw Error("DiscreteSchedule: sigmas must increase with t, but sigma[" + std::to_string(i) +
                    "] <= sigma[" + std::to_string(i - 1) + "]");
      log_sigmas_[i] = std::log(s);
    }
  }
  /// From a model's alpha-bar table: sigma = sqrt((1 - abar) / abar) in T (k-diffusion CompVisDenoiser).
  static DiscreteSchedule from_alphas_cumprod(std::span<const T> alphas_cumprod) {
    return DiscreteSchedule(discrete_sigmas<T>(alphas_cumprod));
  }
  /// From training-schedule knobs, computed in T (see make_betas for which upstream each T reproduces).
  static DiscreteSchedule from_training(const TrainingSchedule& s) {
    const std::vector<T> ac = alphas_cumprod<T>(s);
    return from_alphas_cumprod(std::span<const T>(ac));
  }

  /// What an SD checkpoint holds: alphas_cumprod computed in float64 (CompVis `register_schedule`), stored as T,
  /// then the sigma table in T. DiscreteSchedule<float>::compvis() is the table A1111 and ComfyUI sample with.
  static DiscreteSchedule compvis(const TrainingSchedule& s = {}) {
    const std::vector<double> ac64 = alphas_cumprod<double>(s);
    const std::vector<T> ac(ac64.begin(), ac64.end());
    return from_alphas_cumprod(std::span<const T>(ac));
  }

  const std::vector<T>& sigmas() const noexcept { return sigmas_; }
  const std::vector<T>& log_sigmas() const noexcept { return log_sigmas_; }
  /// Number of training timesteps.
  index_t size() const noexcept { return static_cast<index_t>(sigmas_.size()); }
  T sigma_min() const noexcept { return sigmas_.front(); }
  T sigma_max() const noexcept { return sigmas_.back(); }

  /// Continuous timestep of `sigma`: linear interpolation of log sigma between the two bracketing table entries,
  /// clamped to [0, n-1]. Done in T like upstream; sigma = 0 maps to t = 0.
  T sigma_to_t(T sigma) const {
    check_sigma(sigma);
    const T log_sigma = std::log(sigma);
    // upstream: low = argmax(cumsum(log_sigma - log_sigmas >= 0)), i.e. the last index with log_sigmas <= log_sigma
    // (0 when there is none), clamped to n-2.
    index_t low = 0;
    for (index_t i = 0; i < size(); ++i)
      if (log_sigma - log_sigmas_[static_cast<std::size_t>(i)] >= 0) low = i;
    if (low > size() - 2) low = size() - 2;
    const index_t high = low + 1;
    const T lo = log_sigmas_[static_cast<std::size_t>(low)];
    const T hi = log_sigmas_[static_cast<std::size_t>(high)];
    T w = (lo - log_sigma) / (lo - hi);
    w = w < T(0) ? T(0) : (w > T(1) ? T(1) : w);
    return mul_rounded(T(1) - w, static_cast<T>(low)) + mul_rounded(w, static_cast<T>(high));
  }
  /// The training timestep whose log sigma is nearest (first one on ties): k-diffusion with quantize=True,
  /// ComfyUI `ModelSamplingDiscrete.timestep`.
  index_t sigma_to_t_quantized(T sigma) const {
    check_sigma(sigma);
    const T log_sigma = std::log(sigma);
    index_t best = 0;
    T best_dist = std::fabs(log_sigma - log_sigmas_[0]);
    for (index_t i = 1; i < size(); ++i) {
      const T d = std::fabs(log_sigma - log_sigmas_[static_cast<std::size_t>(i)]);
      if (d < best_dist) {
        best_dist = d;
        best = i;
      }
    }
    return best;
  }
  /// sigma at a continuous timestep t in [0, n-1]: log-linear interpolation of the table. Upstream first
  /// casts t to float32 (`t.float()`), even for a float64 table, so t and its fractional weight are float32 here
  /// too; the interpolation itself runs in T.
  T t_to_sigma(double t) const {
    const float tf = static_cast<float>(t);
    if (!(tf >= 0.0f) || !(tf <= static_cast<float>(size() - 1)))
      throw Error("DiscreteSchedule::t_to_sigma: t = " + std::to_string(t) + " is outside [0, " +
                  std::to_string(size() - 1) + "]");
    const auto low = static_cast<std::size_t>(std::floor(tf));
    const auto high = static_cast<std::size_t>(std::ceil(tf));
    const float w = tf - std::trunc(tf);
    const T log_sigma = mul_rounded(static_cast<T>(1.0f - w), log_sigmas_[low]) + mul_rounded(static_cast<T>(w), log_sigmas_[high]);
    return std::exp(log_sigma);
  }
  /// k-diffusion's `get_sigmas(n)` ("normal"/"discrete" spacing): n timesteps evenly spaced from n-1 down to 0
  /// (torch float32 linspace), mapped through t_to_sigma, then a trailing 0. n = 0 gives {0}.
  std::vector<T> get_sigmas(index_t n) const {
    const std::vector<float> ts = torch_linspace<float>(static_cast<double>(size() - 1), 0.0, n);
    std::vector<T> out;
    out.reserve(ts.size() + 1);
    for (float t : ts) out.push_back(t_to_sigma(t));
    out.push_back(T(0));
    return out;
  }

 private:
  static void check_sigma(T sigma) {
    if (!(sigma >= 0) || !std::isfinite(sigma))
      throw Error("DiscreteSchedule::sigma_to_t: sigma = " + std::to_string(sigma) + " must be finite and >= 0");
  }

  std::vector<T> sigmas_;
  std::vector<T> log_sigmas_;
};

LATENTKIT_NAMESPACE_END
