// Comparing samplers with the library API, composed at compile time.
//
//   1. an analytic model whose exact answer is known (a Gaussian mixture, embedded and seeded),
//   2. samplers built as Sampler<Step, Schedule> and run like any other sampler,
//   3. their error against the converged probability-flow solution, and the same through run_comparison().
//
// Build: cmake --build --preset native --target latentkit_example_compare; run: build/native/examples/compare/...
#include <cstdio>
#include <iostream>
#include <vector>

#include "latentkit/experiments/comparison_report.hpp"
#include "latentkit/experiments/mixture_problem.hpp"
#include "latentkit/experiments/reference_solution.hpp"
#include "latentkit/experiments/registry_entries.hpp"
#include "latentkit/samplers/dpmpp_2m.hpp"
#include "latentkit/samplers/euler.hpp"
#include "latentkit/samplers/euler_ancestral.hpp"
#include "latentkit/samplers/heun.hpp"
#include "latentkit/samplers/sampler.hpp"
#include "latentkit/schedules/karras.hpp"

namespace lk = latentkit;
namespace ex = latentkit::experiments;
using Batch = xt::xarray<double>;

// One compile-time composition, run at several step counts against the exact solution at sigma = 0.
template <class Step>
void report(const char* name, const lk::GaussianMixtureDenoiser& model, const ex::MixtureProblem& problem,
            const Batch& exact) {
  // A schedule is a value with its knobs as fields (here the schedules module's Karras, rho = 7); the sampler reads
  // the denoiser's [sigma_min, sigma_max].
  const lk::Sampler<Step, lk::Karras> sample{};  // e.g. Sampler<DPMpp2M, Karras>
  for (int steps : {10, 20, 40}) {
    const Batch x = sample(model, problem.z, steps, lk::NoNoise{});  // deterministic: a noise draw would throw
    std::printf("  %-10s karras %3d steps   max |x - exact| = %.3e\n", name, steps, ex::max_abs_difference(x, exact));
  }
}

int main() {
  // 1. The embedded K=3 mixture in D=64 (seed 1234) and its exact denoiser.
  const ex::MixtureProblem problem = ex::embedded_mixture_problem();
  const lk::GaussianMixtureDenoiser model = problem.denoiser();

  // The exact answer: RK4 on the probability-flow ODE, doubled until it stops moving.
  const ex::ReferenceSolution exact =
      ex::converged_reference(model, Batch(problem.z * problem.sigma_max), problem.sigma_max, 0.0);
  std::printf("%s\nreference: %d RK4 steps, change on doubling %.1e\n\n", problem.origin.c_str(), exact.steps,
              exact.change_on_doubling);

  // 2. Deterministic samplers converge to it; the last step to sigma = 0 is first order for all of them.
  report<lk::Euler>("Euler", model, problem, exact.x);
  report<lk::Heun>("Heun", model, problem, exact.x);
  report<lk::DPMpp2M>("DPM++ 2M", model, problem, exact.x);

  // A stochastic sampler draws seeded noise; its samples follow the distribution instead of the ODE.
  const lk::Sampler<lk::EulerAncestral, lk::Karras> ancestral{};
  const Batch starts = ex::PortableGaussian(7).matrix(256, problem.dims());
  const Batch samples = ancestral(model, starts, 30, lk::GaussianNoise(11));
  const ex::DistributionError e = ex::distribution_error(problem, samples, 0.0);
  const ex::DistributionError floor = ex::measure_floor(problem, 256, 0.0);
  std::printf("\n  Euler a    karras  30 steps   sliced W1 = %.3f (exact draws: %.3f), assignment TV = %.3f\n\n",
              e.sliced_w1, floor.sliced_w1, e.assignment_tv);

  // 3. The same through the comparison: a compile-time step becomes an entry, next to registry names.
  ex::SamplerEntry heun{"Heun (compile-time)", {},
                        [](ex::CountingDenoiser& m, const Batch& x, std::span<const double> sigmas, std::uint64_t) {
                          return lk::Heun{}(m, x, lk::Sigmas(sigmas), lk::NoNoise{});
                        }};
  ex::ComparisonOptions options;
  options.steps = {10, 20};
  options.timing_repeats = 1;
  const ex::ComparisonResult result =
      ex::run_comparison(problem, {heun, ex::sampler_entry("dpm++2m")}, {ex::schedule_entry("karras")}, options);
  ex::write_table(std::cout, result);
  return 0;
}
