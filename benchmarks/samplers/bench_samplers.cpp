// Each sampler's overhead per step: what it costs besides the denoiser (vector updates, noise, history).
//
//   sampler/<name>/<schedule>/<steps>       the analytic Gaussian-mixture model; counters: overhead_us_per_step =
//                                           (run time - time inside the denoiser) / steps, of_unet_0.5s = that / 0.5 s
//   sampler_noop/<name>/<schedule>/<steps>  a no-op denoiser (returns a stored latent: one copy), so the whole
//                                           time is the sampler's own; counter us_per_step
//
// The latent is 256 x 64 doubles = 16384 values, the size of one SD 512x512 latent (4 x 64 x 64).
#include <chrono>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "latentkit/experiments/registry_entries.hpp"
#include "support/peak.hpp"

namespace lk = latentkit;
namespace ex = latentkit::experiments;
using Batch = xt::xarray<double>;

namespace {

constexpr std::size_t latent_rows = 256;
constexpr double assumed_unet_seconds = 0.5;

/// Returns a fixed latent: the cheapest thing that still models the Denoiser concept.
struct NoopDenoiser {
  Batch answer;
  Batch operator()(const Batch&, double) const { return answer; }
  double sigma_min() const { return ex::sd1_sigma_min; }
  double sigma_max() const { return ex::sd1_sigma_max; }
};

const ex::MixtureProblem& problem() {
  static const ex::MixtureProblem p = ex::embedded_mixture_problem();
  return p;
}

void bench_mixture(benchmark::State& state, lk::SamplerKind kind, const lk::AnySigmaSchedule& schedule, int steps) {
  const auto model = problem().denoiser();
  const std::vector<double> sigmas = ex::registry_sigmas(schedule, steps, problem().sigma_min, problem().sigma_max);
  const Batch start = ex::PortableGaussian(1).matrix(latent_rows, problem().dims()) * sigmas.front();
  const lk::AnyStep step = lk::make_step(kind);
  double overhead_seconds = 0;
  std::int64_t nfe = 0;
  for (auto _ : state) {
    ex::CountingDenoiser counted{&model};
    const auto t0 = std::chrono::steady_clock::now();
    Batch x = lk::run_steps(step, counted, start, lk::Sigmas(sigmas), lk::GaussianNoise(7));
    const auto total = std::chrono::steady_clock::now() - t0;
    benchmark::DoNotOptimize(x.data());
    overhead_seconds += std::chrono::duration<double>(total - counted.inside).count();
    nfe = counted.calls;
  }
  const double per_step = overhead_seconds / static_cast<double>(state.iterations()) / steps;
  state.counters["overhead_us_per_step"] = per_step * 1e6;
  state.counters["of_unet_0.5s"] = per_step / assumed_unet_seconds;
  state.counters["nfe"] = static_cast<double>(nfe);
}

void bench_noop(benchmark::State& state, lk::SamplerKind kind, const lk::AnySigmaSchedule& schedule, int steps) {
  NoopDenoiser model{ex::PortableGaussian(2).matrix(latent_rows, problem().dims())};
  const std::vector<double> sigmas = ex::registry_sigmas(schedule, steps, model.sigma_min(), model.sigma_max());
  const Batch start = ex::PortableGaussian(1).matrix(latent_rows, problem().dims()) * sigmas.front();
  const lk::AnyStep step = lk::make_step(kind);
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    Batch x = lk::run_steps(step, model, start, lk::Sigmas(sigmas), lk::GaussianNoise(7));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["us_per_step"] = seconds / static_cast<double>(state.iterations()) / steps * 1e6;
}

// Every sampler of the registry x {karras, normal} x {10, 30} steps, registered before main runs them.
const bool registered = [] {
  for (const auto& row : lk::sampler_table)
    for (const lk::AnySigmaSchedule& schedule : {lk::AnySigmaSchedule(lk::Karras{}), lk::AnySigmaSchedule(lk::Normal{})})
      for (int steps : {10, 30}) {
        const std::string suffix = std::string(row.name) + "/" + std::string(lk::sigma_schedule_name(schedule)) + "/" +
                                   std::to_string(steps);
        benchmark::RegisterBenchmark(("sampler/" + suffix).c_str(), bench_mixture, row.kind, schedule, steps)
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("sampler_noop/" + suffix).c_str(), bench_noop, row.kind, schedule, steps)
            ->Unit(benchmark::kMillisecond);
      }
  return true;
}();

}  // namespace

LATENTKIT_BENCHMARK_MAIN();
