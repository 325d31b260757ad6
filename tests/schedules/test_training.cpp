// Training schedules and the k-diffusion DiscreteSchedule against schedules/train_schedule.safetensors.
#include <functional>
#include <map>

#include "latentkit/schedules/discrete.hpp"
#include "latentkit/schedules/training.hpp"
#include "schedule_fixtures.hpp"

using namespace latentkit;
using schedules_test::require_close;

namespace {
template <class T>
std::vector<double> widen(const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); }
}  // namespace

TEST_CASE("every tensor of the training-schedule fixture is reproduced from the schedule knobs", "[schedules][fixtures]") {
  const auto doc = schedules_test::load_json("schedules/schedules.json");
  const TrainingSchedule train = schedules_test::fixture_training(doc);
  const SafetensorsFile f(latentkit_test::fixture("schedules/train_schedule.safetensors"));

  const std::vector<double> compvis_betas = make_betas<double>(train);
  const std::vector<double> compvis_ac = alphas_cumprod<double>(train);
  const std::vector<float> compvis_ac32(compvis_ac.begin(), compvis_ac.end());
  const auto kdiff32 = DiscreteSchedule<float>::compvis(train);
  const auto kdiff64 = DiscreteSchedule<double>::compvis(train);
  const std::map<std::string, std::function<std::vector<double>()>> reproduce = {
      {"compvis_betas_f64", [&] { return compvis_betas; }},
      {"compvis_alphas_cumprod_f64", [&] { return compvis_ac; }},
      {"compvis_alphas_cumprod_f32", [&] { return widen(compvis_ac32); }},
      {"diffusers_betas_f32", [&] { return widen(make_betas<float>(train)); }},
      {"diffusers_alphas_cumprod_f32", [&] { return widen(alphas_cumprod<float>(train)); }},
      {"kdiff_sigmas_f32", [&] { return widen(kdiff32.sigmas()); }},
      {"kdiff_log_sigmas_f32", [&] { return widen(kdiff32.log_sigmas()); }},
      {"kdiff_sigmas_f64", [&] { return kdiff64.sigmas(); }},
      {"kdiff_log_sigmas_f64", [&] { return kdiff64.log_sigmas(); }},
  };
  REQUIRE_FALSE(f.tensors().empty());
  for (const TensorInfo& t : f.tensors()) {
    INFO("tensor " << t.name);
    const auto it = reproduce.find(t.name);
    REQUIRE(it != reproduce.end());  // a fixture tensor this suite does not know how to reproduce
    const std::string dtype(dtype_name(t.dtype));
    require_close(it->second(), schedules_test::to_vector<double>(f, t.name), schedules_test::rtol_for(dtype), t.name);
  }
  // betas and alphas_cumprod are exact: the torch linspace replica reproduces every bit
  CHECK(make_betas<float>(train) == schedules_test::to_vector<float>(f, "diffusers_betas_f32"));
  CHECK(alphas_cumprod<float>(train) == schedules_test::to_vector<float>(f, "diffusers_alphas_cumprod_f32"));
  CHECK(compvis_betas == schedules_test::to_vector<double>(f, "compvis_betas_f64"));
  CHECK(compvis_ac == schedules_test::to_vector<double>(f, "compvis_alphas_cumprod_f64"));
}

TEST_CASE("the model sigma range is the float32 table's first and last entry", "[schedules][fixtures]") {
  const auto doc = schedules_test::load_json("schedules/schedules.json");
  const auto model = DiscreteSchedule<float>::compvis(schedules_test::fixture_training(doc));
  CHECK(static_cast<double>(model.sigma_min()) == doc.at("sigma_min").get<double>());
  CHECK(static_cast<double>(model.sigma_max()) == doc.at("sigma_max").get<double>());
}

