// The sampler comparison: for samplers x schedules x step counts, on the analytic Gaussian-mixture model,
// measure the number of denoiser calls (NFE), the error, and the sampler's own time per step.
//
// Errors:
//  * deterministic (ODE) samplers: max-abs and RMS distance of the final sample to the exact probability-flow
//    solution from the same start: the closed form when the problem has one component, otherwise a converged RK4
//    reference (reference_solution.hpp) whose change on doubling its step count is reported;
//  * stochastic (ancestral, SDE) samplers do not converge to that solution; a batch of seeded starts is compared
//    with the distribution it should follow (distribution_metrics.hpp: sliced W1, mean error, assignment TV),
//    next to the Monte-Carlo floor of the same metrics for exact draws.
// Whether a sampler is stochastic is measured, not declared: it is run twice with different noise seeds.
//
// Samplers and schedules enter as type-erased entries (name + function), so the comparison works with the
// run-time registries, with compile-time compositions (examples/compare) and with test doubles alike.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/denoisers/gaussian_mixture.hpp"
#include "latentkit/experiments/distribution_metrics.hpp"
#include "latentkit/experiments/mixture_problem.hpp"
#include "latentkit/experiments/reference_solution.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace experiments {

using Batch = xt::xarray<double>;

/// Counts the calls of a denoiser and the time spent inside them, so that a sampler's own cost is the total minus
/// that. Models the Denoiser concept for xt::xarray<double>.
template <class Inner>
struct InstrumentedDenoiser {
  const Inner* inner;
  std::int64_t calls = 0;
  std::chrono::nanoseconds inside{0};

  Batch operator()(const Batch& x, double sigma) {
    const auto start = std::chrono::steady_clock::now();
    Batch out = (*inner)(x, sigma);
    inside += std::chrono::steady_clock::now() - start;
    ++calls;
    return out;
  }
  double sigma_min() const { return inner->sigma_min(); }
  double sigma_max() const { return inner->sigma_max(); }
};
using CountingDenoiser = InstrumentedDenoiser<GaussianMixtureDenoiser>;

/// A sampler as the comparison sees it: run the sampler over an explicit sigma list from x (already scaled to
/// sigmas[0]) with the given denoiser; stochastic samplers draw their noise from a source seeded with `seed`.
struct SamplerEntry {
  std::string name;
  std::string only_schedule;  ///< non-empty: run under this schedule only (A1111 names such as "DPM++ 2M Karras")
  std::function<Batch(CountingDenoiser& model, const Batch& x, std::span<const double> sigmas, std::uint64_t seed)> run;
};
/// A schedule: `steps` steps from sigma_max to sigma_min then 0, i.e. steps + 1 decreasing values ending in 0.
struct ScheduleEntry {
  std::string name;
  std::function<std::vector<double>(int steps, double sigma_min, double sigma_max)> sigmas;
};

/// Where the runs stop. `last_sigma` gives clean convergence orders; `zero` is what image generation does, and
/// its final step to 0 is first order for every sampler (x = D(x, sigma_min) for most of them).
enum class Endpoint { last_sigma, zero };

struct ComparisonOptions {
  std::vector<int> steps{5, 10, 20, 40};
  Endpoint endpoint = Endpoint::last_sigma;
  std::size_t stochastic_batch = 256;  ///< seeded starts for the distribution-level error of stochastic samplers
  std::size_t timing_batch = 256;      ///< rows of the latent timed: 256 x 64 = 16384 values = one SD 512x512 latent
  int timing_repeats = 3;              ///< timing runs per cell; the fastest is kept
  double assumed_unet_seconds = 0.5;   ///< one UNet call, to put the sampler's overhead in proportion (stated)
  double reference_tolerance = 1e-10;  ///< max-abs change on doubling that declares the RK4 reference converged
  std::uint64_t seed = 42;
};

struct ComparisonRow {
  std::string sampler, schedule;
  int steps = 0;             ///< sampler steps (denoiser calls per step depend on the sampler)
  std::int64_t nfe = 0;      ///< denoiser calls of one run
  bool stochastic = false;
  double sigma_end = 0;      ///< the noise level the run ends at
  // deterministic samplers: distance to the probability-flow solution
  double max_abs = std::numeric_limits<double>::quiet_NaN();
  double rms = std::numeric_limits<double>::quiet_NaN();
  // stochastic samplers: distance of a batch of samples to the true distribution, and that metric's MC floor
  double sliced_w1 = std::numeric_limits<double>::quiet_NaN();
  double sliced_w1_floor = std::numeric_limits<double>::quiet_NaN();
  double mean_error = std::numeric_limits<double>::quiet_NaN();
  double assignment_tv = std::numeric_limits<double>::quiet_NaN();
  // the sampler's own cost: run time minus time inside the denoiser
  double overhead_us_per_step = 0;
  double overhead_fraction_of_unet = 0;  ///< overhead per step / assumed_unet_seconds

