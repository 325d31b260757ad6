// The exact solutions the comparison measures against: closed form, converged RK4 reference, distribution floor.
#include <catch2/catch.hpp>

#include "latentkit/experiments/distribution_metrics.hpp"
#include "latentkit/experiments/problem_file.hpp"
#include "latentkit/experiments/reference_solution.hpp"
#include "support/fixtures.hpp"

namespace ex = latentkit::experiments;

TEST_CASE("the K=1 closed form reproduces the fixtures' exact probability-flow solutions", "[experiments]") {
  const auto path = latentkit_test::fixture("samplers/convergence_k1.safetensors");
  const ex::MixtureProblem k1 = ex::load_mixture_problem(path);
  const latentkit::SafetensorsFile file(path);
  const xt::xarray<double> x_start = k1.z * k1.sigma_max;
  for (const auto& [key, sigma_end] : {std::pair<std::string, double>{"x_exact_sigma_min", k1.sigma_min},
                                       std::pair<std::string, double>{"x_exact_sigma_0", 0.0}}) {
    const auto expected = ex::detail::load_matrix(file, key, 2);
    CHECK(ex::max_abs_difference(k1.exact_flow_k1(x_start, k1.sigma_max, sigma_end), expected) < 1e-12);
  }
}

TEST_CASE("the RK4 reference converges to the K=1 closed form, at sigma_min and at 0", "[experiments]") {
  const ex::MixtureProblem k1 = ex::load_mixture_problem(latentkit_test::fixture("samplers/problem.safetensors"))
                                    .single_component(0);
  const auto model = k1.denoiser();
  const xt::xarray<double> x_start = k1.z * k1.sigma_max;
  for (double sigma_end : {k1.sigma_min, 0.0}) {
    const ex::ReferenceSolution ref = ex::converged_reference(model, x_start, k1.sigma_max, sigma_end);
    CHECK(ref.change_on_doubling < 1e-10);
    CHECK(ex::max_abs_difference(ref.x, k1.exact_flow_k1(x_start, k1.sigma_max, sigma_end)) < 1e-9);
    // A coarse grid is measurably wrong: the comparison with the closed form is not vacuous.
    CHECK(ex::max_abs_difference(ex::rk4_probability_flow(model, x_start, k1.sigma_max, sigma_end, 4),
                                 k1.exact_flow_k1(x_start, k1.sigma_max, sigma_end)) > 1e-4);
  }
}

TEST_CASE("the K=3 reference changes by less than 1e-8 when its step count doubles", "[experiments]") {
  for (const ex::MixtureProblem& p :
       {ex::load_mixture_problem(latentkit_test::fixture("samplers/problem.safetensors")), ex::embedded_mixture_problem()}) {
    const auto model = p.denoiser();
    const xt::xarray<double> x_start = p.z * p.sigma_max;
    const ex::ReferenceSolution ref = ex::converged_reference(model, x_start, p.sigma_max, p.sigma_min, 1e-9);
    INFO(p.origin << ": " << ref.steps << " RK4 steps, change " << ref.change_on_doubling);
    CHECK(ref.change_on_doubling < 1e-8);
    // Order 4: halving the grid once more must change the answer ~16x more than the last doubling did.
    const auto coarser = ex::rk4_probability_flow(model, x_start, p.sigma_max, p.sigma_min, ref.steps / 4);
    CHECK(ex::max_abs_difference(coarser, ref.x) > 4 * ref.change_on_doubling);
  }
}

TEST_CASE("the embedded problem is reproducible and of the fixtures' kind", "[experiments]") {
  const ex::MixtureProblem a = ex::embedded_mixture_problem(), b = ex::embedded_mixture_problem();
  const ex::MixtureProblem other = ex::embedded_mixture_problem(5);
  CHECK(a.components() == 3);
  CHECK(a.dims() == 64);
  CHECK(ex::max_abs_difference(a.means, b.means) == 0.0);
  CHECK(ex::max_abs_difference(a.z, b.z) == 0.0);
  CHECK(ex::max_abs_difference(a.means, other.means) > 0.1);
  const ex::MixtureProblem fixture = ex::load_mixture_problem(latentkit_test::fixture("samplers/problem.safetensors"));
  CHECK(fixture.components() == a.components());
  CHECK(fixture.dims() == a.dims());
  CHECK(fixture.sigma_max == a.sigma_max);
  CHECK(fixture.sigma_min == a.sigma_min);
}

TEST_CASE("distribution error: exact draws sit at the floor, a collapsed sampler far above it", "[experiments]") {
  const ex::MixtureProblem p = ex::embedded_mixture_problem();
  const double sigma = p.sigma_min;
  const ex::DistributionError floor = ex::measure_floor(p, 256, sigma);
  CHECK(floor.sliced_w1 > 0.0);
  CHECK(floor.assignment_tv < 0.1);
  // All mass on component 0: wrong frequencies (TV = 1 - w_0) and a large distance.
  xt::xarray<double> collapsed = p.sample_marginal(256, sigma, 3);
  for (std::size_t i = 0; i < 256; ++i)
    for (std::size_t d = 0; d < p.dims(); ++d) collapsed(i, d) = p.means(0, d) + (collapsed(i, d) - p.means(0, d)) * 0.1;
  const ex::DistributionError bad = ex::distribution_error(p, collapsed, sigma);
  CHECK(bad.assignment_tv > 0.4);
  CHECK(bad.sliced_w1 > 3 * floor.sliced_w1);
  CHECK(bad.mean_error > floor.mean_error);
}

TEST_CASE("problem files of the wrong layout are rejected naming the file", "[experiments]") {
  const auto path = latentkit_test::fixture("samplers/kdiff_euler.safetensors");
  CHECK_THROWS_WITH(ex::load_mixture_problem(path), Catch::Contains("kdiff_euler.safetensors") &&
                                                        Catch::Contains("'means'"));
  CHECK_THROWS_AS(ex::select_problem("/nonexistent/problem.safetensors"), latentkit::IoError);
}
