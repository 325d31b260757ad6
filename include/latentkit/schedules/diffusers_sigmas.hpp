// The sigma arithmetic diffusers' Euler and DPM-Solver schedulers share (huggingface/diffusers @58eb52c), with
// its float32/float64 split: the table sqrt((1-abar)/abar) and its log are float32 (torch, then np.log on a
// float32 array); np.interp, the Karras ramp and `_sigma_to_t` then run in float64 numpy, except where numpy
// 1.x value-based casting keeps float32 (a float64 scalar meeting a float32 array stays float32).
#pragma once
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/schedules/linspace.hpp"
#include "latentkit/schedules/timestep_spacing.hpp"
#include "latentkit/schedules/training.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// diffusers' float32 training sigma table with its float32 log.
class DiffusersSigmaTable {
 public:
  /// From a scheduler's float32 `alphas_cumprod` (computed in float32 by torch: alphas_cumprod<float>).
  explicit DiffusersSigmaTable(std::span<const float> alphas_cumprod)
      : sigmas_(discrete_sigmas<float>(alphas_cumprod)), log_sigmas_(sigmas_.size()) {
    if (sigmas_.size() < 2) throw Error("DiffusersSigmaTable: need at least 2 training timesteps");
    for (std::size_t i = 0; i < sigmas_.size(); ++i) log_sigmas_[i] = std::log(sigmas_[i]);
  }
  explicit DiffusersSigmaTable(const TrainingSchedule& train = {})
      : DiffusersSigmaTable(std::span<const float>(alphas_cumprod<float>(train))) {}

  const std::vector<float>& sigmas() const noexcept { return sigmas_; }
  const std::vector<float>& log_sigmas() const noexcept { return log_sigmas_; }
  index_t size() const noexcept { return static_cast<index_t>(sigmas_.size()); }

  /// np.interp(t, arange(n), sigmas) in float64: linear in sigma (not log sigma) between integer timesteps.
  double interp(double t) const {
    const index_t n = size();
    if (std::isnan(t)) return t;
    if (t <= 0.0) return sigmas_.front();
    if (t >= static_cast<double>(n - 1)) return sigmas_.back();
    const auto j = static_cast<std::size_t>(std::floor(t));
    if (static_cast<double>(j) == t) return sigmas_[j];
    const double slope = static_cast<double>(sigmas_[j + 1]) - static_cast<double>(sigmas_[j]);
    return mul_rounded(slope, t - static_cast<double>(j)) + static_cast<double>(sigmas_[j]);
  }

  /// The schedulers' `_sigma_to_t(sigma, log_sigmas)` for one float64 sigma. The log is float64, but it meets the
  /// float32 table as a scalar, so numpy 1.x computes the distances and the weight w in float32; the final
  /// (1-w)*low + w*high mixes float32 with int64 arrays and is float64.
  double sigma_to_t(double sigma) const {
    const float log_sigma = static_cast<float>(std::log(std::fmax(sigma, 1e-10)));
    const index_t n = size();
    index_t low = 0;
    for (index_t i = 0; i < n; ++i)
      if (log_sigma - log_sigmas_[static_cast<std::size_t>(i)] >= 0.0f) low = i;
    if (low > n - 2) low = n - 2;
    const index_t high = low + 1;
    const float lo = log_sigmas_[static_cast<std::size_t>(low)];
    const float hi = log_sigmas_[static_cast<std::size_t>(high)];
    float w = (lo - log_sigma) / (lo - hi);
    w = w < 0.0f ? 0.0f : (w > 1.0f ? 1.0f : w);
    return mul_rounded(static_cast<double>(1.0f - w), static_cast<double>(low)) +
           mul_rounded(static_cast<double>(w), static_cast<double>(high));
  }

 private:
  std::vector<float> sigmas_;
  std::vector<float> log_sigmas_;
};

/// The schedulers' `_convert_to_karras`: n sigmas from sigma_max to sigma_min (no trailing value), float64
/// numpy: ramp = np.linspace(0, 1, n), (max^(1/rho) + ramp * (min^(1/rho) - max^(1/rho)))^rho.
inline std::vector<double> diffusers_karras_sigmas(index_t n, double sigma_min, double sigma_max, double rho = 7.0) {
  const double min_inv_rho = std::pow(sigma_min, 1.0 / rho);
  const double max_inv_rho = std::pow(sigma_max, 1.0 / rho);
  std::vector<double> out = numpy_linspace(0.0, 1.0, n);
  for (double& r : out) r = std::pow(max_inv_rho + mul_rounded(r, min_inv_rho - max_inv_rho), rho);
  return out;
}

/// What a scheduler appends after its last sigma (diffusers' `final_sigmas_type`).
enum class FinalSigma {
  zero,      ///< 0: the last step removes all noise (Euler and DPM-Solver default)
  sigma_min  ///< the smallest training sigma
};

/// The set_timesteps options that diffusers' sigma-based schedulers (EulerDiscrete, DPMSolverMultistep) share.
struct DiffusersSigmaConfig {
  TrainingSchedule train{};  ///< used when no alphas_cumprod table is passed
  TimestepSpacing timestep_spacing = TimestepSpacing::linspace;
  index_t steps_offset = 0;
  bool use_karras_sigmas = false;
  double karras_rho = 7.0;
  FinalSigma final_sigmas_type = FinalSigma::zero;
};

LATENTKIT_NAMESPACE_END