  /// The number the plot shows: max-abs for deterministic samplers, sliced W1 for stochastic ones.
  double error() const { return stochastic ? sliced_w1 : max_abs; }
};

/// How the deterministic error was defined for one (start sigma, end sigma) pair.
struct ReferenceInfo {
  double sigma_start = 0, sigma_end = 0;
  bool closed_form = false;
  int rk4_steps = 0;              ///< 0 for the closed form
  double change_on_doubling = 0;  ///< convergence evidence of the RK4 reference
};

struct ComparisonResult {
  std::string problem;  ///< MixtureProblem::origin
  std::size_t components = 0, dims = 0, batch = 0;
  ComparisonOptions options;
  std::vector<ReferenceInfo> references;
  std::vector<ComparisonRow> rows;
};

/// The sigma list a run uses: the schedule's, without its trailing 0 when the endpoint is `last_sigma` (then the
/// schedule is asked for steps + 1 steps so that exactly `steps` steps remain, ending at sigma_min).
inline std::vector<double> run_sigmas(const ScheduleEntry& schedule, int steps, double sigma_min, double sigma_max,
                                      Endpoint endpoint) {
  if (steps < 1) throw Error("compare: step counts must be >= 1, got " + std::to_string(steps));
  std::vector<double> s = schedule.sigmas(endpoint == Endpoint::last_sigma ? steps + 1 : steps, sigma_min, sigma_max);
  if (endpoint == Endpoint::last_sigma) {
    if (s.empty() || s.back() != 0.0)
      throw Error("compare: schedule " + schedule.name + " did not end with sigma 0 as schedules must");
    s.pop_back();
  }
  if (s.size() != static_cast<std::size_t>(steps) + 1 || !(s.back() < s.front()))
    throw Error("compare: schedule " + schedule.name + " gave " + std::to_string(s.size()) + " sigmas for " +
                std::to_string(steps) + " steps");
  return s;
}

namespace detail {

/// The probability-flow solution from x_start at sigma_start to sigma_end, with the evidence of how it was made.
inline std::pair<Batch, ReferenceInfo> flow_solution(const MixtureProblem& problem, const GaussianMixtureDenoiser& model,
                                                    const Batch& x_start, double sigma_start, double sigma_end,
                                                    double tolerance) {
  ReferenceInfo info{sigma_start, sigma_end, problem.components() == 1, 0, 0.0};
  if (info.closed_form) return {problem.exact_flow_k1(x_start, sigma_start, sigma_end), info};
  ReferenceSolution ref = converged_reference(model, x_start, sigma_start, sigma_end, tolerance);
  info.rk4_steps = ref.steps;
  info.change_on_doubling = ref.change_on_doubling;
  return {std::move(ref.x), info};
}

}  // namespace detail

