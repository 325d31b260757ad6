// Sampler and schedule names (A1111, stable-diffusion.cpp, k-diffusion spellings) turned into comparison entries
// through the run-time registries, for `latentkit compare`.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/experiments/sampler_comparison.hpp"
#include "latentkit/samplers/noise.hpp"
#include "latentkit/samplers/registry.hpp"
#include "latentkit/schedules/discrete.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace experiments {

/// Karras et al. 2022 (eq. 5) and the log-uniform spacing, as k-diffusion's get_sigmas_karras /
/// get_sigmas_exponential define them (n values from sigma_max to sigma_min, then 0), in double.
/// The schedules area has no spacing headers yet; these two formulas stand in until it has.
inline std::vector<double> karras_sigmas(int n, double sigma_min, double sigma_max, double rho = 7.0) {
  const double lo = std::pow(sigma_min, 1.0 / rho), hi = std::pow(sigma_max, 1.0 / rho);
  std::vector<double> s;
  for (int i = 0; i < n; ++i) s.push_back(std::pow(hi + (n > 1 ? double(i) / (n - 1) : 0.0) * (lo - hi), rho));
  s.push_back(0.0);
  return s;
}
inline std::vector<double> exponential_sigmas(int n, double sigma_min, double sigma_max) {
  const double lo = std::log(sigma_min), hi = std::log(sigma_max);
  std::vector<double> s;
  for (int i = 0; i < n; ++i) s.push_back(std::exp(hi + (n > 1 ? double(i) / (n - 1) : 0.0) * (lo - hi)));
  s.push_back(0.0);
  return s;
}

/// The sigmas of a registry schedule. `normal` is the discrete schedule of an SD1 model (its float32 table, as A1111
/// uses it; k-diffusion get_sigmas), so it ignores sigma_min/sigma_max, which for SD1 problems are that table's ends anyway.
inline std::vector<double> registry_sigmas(ScheduleKind kind, int steps, double sigma_min, double sigma_max) {
  switch (kind) {
    case ScheduleKind::normal: {
      // An SD1 checkpoint's float32 alphas_cumprod buffer is the float64 CompVis schedule cast to float32.
      const std::vector<double> abar = alphas_cumprod<double>(TrainingSchedule{});
      const std::vector<float> abar_f32 = cast_values<float>(std::span<const double>(abar));
      const auto table = DiscreteSchedule<float>::from_alphas_cumprod(std::span<const float>(abar_f32));
      const std::vector<float> s = table.get_sigmas(steps);
      return std::vector<double>(s.begin(), s.end());
    }
    case ScheduleKind::karras: return karras_sigmas(steps, sigma_min, sigma_max);
    case ScheduleKind::exponential: return exponential_sigmas(steps, sigma_min, sigma_max);
  }
  throw Error("registry_sigmas: schedule kind outside the table");
}

/// A schedule by name; unknown names throw UnknownNameError listing the valid ones.
inline ScheduleEntry schedule_entry(const std::string& name) {
  const ScheduleKind kind = parse_schedule(name);
  return {std::string(schedule_name(kind)),
          [kind](int steps, double lo, double hi) { return registry_sigmas(kind, steps, lo, hi); }};
}

/// A sampler by any registry name; an A1111 name with a schedule suffix ("DPM++ 2M Karras") runs under that
/// schedule only. Stochastic samplers draw from GaussianNoise(seed). Unknown names throw UnknownNameError.
inline SamplerEntry sampler_entry(const std::string& name) {
  const SamplerChoice choice = parse_sampler(name);
  const bool suffixed = name.ends_with(" Karras") || name.ends_with(" Exponential");
  SamplerEntry entry;
  entry.name = suffixed ? std::string(sampler_info(choice.sampler).a1111) : name;
  if (suffixed) entry.only_schedule = std::string(schedule_name(choice.schedule));
  entry.run = [step = make_step(choice.sampler)](CountingDenoiser& model, const Batch& x, std::span<const double> sigmas,
                                                  std::uint64_t seed) {
    return run_steps(step, model, x, Sigmas(sigmas), GaussianNoise(seed));
  };
  return entry;
}

/// Comma-separated names, trimmed of surrounding spaces; empty items are dropped.
inline std::vector<std::string> split_names(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

/// What to compare, resolved from names. Schedules pinned by suffixed sampler names are added when missing.
struct ComparisonPlan {
  std::vector<SamplerEntry> samplers;
  std::vector<ScheduleEntry> schedules;
};

inline ComparisonPlan plan_from_names(const std::vector<std::string>& sampler_names,
                                      const std::vector<std::string>& schedule_names) {
  ComparisonPlan plan;
  const auto has_schedule = [&](const std::string& n) {
    return std::any_of(plan.schedules.begin(), plan.schedules.end(), [&](const ScheduleEntry& s) { return s.name == n; });
  };
  for (const std::string& n : schedule_names) {
    ScheduleEntry s = schedule_entry(n);
    if (!has_schedule(s.name)) plan.schedules.push_back(std::move(s));
  }
  for (const std::string& n : sampler_names) {
    plan.samplers.push_back(sampler_entry(n));
    const std::string& pinned = plan.samplers.back().only_schedule;
    if (!pinned.empty() && !has_schedule(pinned)) plan.schedules.push_back(schedule_entry(pinned));
  }
  return plan;
}

}  // namespace experiments
LATENTKIT_NAMESPACE_END
