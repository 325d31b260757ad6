// Where a network's time goes: seconds and floating-point operations per layer kind (convolution, linear,
// attention, normalisation, the rest). Layers take an optional Profile*; a null pointer costs one branch.
// FLOPs count one multiply-add as 2, for the matrix products only (norms and element-wise work count 0 FLOPs but
// their time is recorded), so GFLOP/s per kind compares directly with the FMA peak.
#pragma once
#include <array>
#include <chrono>
#include <string_view>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN

enum class LayerKind { conv, linear, attention, norm, other };
inline constexpr std::array<LayerKind, 5> layer_kinds{LayerKind::conv, LayerKind::linear, LayerKind::attention,
                                                      LayerKind::norm, LayerKind::other};

inline constexpr std::string_view layer_kind_name(LayerKind k) noexcept {
  switch (k) {
    case LayerKind::conv: return "conv";
    case LayerKind::linear: return "linear";
    case LayerKind::attention: return "attention";
    case LayerKind::norm: return "norm";
    case LayerKind::other: return "other";
  }
  return "?";
}

struct Profile {
  std::array<double, 5> seconds{};
  std::array<double, 5> flops{};
  std::array<long, 5> calls{};

  double total_seconds() const noexcept { return seconds[0] + seconds[1] + seconds[2] + seconds[3] + seconds[4]; }
  double total_flops() const noexcept { return flops[0] + flops[1] + flops[2] + flops[3] + flops[4]; }
  void add(LayerKind k, double s, double f) noexcept {
    const auto i = static_cast<std::size_t>(k);
    seconds[i] += s, flops[i] += f, ++calls[i];
  }
  Profile& operator+=(const Profile& o) noexcept {
    for (std::size_t i = 0; i < 5; ++i) seconds[i] += o.seconds[i], flops[i] += o.flops[i], calls[i] += o.calls[i];
    return *this;
  }
};

/// Adds the time from construction to destruction (and `flops`) to `profile` under `kind`; no-op when null.
class ProfileScope {
 public:
  ProfileScope(Profile* profile, LayerKind kind, double flops = 0.0) noexcept : profile_(profile), kind_(kind), flops_(flops) {
    if (profile_) start_ = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (profile_)
      profile_->add(kind_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(), flops_);
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  Profile* profile_;
  LayerKind kind_;
  double flops_;
  std::chrono::steady_clock::time_point start_{};
};

LATENTKIT_NAMESPACE_END
