// diffusers' inference timestep spacings ("linspace", "leading" + steps_offset, "trailing"; Lin et al. 2023,
// table 2) for the three scheduler families that lay them out differently: DDIM (integer, N points), Euler
// (float32, N points) and DPM-Solver multistep (integer, N+1 points with the last dropped). Reproduces
// huggingface/diffusers @58eb52c `set_timesteps` of scheduling_ddim.py, scheduling_euler_discrete.py and
// scheduling_dpmsolver_multistep.py, numpy arithmetic included (linspace/arange in float64, round half to even).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/names.hpp"
#include "latentkit/schedules/linspace.hpp"

LATENTKIT_NAMESPACE_BEGIN

enum class TimestepSpacing {
  linspace,  ///< evenly from num_train_timesteps-1 down to 0 (rounded where integer)
  leading,   ///< k * (num_train_timesteps / N) + steps_offset, counting from 0: never reaches the last timestep
  trailing   ///< num_train_timesteps - 1 - k * (num_train_timesteps / N): always starts at the last timestep
};

inline TimestepSpacing parse_timestep_spacing(std::string_view name) {
  using S = TimestepSpacing;
  static constexpr std::array<std::pair<std::string_view, S>, 3> names{
      {{"linspace", S::linspace}, {"leading", S::leading}, {"trailing", S::trailing}}};
  return lookup_name("timestep spacing", name, names);
}

namespace detail {
inline void check_inference_steps(const char* who, index_t n, index_t num_train_timesteps) {
  if (num_train_timesteps < 1) throw Error(std::string(who) + ": num_train_timesteps must be >= 1");
  if (n < 1 || n > num_train_timesteps)
    throw Error(std::string(who) + ": num_inference_steps must be in [1, " + std::to_string(num_train_timesteps) +
                "], got " + std::to_string(n));
}
/// (arange(count) * ratio) reversed: the "leading" layout before the offset.
inline std::vector<double> leading_descending(index_t count, index_t ratio) {
  std::vector<double> out(static_cast<std::size_t>(count));
  for (index_t i = 0; i < count; ++i)
    out[static_cast<std::size_t>(count - 1 - i)] = static_cast<double>(i * ratio);
  return out;
}
/// round(np.arange(start, 0, -ratio)) - 1: the "trailing" layout.
inline std::vector<double> trailing_descending(index_t start, double ratio) {
  std::vector<double> out = numpy_arange(static_cast<double>(start), 0.0, -ratio);
  for (double& t : out) t = round_half_even(t) - 1.0;
  return out;
}
}  // namespace detail

/// DDIMScheduler.set_timesteps(N): N integer timesteps, descending.
inline std::vector<std::int64_t> ddim_timesteps(index_t num_inference_steps, TimestepSpacing spacing,
                                                index_t steps_offset = 0, index_t num_train_timesteps = 1000) {
  detail::check_inference_steps("ddim_timesteps", num_inference_steps, num_train_timesteps);
  const index_t n = num_inference_steps;
  std::vector<double> t;
  switch (spacing) {
    case TimestepSpacing::linspace:
      t = numpy_linspace(0.0, static_cast<double>(num_train_timesteps - 1), n);
      for (double& x : t) x = round_half_even(x);
      t = std::vector<double>(t.rbegin(), t.rend());
      break;
    case TimestepSpacing::leading:
      t = detail::leading_descending(n, num_train_timesteps / n);
      for (double& x : t) x += static_cast<double>(steps_offset);
      break;
    case TimestepSpacing::trailing:
      t = detail::trailing_descending(num_train_timesteps,
                                      static_cast<double>(num_train_timesteps) / static_cast<double>(n));
      break;
  }
  return std::vector<std::int64_t>(t.begin(), t.end());
}

/// EulerDiscreteScheduler's timesteps before any Karras conversion: N float32 values, descending
/// ("linspace" is not rounded, so they are fractional).
inline std::vector<float> euler_spacing_timesteps(index_t num_inference_steps, TimestepSpacing spacing,
                                                  index_t steps_offset = 0, index_t num_train_timesteps = 1000) {
  detail::check_inference_steps("euler_spacing_timesteps", num_inference_steps, num_train_timesteps);
  const index_t n = num_inference_steps;
  std::vector<float> out;
  switch (spacing) {
    case TimestepSpacing::linspace: {
      const std::vector<double> t = numpy_linspace(0.0, static_cast<double>(num_train_timesteps - 1), n);
      out.assign(t.rbegin(), t.rend());
      break;
    }
    case TimestepSpacing::leading: {
      const std::vector<double> t = detail::leading_descending(n, num_train_timesteps / n);
      out.assign(t.begin(), t.end());
      for (float& x : out) x += static_cast<float>(steps_offset);
      break;
    }
    case TimestepSpacing::trailing: {
      std::vector<double> t = numpy_arange(static_cast<double>(num_train_timesteps), 0.0,
                                           -static_cast<double>(num_train_timesteps) / static_cast<double>(n));
      out.resize(t.size());
      for (std::size_t i = 0; i < t.size(); ++i) out[i] = static_cast<float>(round_half_even(t[i])) - 1.0f;
      break;
    }
  }
  return out;
}

/// DPMSolverMultistepScheduler's integer timesteps (no Karras conversion, lambda_min_clipped = -inf):
/// linspace/leading lay out N+1 points and drop the last (0).
inline std::vector<std::int64_t> dpm_solver_spacing_timesteps(index_t num_inference_steps, TimestepSpacing spacing,
                                                              index_t steps_offset = 0,
                                                              index_t num_train_timesteps = 1000) {
  detail::check_inference_steps("dpm_solver_spacing_timesteps", num_inference_steps, num_train_timesteps);
  const index_t n = num_inference_steps;
  std::vector<double> t;
  switch (spacing) {
    case TimestepSpacing::linspace: {
      const std::vector<double> full = numpy_linspace(0.0, static_cast<double>(num_train_timesteps - 1), n + 1);
      for (index_t i = n; i >= 1; --i) t.push_back(round_half_even(full[static_cast<std::size_t>(i)]));
      break;
    }
    case TimestepSpacing::leading: {
      const std::vector<double> full = detail::leading_descending(n + 1, num_train_timesteps / (n + 1));
      t.assign(full.begin(), full.end() - 1);
      for (double& x : t) x += static_cast<double>(steps_offset);
      break;
    }
    case TimestepSpacing::trailing:
      t = detail::trailing_descending(num_train_timesteps,
                                      static_cast<double>(num_train_timesteps) / static_cast<double>(n));
      break;
  }
  return std::vector<std::int64_t>(t.begin(), t.end());
}

LATENTKIT_NAMESPACE_END
