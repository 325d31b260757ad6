// K=1 closed form: every recorded x_final, and the observed order of accuracy of Euler, Heun, DPM2, DPM++(2M), LMS.
#include <map>

#include "latentkit/schedules/exponential.hpp"

#include "latentkit/samplers/registry.hpp"
#include "support.hpp"

using namespace samplers_test;

TEST_CASE("on a single Gaussian the samplers match the recorded runs and converge at their order") {
  lk::SafetensorsFile f(latentkit_test::fixture("samplers/convergence_k1.safetensors"));
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const auto mu = load_vector(f, "mu");
  const double s2 = load_vector(f, "s2").at(0);
  const double sigma_min = load_vector(problem, "sigma_min").at(0), sigma_max = load_vector(problem, "sigma_max").at(0);
  lk::GaussianMixtureDenoiser model(mu, {1.0}, {s2}, sigma_min, sigma_max);
  const auto x_T = load<double>(f, "x_T");

  // x(sigma) = mu + (x_T - mu) sqrt((s^2 + sigma^2) / (s^2 + sigma_max^2)), the exact probability-flow solution.
  const auto exact = [&](double sigma) {
    xt::xarray<double> x = x_T;
    const double factor = std::sqrt((s2 + sigma * sigma) / (s2 + sigma_max * sigma_max));
    for (std::size_t k = 0; k < x.size(); ++k) x.data()[k] = mu[k % mu.size()] + (x_T.data()[k] - mu[k % mu.size()]) * factor;
    return x;
  };
  CHECK(max_abs_diff(exact(sigma_min), load<double>(f, "x_exact_sigma_min")) <= 1e-12);
  CHECK(max_abs_diff(exact(0.0), load<double>(f, "x_exact_sigma_0")) <= 1e-12);

  std::map<std::string, std::map<int, double>> errors;  // sampler -> N -> max |x_final - x(sigma_min)|
  const auto all = runs(f);
  REQUIRE(!all.empty());
  for (const auto& run : all) {
    INFO("run " << run);
    const auto dot = run.find(".n");
    REQUIRE(dot != std::string::npos);
    const std::string sampler = run.substr(0, dot);
    const int n = std::stoi(run.substr(dot + 2));
    const auto sigmas = load_vector(f, run + ".sigmas");  // N sigmas, no trailing zero: ends at sigma_min
    const xt::xarray<double> x =
        lk::run_steps(lk::make_step(lk::parse_sampler(sampler).sampler), model, x_T, sigmas, lk::NoNoise{});
    CHECK(max_abs_diff(x, load<double>(f, run + ".x_final")) <= 1e-9);
    errors[sampler][n] = max_abs_diff(x, exact(sigmas.back()));
  }

  // Least-squares slope of -log(error) against log(N) over N >= 10 (DPM++(2M) at N = 5 is accidentally accurate).
  const auto order = [&](const std::string& sampler) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0;
    for (auto [n, e] : errors.at(sampler)) {
      if (n < 10) continue;
      const double lx = std::log(double(n)), ly = -std::log(e);
      sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly, m += 1;
    }
    REQUIRE(m >= 3);
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
  };
  // The step counts are still pre-asymptotic (the README measures euler 1.0, heun/dpm_2/dpmpp_2m 2.1), so each
  // fitted order is held to +-0.25 of its theoretical value.
  if (errors.count("euler")) CHECK(order("euler") == Approx(1.0).margin(0.25));
  for (const char* second : {"heun", "dpm_2", "dpmpp_2m"})
    if (errors.count(second)) {
      INFO(second);
      CHECK(order(second) == Approx(2.0).margin(0.25));
    }
  // LMS(4) only approaches order 4 late (local orders 2.2, 3.0, 3.5, 3.8 here), so test the local order of the two
  // largest step counts: at least 3.5.
  if (errors.count("lms")) {
    const auto& e = errors.at("lms");
    REQUIRE(e.size() >= 2);
    const auto last = std::prev(e.end()), before = std::prev(last);
    const double local = std::log(before->second / last->second) / std::log(double(last->first) / before->first);
    CHECK(local >= 3.5);
  }
  CHECK(errors.count("euler") + errors.count("heun") + errors.count("dpmpp_2m") == 3);
}