/// Runs every sampler x schedule x step count. Throws Error if a sampler or schedule fails.
inline ComparisonResult run_comparison(const MixtureProblem& problem, const std::vector<SamplerEntry>& samplers,
                                       const std::vector<ScheduleEntry>& schedules, const ComparisonOptions& options) {
  problem.validate();
  if (samplers.empty() || schedules.empty() || options.steps.empty())
    throw Error("compare: at least one sampler, one schedule and one step count are needed");
  const GaussianMixtureDenoiser model = problem.denoiser();
  ComparisonResult result{problem.origin, problem.components(), problem.dims(), problem.z.shape()[0], options, {}, {}};

  PortableGaussian start_noise(options.seed);
  const Batch z_stochastic = start_noise.matrix(options.stochastic_batch, problem.dims());
  const Batch z_timing = start_noise.matrix(options.timing_batch, problem.dims());

  // References depend only on (start, end) sigmas; the floor only on the end sigma. Both are cached.
  std::map<std::pair<double, double>, std::size_t> reference_index;
  std::vector<Batch> reference_values;
  std::map<double, DistributionError> floors;

  for (const SamplerEntry& sampler : samplers) {
    if (!sampler.only_schedule.empty() &&
        std::none_of(schedules.begin(), schedules.end(),
                     [&](const ScheduleEntry& s) { return s.name == sampler.only_schedule; }))
      throw Error("compare: sampler " + sampler.name + " runs only under schedule " + sampler.only_schedule +
                  ", which is not among the schedules compared");
    // Stochastic if two noise seeds give different samples on the same start.
    const std::vector<double> probe = run_sigmas(schedules.front(), 4, problem.sigma_min, problem.sigma_max,
                                                 options.endpoint);
    CountingDenoiser probe_model{&model};
    const Batch x_probe = problem.z * probe.front();
    const bool stochastic = max_abs_difference(sampler.run(probe_model, x_probe, probe, options.seed),
                                               sampler.run(probe_model, x_probe, probe, options.seed + 1)) != 0.0;

    for (const ScheduleEntry& schedule : schedules) {
      if (!sampler.only_schedule.empty() && sampler.only_schedule != schedule.name) continue;
      for (int steps : options.steps) {
        const std::vector<double> sigmas =
            run_sigmas(schedule, steps, problem.sigma_min, problem.sigma_max, options.endpoint);
        ComparisonRow row;
        row.sampler = sampler.name;
        row.schedule = schedule.name;
        row.steps = steps;
        row.stochastic = stochastic;
        row.sigma_end = sigmas.back();

        if (!stochastic) {
          CountingDenoiser counted{&model};
          const Batch x_start = problem.z * sigmas.front();
          const Batch x = sampler.run(counted, x_start, sigmas, options.seed);
          row.nfe = counted.calls;
          // Schedules meet sigma_min up to rounding (exp(log x) != x): such ends share one reference, as the
          // flow moves by ~1e-12 * |x| between them.
          const auto key = std::make_pair(sigmas.front(), sigmas.back());
          auto found = std::find_if(reference_index.begin(), reference_index.end(), [&](const auto& entry) {
            return std::abs(entry.first.first - key.first) <= 1e-12 * key.first &&
                   std::abs(entry.first.second - key.second) <= 1e-12 * key.second;
          });
          if (found == reference_index.end()) {
            auto [value, info] = detail::flow_solution(problem, model, x_start, key.first, key.second,
                                                       options.reference_tolerance);
            found = reference_index.emplace(key, reference_values.size()).first;
            reference_values.push_back(std::move(value));
            result.references.push_back(info);
          }
          row.max_abs = max_abs_difference(x, reference_values[found->second]);
          row.rms = rms_difference(x, reference_values[found->second]);
        } else {
          CountingDenoiser counted{&model};
          const Batch x = sampler.run(counted, z_stochastic * sigmas.front(), sigmas, options.seed);
          row.nfe = counted.calls;
          const DistributionError e = distribution_error(problem, x, row.sigma_end, options.seed + 7);
          auto floor = floors.find(row.sigma_end);
          if (floor == floors.end())
            floor = floors.emplace(row.sigma_end, measure_floor(problem, options.stochastic_batch, row.sigma_end,
                                                                options.seed + 7)).first;
          row.sliced_w1 = e.sliced_w1;
          row.sliced_w1_floor = floor->second.sliced_w1;
          row.mean_error = e.mean_error;
          row.assignment_tv = e.assignment_tv;
        }

        // Timing on a latent the size of one SD 512x512 latent: fastest of a few runs.
        double best_overhead = std::numeric_limits<double>::infinity();
        for (int r = 0; r < std::max(1, options.timing_repeats); ++r) {
          CountingDenoiser timed{&model};
          const Batch x_start = z_timing * sigmas.front();
          const auto start = std::chrono::steady_clock::now();
          const Batch x = sampler.run(timed, x_start, sigmas, options.seed);
          const auto total = std::chrono::steady_clock::now() - start;
          if (x.size() != x_start.size()) throw Error("compare: sampler " + sampler.name + " changed the latent shape");
          best_overhead = std::min(best_overhead, std::chrono::duration<double>(total - timed.inside).count());
        }
        const double per_step = std::max(0.0, best_overhead) / steps;
        row.overhead_us_per_step = per_step * 1e6;
        row.overhead_fraction_of_unet = per_step / options.assumed_unet_seconds;
        result.rows.push_back(std::move(row));
      }
    }
  }
  return result;
}

/// Least-squares slope of log(error) against log(NFE) over the given rows (same sampler and schedule): the
/// observed convergence order is minus this slope.
inline double convergence_order(const std::vector<ComparisonRow>& rows) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (const ComparisonRow& r : rows) {
    const double e = r.error();
    if (!(e > 0) || r.nfe <= 0) continue;
    const double lx = std::log(static_cast<double>(r.nfe)), ly = std::log(e);
    sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly, ++n;
  }
  if (n < 2) throw Error("convergence_order: at least two rows with a positive error are needed");
  return -(n * sxy - sx * sy) / (n * sxx - sx * sx);
}

}  // namespace experiments
LATENTKIT_NAMESPACE_END