TEST_CASE("sigma_to_t inverts t_to_sigma and clamps outside the table", "[schedules]") {
  const auto model = DiscreteSchedule<double>::compvis();
  for (double t : {0.0, 0.25, 1.0, 17.25, 333.0, 500.75, 998.125, 999.0}) {  // float32-exact t
    const double sigma = model.t_to_sigma(t);
    CHECK(model.sigma_to_t(sigma) == Approx(t).margin(1e-9));
    CHECK(model.sigma_to_t_quantized(sigma) == static_cast<index_t>(std::lround(t)));
  }
  CHECK(model.sigma_to_t(0.0) == 0.0);
  CHECK(model.sigma_to_t(1e-6) == 0.0);
  CHECK(model.sigma_to_t(1e6) == 999.0);
  CHECK(model.sigma_to_t_quantized(1e6) == 999);
  // exp(log(sigma)) upstream too, so equal to the table entry up to rounding
  CHECK(model.t_to_sigma(0) == Approx(model.sigma_min()).epsilon(1e-15));
  CHECK(model.t_to_sigma(999) == Approx(model.sigma_max()).epsilon(1e-15));
}

TEST_CASE("t_to_sigma rounds t to float32 first, as k-diffusion's t.float() does", "[schedules]") {
  const auto model = DiscreteSchedule<double>::compvis();
  const double t = 500.0 + 1e-9;  // not representable in float32: becomes exactly 500
  CHECK(model.t_to_sigma(t) == model.sigmas()[500]);
}

TEST_CASE("the cosine and linear training schedules have the documented shape", "[schedules]") {
  TrainingSchedule cos;
  cos.beta_schedule = BetaSchedule::squaredcos_cap_v2;
  const auto betas = make_betas<double>(cos);
  REQUIRE(betas.size() == 1000);
  CHECK(betas.front() == Approx(1 - std::pow(std::cos((1e-3 + 0.008) / 1.008 * M_PI / 2), 2) /
                                        std::pow(std::cos(0.008 / 1.008 * M_PI / 2), 2)));
  CHECK(betas.back() == 0.999);  // capped
  const auto ac = alphas_cumprod<double>(std::span<const double>(betas));
  for (std::size_t i = 1; i < ac.size(); ++i) REQUIRE(ac[i] < ac[i - 1]);

  TrainingSchedule lin;
  lin.beta_schedule = BetaSchedule::linear;
  lin.beta_start = 1e-4;
  lin.beta_end = 2e-2;
  const auto lb = make_betas<double>(lin);
  CHECK(lb.front() == 1e-4);
  CHECK(lb.back() == 2e-2);
  CHECK(lb[500] == Approx(1e-4 + (2e-2 - 1e-4) * 500 / 999).epsilon(1e-14));
}

TEST_CASE("bad schedule inputs throw typed errors", "[schedules]") {
  CHECK_THROWS_AS(parse_beta_schedule("cosine"), UnknownNameError);
  CHECK_THROWS_WITH(parse_beta_schedule("cosine"), Catch::Contains("squaredcos_cap_v2"));
  TrainingSchedule bad;
  bad.beta_end = 1.5;
  CHECK_THROWS_AS(make_betas<float>(bad), Error);
  CHECK_THROWS_AS(DiscreteSchedule<double>(std::vector<double>{1.0}), Error);
  CHECK_THROWS_AS(DiscreteSchedule<double>(std::vector<double>{1.0, 0.5}), Error);
  CHECK_THROWS_AS(DiscreteSchedule<double>(std::vector<double>{0.0, 0.5}), Error);
  const auto model = DiscreteSchedule<float>::compvis();
  CHECK_THROWS_AS(model.t_to_sigma(-0.5), Error);
  CHECK_THROWS_AS(model.t_to_sigma(999.5), Error);
  CHECK_THROWS_AS(model.sigma_to_t(-1.0f), Error);
  CHECK_THROWS_AS(model.sigma_to_t(std::nanf("")), Error);
  CHECK_THROWS_AS(model.get_sigmas(-1), Error);
}
