// Properties of the sigma spacings and the registry (spacings without fixtures are checked by their definition).
#include <algorithm>

#include "latentkit/schedules/all.hpp"
#include "schedule_fixtures.hpp"

using namespace latentkit;

static_assert(SigmaSchedule<Karras> && SigmaSchedule<Exponential> && SigmaSchedule<PolyExponential>);
static_assert(SigmaSchedule<Normal> && SigmaSchedule<Simple> && SigmaSchedule<Uniform>);
static_assert(SigmaSchedule<Normal, float, double> && SigmaSchedule<Karras, double, double>);
static_assert(RangeSigmaSchedule<Karras> && RangeSigmaSchedule<Exponential, float> && RangeSigmaSchedule<PolyExponential>);
static_assert(!RangeSigmaSchedule<Normal> && !RangeSigmaSchedule<Simple> && !RangeSigmaSchedule<Uniform>);

namespace {
void require_well_formed(const std::vector<double>& s, index_t n) {
  REQUIRE(s.size() == static_cast<std::size_t>(n) + 1);
  CHECK(s.back() == 0.0);
  for (std::size_t i = 1; i + 1 < s.size(); ++i) REQUIRE(s[i] < s[i - 1]);
}
}  // namespace

TEST_CASE("every named schedule gives n+1 decreasing sigmas ending in 0", "[schedules][registry]") {
  const auto model = DiscreteSchedule<float>::compvis();
  for (std::string_view name : sigma_schedule_names) {
    INFO("schedule " << name);
    for (index_t n : {1, 2, 7, 20, 50}) {
      const std::vector<double> s = sigmas_by_name(name, n, model);
      require_well_formed(s, n);
      CHECK(s.front() == Approx(model.sigma_max()).epsilon(1e-6));
    }
    CHECK(sigmas_by_name(name, 0, model) == std::vector<double>{0.0});
    CHECK_THROWS_AS(sigmas_by_name(name, -1, model), Error);
  }
  CHECK(sigma_schedule_name(sigma_schedule_from_name("discrete")) == "normal");
  CHECK(sigma_schedule_name(sigma_schedule_from_name("uniform")) == "sgm_uniform");
}

TEST_CASE("an unknown schedule name lists the valid ones", "[schedules][registry]") {
  const auto model = DiscreteSchedule<float>::compvis();
  CHECK_THROWS_AS(sigmas_by_name("karass", 10, model), UnknownNameError);
  CHECK_THROWS_WITH(sigmas_by_name("karass", 10, model),
                    Catch::Contains("karass") && Catch::Contains("karras") && Catch::Contains("sgm_uniform"));
}

TEST_CASE("Karras and polyexponential reduce to simpler spacings at rho = 1", "[schedules]") {
  const double lo = 0.03, hi = 14.6;
  const auto karras1 = Karras{.rho = 1.0}.sigmas<double>(10, lo, hi);  // linear in sigma
  for (int i = 0; i < 10; ++i) CHECK(karras1[i] == Approx(hi + (lo - hi) * i / 9.0).epsilon(1e-12));
  const auto poly1 = PolyExponential{}.sigmas<double>(10, lo, hi);
  const auto expo = Exponential{}.sigmas<double>(10, lo, hi);
  for (int i = 0; i < 11; ++i) CHECK(poly1[i] == Approx(expo[i]).epsilon(1e-12));
  const auto poly2 = PolyExponential{.rho = 2.0}.sigmas<double>(10, lo, hi);
  for (int i = 0; i < 10; ++i) {
    const double ramp = 1.0 - i / 9.0;
    CHECK(poly2[i] == Approx(std::exp(ramp * ramp * (std::log(hi) - std::log(lo)) + std::log(lo))).epsilon(1e-12));
  }
  CHECK_THROWS_AS(Exponential{}.sigmas<double>(5, 0.0, 1.0), Error);
  CHECK_THROWS_AS(Karras{}.sigmas<double>(5, 2.0, 1.0), Error);
  CHECK_THROWS_AS(Karras{.rho = 0.0}.sigmas<double>(5, 0.1, 1.0), Error);
}

