// Sampler and schedule names (A1111, stable-diffusion.cpp, k-diffusion spellings) turned into comparison entries
// through the run-time registries, for `latentkit compare`.
#pragma once
#include <algorithm>
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
#include "latentkit/schedules/registry.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace experiments {

/// The training table of an SD1 checkpoint as A1111 and ComfyUI sample with: the float64 CompVis alphas_cumprod
/// stored as float32, then sigma in float32. Its ends are exactly A1111's sigma_min / sigma_max (0.029167532920837402
/// / 14.614642143249512); casting the float64 sigma table to float instead is one ulp off for many entries.
inline DiscreteSchedule<float> sd1_training_table() { return DiscreteSchedule<float>::compvis(); }

/// The sigmas of a registry schedule (steps + 1 values ending in 0). Range spacings use [sigma_min, sigma_max]; the
/// table spacings (normal, simple, sgm_uniform) use `table`, the SD1 float32 table by default, and ignore the range
/// (for SD1 problems it is that table's ends anyway).
inline std::vector<double> registry_sigmas(const AnySigmaSchedule& schedule, int steps, double sigma_min,
                                           double sigma_max, const DiscreteSchedule<float>& table) {
  return std::visit(
      [&](const auto& spacing) -> std::vector<double> {
        if constexpr (RangeSigmaSchedule<std::decay_t<decltype(spacing)>>)
          return spacing.template sigmas<double>(steps, sigma_min, sigma_max);
        else
          return spacing.template sigmas<double>(steps, table);
      },
      schedule);
}
inline std::vector<double> registry_sigmas(const AnySigmaSchedule& schedule, int steps, double sigma_min,
                                           double sigma_max) {
  return registry_sigmas(schedule, steps, sigma_min, sigma_max, sd1_training_table());
}

/// A schedule by any registry name (case-insensitive, aliases included); unknown names throw UnknownNameError
/// listing the valid ones. The entry is named by the canonical name.
inline ScheduleEntry schedule_entry(const std::string& name) {
  const AnySigmaSchedule schedule = parse_schedule(name);
  return {std::string(sigma_schedule_name(schedule)),
          [schedule, table = sd1_training_table()](int steps, double lo, double hi) {
            return registry_sigmas(schedule, steps, lo, hi, table);
          }};
}

/// A sampler by any registry name; an A1111 name with a schedule suffix ("DPM++ 2M Karras") runs under that
/// schedule only. Stochastic samplers draw from GaussianNoise(seed). Unknown names throw UnknownNameError.
inline SamplerEntry sampler_entry(const std::string& name) {
  const SamplerChoice choice = parse_sampler(name);
  const bool suffixed = sampler_name_has_schedule(name);
  SamplerEntry entry;
  entry.name = suffixed ? std::string(sampler_info(choice.sampler).a1111) : name;
  if (suffixed) entry.only_schedule = std::string(sigma_schedule_name(choice.schedule));
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