namespace {
struct K1 {
  std::vector<double> mu;
  double s2, sigma_min, sigma_max;
  xt::xarray<double> x_T;
  lk::GaussianMixtureDenoiser model;
  static K1 load_fixture() {
    lk::SafetensorsFile f(latentkit_test::fixture("samplers/convergence_k1.safetensors"));
    lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
    const auto mu = load_vector(f, "mu");
    const double s2 = load_vector(f, "s2").at(0);
    const double lo = load_vector(problem, "sigma_min").at(0), hi = load_vector(problem, "sigma_max").at(0);
    return {mu, s2, lo, hi, load<double>(f, "x_T"), lk::GaussianMixtureDenoiser(mu, {1.0}, {s2}, lo, hi)};
  }
  double error_at_sigma_min(const xt::xarray<double>& x) const {
    const double factor = std::sqrt((s2 + sigma_min * sigma_min) / (s2 + sigma_max * sigma_max));
    double e = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
      const double m = mu[k % mu.size()];
      e = nan_max(e, std::abs(x.data()[k] - (m + (x_T.data()[k] - m) * factor)));
    }
    return e;
  }
  std::vector<double> exponential(int n) const {  // n sigmas from sigma_max to sigma_min, no trailing zero
    auto s = lk::Exponential{}.sigmas<double>(n, sigma_min, sigma_max);
    s.pop_back();
    return s;
  }
};
}  // namespace

TEST_CASE("DPM++ 2M v2 equals DPM++ 2M on evenly spaced log-sigmas") {
  auto k1 = K1::load_fixture();
  for (int n : {5, 12, 30}) {
    INFO("n " << n);
    const auto sigmas = k1.exponential(n);
    const xt::xarray<double> v2 = lk::DPMpp2MV2{}(k1.model, k1.x_T, sigmas, lk::NoNoise{});
    const xt::xarray<double> v1 = lk::DPMpp2M{}(k1.model, k1.x_T, sigmas, lk::NoNoise{});
    CHECK(max_abs_diff(v1, v2) <= 1e-11);
    auto with_zero = sigmas;
    with_zero.push_back(0.0);
    CHECK(max_abs_diff(lk::DPMpp2MV2{}(k1.model, k1.x_T, with_zero, lk::NoNoise{}),
                       lk::DPMpp2M{}(k1.model, k1.x_T, with_zero, lk::NoNoise{})) <= 1e-11);
  }
}

TEST_CASE("iPNDM is Euler at order 1 and converges at order 2 on exponential sigmas") {
  auto k1 = K1::load_fixture();
  const auto sigmas = k1.exponential(15);
  CHECK(max_abs_diff(lk::IPNDM{.max_order = 1}(k1.model, k1.x_T, sigmas, lk::NoNoise{}),
                     lk::Euler{}(k1.model, k1.x_T, sigmas, lk::NoNoise{})) <= 1e-12);
  // Fixed-step Adams-Bashforth weights on non-uniform sigma steps: measured local orders 2.1, 2.1, 2.06, 2.02 for
  // N = 10..160 (the weights' higher order is lost to the step ratios); hold the last two doublings to 2 +- 0.2.
  std::vector<double> errors;
  for (int n : {40, 80, 160}) errors.push_back(k1.error_at_sigma_min(lk::IPNDM{}(k1.model, k1.x_T, k1.exponential(n), lk::NoNoise{})));
  CHECK(std::log2(errors[0] / errors[1]) == Approx(2.0).margin(0.2));
  CHECK(std::log2(errors[1] / errors[2]) == Approx(2.0).margin(0.2));
  CHECK_THROWS_AS(lk::IPNDM{.max_order = 5}(k1.model, k1.x_T, sigmas, lk::NoNoise{}), lk::Error);
}