TEST_CASE("simple takes every (len/n)-th table sigma from the top", "[schedules]") {
  const auto model = DiscreteSchedule<float>::compvis();
  const auto& table = model.sigmas();
  const auto s = Simple{}.sigmas<double>(3, model);  // stride 333.33: indices 999, 666, 333
  REQUIRE(s.size() == 4);
  CHECK(s[0] == table[999]);
  CHECK(s[1] == table[999 - 333]);
  CHECK(s[2] == table[999 - 666]);
  const auto s7 = Simple{}.sigmas<float>(7, model);  // stride 142.857..., int() truncates
  for (int i = 0; i < 7; ++i) CHECK(s7[i] == table[999 - static_cast<int>(i * (1000.0 / 7))]);
}

TEST_CASE("sgm_uniform is evenly spaced in timestep and stops short of the last one", "[schedules]") {
  const auto model = DiscreteSchedule<double>::compvis();
  const auto s = Uniform{}.sigmas<double>(4, model);  // timesteps 999, 749.25, 499.5, 249.75
  REQUIRE(s.size() == 5);
  const double expected_t[] = {999.0, 749.25, 499.5, 249.75};
  for (int i = 0; i < 4; ++i) CHECK(model.sigma_to_t(s[i]) == Approx(expected_t[i]).margin(1e-9));
  // "normal" with the same n ends on the smallest training sigma instead
  CHECK(Normal{}.sigmas<double>(4, model)[3] == Approx(model.sigma_min()).epsilon(1e-15));
}

TEST_CASE("the torch linspace replica matches torch's own end points and symmetry", "[schedules]") {
  for (index_t n : {2, 3, 15, 16, 17, 33, 1000}) {
    const auto a = torch_linspace<float>(0.0, 1.0, n);
    CHECK(a.front() == 0.0f);
    CHECK(a.back() == 1.0f);
    for (std::size_t i = 1; i < a.size(); ++i) REQUIRE(a[i] > a[i - 1]);
  }
  CHECK(torch_linspace<double>(3.0, 5.0, 1) == std::vector<double>{3.0});
  CHECK(numpy_linspace(0.0, 999.0, 4) == std::vector<double>{0.0, 333.0, 666.0, 999.0});
  CHECK(numpy_arange(1000.0, 0.0, -250.0) == std::vector<double>{1000.0, 750.0, 500.0, 250.0});
  CHECK(round_half_even(2.5) == 2.0);
  CHECK(round_half_even(3.5) == 4.0);
  CHECK(round_half_even(-2.5) == -2.0);
  CHECK(round_half_even(2.4999) == 2.0);
}

TEST_CASE("diffusers spacings: names, bounds and trailing starting at the last timestep", "[schedules]") {
  CHECK_THROWS_AS(parse_timestep_spacing("uniform"), UnknownNameError);
  CHECK_THROWS_AS(ddim_timesteps(0, TimestepSpacing::leading), Error);
  CHECK_THROWS_AS(ddim_timesteps(1001, TimestepSpacing::leading), Error);
  CHECK(ddim_timesteps(16, TimestepSpacing::trailing).front() == 999);
  CHECK(ddim_timesteps(16, TimestepSpacing::trailing)[3] == 811);  // round(812.5) - 1: the tie goes to even 812
  CHECK(ddim_timesteps(3, TimestepSpacing::leading, 1) == std::vector<std::int64_t>{667, 334, 1});
  const auto dpm = dpm_solver_multistep_timesteps(DpmSolverMultistepConfig{.final_sigmas_type = FinalSigma::sigma_min}, 5);
  CHECK(dpm.sigmas.back() == DiffusersSigmaTable().sigmas().front());
}
