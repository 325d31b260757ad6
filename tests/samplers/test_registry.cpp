// The run-time name registry and the compile-time Sampler<Step, Schedule> composition.
#include "latentkit/denoisers/discrete_time.hpp"
#include "latentkit/denoisers/vp_network.hpp"
#include "latentkit/samplers/registry.hpp"
#include "latentkit/schedules/discrete.hpp"
#include "support.hpp"

using namespace samplers_test;

TEST_CASE("every A1111, stable-diffusion.cpp and canonical sampler name resolves, with its schedule suffix") {
  for (const auto& row : lk::sampler_table) {
    CHECK(lk::parse_sampler(row.name).sampler == row.kind);
    CHECK(lk::parse_sampler(row.a1111).sampler == row.kind);
    CHECK(lk::parse_sampler(row.a1111).schedule == lk::ScheduleKind::normal);
    CHECK(lk::parse_sampler(std::string(row.a1111) + " Karras").schedule == lk::ScheduleKind::karras);
    CHECK(lk::parse_sampler(std::string(row.a1111) + " Exponential").schedule == lk::ScheduleKind::exponential);
    if (!row.sdcpp.empty()) CHECK(lk::parse_sampler(row.sdcpp).sampler == row.kind);
  }
  CHECK(lk::parse_sampler("DPM++ 2M Karras").sampler == lk::SamplerKind::dpmpp_2m);
  CHECK(lk::parse_sampler("DPM++ 2M SDE Heun Karras").sampler == lk::SamplerKind::dpmpp_2m_sde_heun);
  CHECK(lk::parse_sampler("Euler a").sampler == lk::SamplerKind::euler_ancestral);
  CHECK(lk::parse_sampler("dpm++2s_a").sampler == lk::SamplerKind::dpmpp_2s_ancestral);
  CHECK(lk::parse_sampler("lcm").sampler == lk::SamplerKind::lcm);
  CHECK(lk::parse_schedule("karras") == lk::ScheduleKind::karras);
  CHECK(lk::parse_schedule("discrete") == lk::ScheduleKind::normal);
  for (const auto& name : lk::sampler_names()) CHECK_NOTHROW(lk::parse_sampler(name));
  const auto names = lk::sampler_names();
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());  // no duplicates
  // canonical + A1111 x 3 schedule spellings + the sd.cpp names that differ from the canonical ones
  std::size_t sdcpp_only = 0;
  for (const auto& row : lk::sampler_table) sdcpp_only += !row.sdcpp.empty() && row.sdcpp != row.name;
  CHECK(sdcpp_only == 5);
  CHECK(names.size() == lk::sampler_table.size() * 4 + sdcpp_only);
  CHECK(std::get<lk::DPMpp2MSDE>(lk::make_step(lk::SamplerKind::dpmpp_2m_sde_heun)).solver_type == lk::SolverType::heun);
}

TEST_CASE("unknown sampler and schedule names throw UnknownNameError listing the valid names") {
  try {
    lk::parse_sampler("DPM++ 2M Turbo");
    FAIL("no exception");
  } catch (const lk::UnknownNameError& e) {
    const std::string what = e.what();
    CHECK(what.find("DPM++ 2M Turbo") != std::string::npos);
    CHECK(what.find("\"DPM++ 2M Karras\"") != std::string::npos);
    CHECK(what.find("\"euler_a\"") != std::string::npos);
  }
  CHECK_THROWS_AS(lk::parse_sampler("euler "), lk::UnknownNameError);
  CHECK_THROWS_AS(lk::parse_schedule("cosine"), lk::UnknownNameError);
}

TEST_CASE("a (sampler, schedule, steps) triple runs on any denoiser and equals the compile-time composition") {
  auto model = fixture_model();
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const xt::xarray<double> z = load<double>(problem, "z");

  const lk::Sampler<lk::DPMpp2M, lk::Karras> karras_2m{};
  std::size_t steps_seen = 0;
  const xt::xarray<double> composed =
      karras_2m(model, z, 12, lk::NoNoise{}, [&](std::size_t, double, const auto&, const auto&) { ++steps_seen; });
  CHECK(steps_seen == 12);
  const xt::xarray<double> by_name = lk::sample(lk::parse_sampler("DPM++ 2M Karras"), model, z, 12, lk::NoNoise{});
  CHECK(max_abs_diff(composed, by_name) == 0.0);
  // and it lands close to the data: every row near one of the mixture means (|x - mu| ~ s * sqrt(64) at most)
  CHECK(max_abs(composed) < 20.0);

  // stochastic samplers are reproducible from a seed
  const auto choice = lk::parse_sampler("Euler a Exponential");
  const xt::xarray<double> a = lk::sample(choice, model, z, 8, lk::GaussianNoise(7));
  const xt::xarray<double> b = lk::sample(choice, model, z, 8, lk::GaussianNoise(7));
  const xt::xarray<double> c = lk::sample(choice, model, z, 8, lk::GaussianNoise(8));
  CHECK(max_abs_diff(a, b) == 0.0);
  CHECK(max_abs_diff(a, c) > 1e-3);

  // `normal` needs the model's training table: refused for the bare mixture, fine through the adapter
  CHECK_THROWS_AS(lk::sample(lk::parse_sampler("Euler"), model, z, 8, lk::NoNoise{}), lk::Error);
  const auto table = load_vector(problem, "diffusers_alphas_cumprod_f32");
  const auto schedule = lk::DiscreteSchedule<double>::from_alphas_cumprod(std::span<const double>(table));
  lk::VpNetwork net(model, table, lk::Prediction::epsilon);
  lk::DiscreteTimeDenoiser unet_like(net, schedule, lk::Prediction::epsilon, true);
  for (const auto& row : lk::sampler_table) {
    INFO(row.name);
    const xt::xarray<double> x = lk::sample({row.kind, lk::ScheduleKind::normal}, unet_like, z, 6, lk::GaussianNoise(1));
    CHECK(max_abs(x) < 20.0);
  }
}

TEST_CASE("LCM jumps to the denoised estimate and re-noises to the next level") {
  auto model = fixture_model();
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const xt::xarray<double> x = load<double>(problem, "x_T");
  const xt::xarray<double> z = load<double>(problem, "z");
  const std::vector<double> sigmas{14.614642143249512, 2.0, 0.0};
  lk::ReplayNoise<xt::xarray<double>> replay({z});
  const xt::xarray<double> out = lk::LCM{}(model, x, sigmas, replay);
  const xt::xarray<double> x1 = model(x, sigmas[0]) + 2.0 * z;
  CHECK(max_abs_diff(out, model(x1, 2.0)) <= 1e-12);
  CHECK(replay.used() == 1);
}
