// The run-time name registry and the compile-time Sampler<Step, Schedule> composition.
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>

#include "latentkit/denoisers/discrete_time.hpp"
#include "latentkit/denoisers/prediction.hpp"
#include "latentkit/denoisers/vp_network.hpp"
#include "latentkit/samplers/registry.hpp"
#include "latentkit/schedules/discrete.hpp"
#include "latentkit/schedules/img2img.hpp"
#include "latentkit/schedules/timestep_spacing.hpp"
#include "latentkit/schedules/training.hpp"
#include "support.hpp"

using namespace samplers_test;

TEST_CASE("every A1111, stable-diffusion.cpp and canonical sampler name resolves, with its schedule suffix") {
  for (const auto& row : lk::sampler_table) {
    CHECK(lk::parse_sampler(row.name).sampler == row.kind);
    CHECK(lk::parse_sampler(row.a1111).sampler == row.kind);
    CHECK(lk::sigma_schedule_name(lk::parse_sampler(row.a1111).schedule) == "normal");
    CHECK_FALSE(lk::sampler_name_has_schedule(row.a1111));
    for (const auto& s : lk::a1111_schedule_suffixes) {
      const std::string label = std::string(row.a1111) + std::string(s.suffix);
      CHECK(lk::parse_sampler(label).sampler == row.kind);
      CHECK(lk::sigma_schedule_name(lk::parse_sampler(label).schedule) == s.schedule);
      CHECK(lk::sampler_name_has_schedule(label));
    }
    if (!row.sdcpp.empty()) CHECK(lk::parse_sampler(row.sdcpp).sampler == row.kind);
  }
  CHECK(lk::parse_sampler("DPM++ 2M Karras").sampler == lk::SamplerKind::dpmpp_2m);
  CHECK(lk::parse_sampler("DPM++ 2M SDE Heun Karras").sampler == lk::SamplerKind::dpmpp_2m_sde_heun);
  CHECK(lk::parse_sampler("Euler a").sampler == lk::SamplerKind::euler_ancestral);
  CHECK(lk::parse_sampler("dpm++2s_a").sampler == lk::SamplerKind::dpmpp_2s_ancestral);
  CHECK(lk::parse_sampler("lcm").sampler == lk::SamplerKind::lcm);
  CHECK(lk::sigma_schedule_name(lk::parse_sampler("Euler a SGM Uniform").schedule) == "sgm_uniform");
  for (const auto& name : lk::schedule_names()) CHECK_NOTHROW(lk::parse_schedule(name));
  CHECK(lk::sigma_schedule_name(lk::parse_schedule("Karras")) == "karras");
  CHECK(lk::sigma_schedule_name(lk::parse_schedule("discrete")) == "normal");
  CHECK(lk::sigma_schedule_name(lk::parse_schedule("Automatic")) == "normal");
  CHECK(lk::sigma_schedule_name(lk::parse_schedule("default")) == "normal");
  CHECK(lk::sigma_schedule_name(lk::parse_schedule("UNIFORM")) == "sgm_uniform");
  CHECK(lk::schedule_names().size() == lk::sigma_schedule_names.size() + lk::normal_schedule_aliases.size());
  for (const auto& name : lk::sampler_names()) CHECK_NOTHROW(lk::parse_sampler(name));
  const auto names = lk::sampler_names();
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());  // no duplicates
  // canonical + A1111 x (bare + each schedule suffix) + the sd.cpp names that differ from the canonical ones
  std::size_t sdcpp_only = 0;
  for (const auto& row : lk::sampler_table) sdcpp_only += !row.sdcpp.empty() && row.sdcpp != row.name;
  CHECK(sdcpp_only == 5);
  CHECK(names.size() == lk::sampler_table.size() * (2 + lk::a1111_schedule_suffixes.size()) + sdcpp_only);
  CHECK(std::get<lk::DPMpp2MSDE>(lk::make_step(lk::SamplerKind::dpmpp_2m_sde_heun)).solver_type == lk::SolverType::heun);
}

TEST_CASE("unknown sampler and schedule names throw UnknownNameError listing the valid names") {
  // The message of the UnknownNameError `parse` throws ("" when it throws nothing).
  const auto unknown_name_message = [](auto parse) -> std::string {
    try {
      parse();
    } catch (const lk::UnknownNameError& e) {
      return e.what();
    }
    return "";
  };
  const std::string sampler_error = unknown_name_message([] { lk::parse_sampler("DPM++ 2M Turbo"); });
  CHECK_THAT(sampler_error, Catch::Contains("DPM++ 2M Turbo") && Catch::Contains("\"DPM++ 2M Karras\"") &&
                                Catch::Contains("\"DPM++ 2M SGM Uniform\"") && Catch::Contains("\"euler_a\""));
  CHECK_THROWS_AS(lk::parse_sampler("euler "), lk::UnknownNameError);
  CHECK_THROWS_AS(lk::parse_sampler("Euler Cosine"), lk::UnknownNameError);
  const std::string schedule_error = unknown_name_message([] { lk::parse_schedule("cosine"); });
  CHECK_THAT(schedule_error, Catch::Contains("cosine"));
  for (const auto& name : lk::schedule_names()) CHECK_THAT(schedule_error, Catch::Contains("\"" + name + "\""));
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
    const xt::xarray<double> x = lk::sample({row.kind, lk::Normal{}}, unet_like, z, 6, lk::GaussianNoise(1));
    CHECK(max_abs(x) < 20.0);
  }
}

TEST_CASE("every schedule name of the registry runs with a sampler by name, from the model's table or range") {
  auto model = fixture_model();
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const xt::xarray<double> z = load<double>(problem, "z");
  const auto table = load_vector(problem, "diffusers_alphas_cumprod_f32");
  const auto schedule = lk::DiscreteSchedule<double>::from_alphas_cumprod(std::span<const double>(table));
  lk::VpNetwork net(model, table, lk::Prediction::epsilon);
  lk::DiscreteTimeDenoiser unet_like(net, schedule, lk::Prediction::epsilon, true);
  int table_only = 0;
  for (const auto& name : lk::schedule_names()) {
    INFO(name);
    const lk::AnySigmaSchedule spacing = lk::parse_schedule(name);
    const std::vector<double> sigmas = lk::sigmas_for(spacing, 6, schedule);
    REQUIRE(lk::schedule_sigmas(spacing, 6, unet_like) == sigmas);
    for (const char* sampler : {"DPM++ 2M", "euler_a"}) {
      const lk::SamplerChoice choice{lk::parse_sampler(sampler).sampler, spacing};
      const xt::xarray<double> by_name = lk::sample(choice, unet_like, z, 6, lk::GaussianNoise(3));
      const xt::xarray<double> direct = lk::run_steps(lk::make_step(choice.sampler), unet_like,
                                                      xt::xarray<double>(z * sigmas.front()), lk::Sigmas(sigmas),
                                                      lk::GaussianNoise(3));
      CHECK(max_abs_diff(by_name, direct) == 0.0);
      CHECK(max_abs(by_name) < 20.0);
    }
    // The bare mixture knows only its sigma range: range spacings run, table spacings are refused by name.
    if (std::holds_alternative<lk::Karras>(spacing) || std::holds_alternative<lk::Exponential>(spacing) ||
        std::holds_alternative<lk::PolyExponential>(spacing)) {
      CHECK(max_abs(lk::sample({lk::SamplerKind::heun, spacing}, model, z, 6, lk::NoNoise{})) < 20.0);
    } else {
      ++table_only;
      CHECK_THROWS_WITH(lk::sample({lk::SamplerKind::heun, spacing}, model, z, 6, lk::NoNoise{}),
                        Catch::Contains(std::string(lk::sigma_schedule_name(spacing))) &&
                            Catch::Contains("schedule()"));
    }
  }
  CHECK(table_only == 7);  // normal, discrete, simple, sgm_uniform, uniform, default, automatic
  // knobs travel with the choice: Karras rho 3 differs from rho 7 on the same model
  const xt::xarray<double> rho7 = lk::sample({lk::SamplerKind::dpmpp_2m, lk::Karras{}}, model, z, 8, lk::NoNoise{});
  const xt::xarray<double> rho3 =
      lk::sample({lk::SamplerKind::dpmpp_2m, lk::Karras{.rho = 3}}, model, z, 8, lk::NoNoise{});
  CHECK(max_abs_diff(rho7, rho3) > 1e-6);
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

TEST_CASE("GaussianNoise keeps its documented bits: SplitMix64 counter hash and Box-Muller per element pair") {
  // An independent transcription of the generator documented in samplers/noise.hpp.
  const auto splitmix = [](std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  const std::uint64_t seed = 1234567;
  lk::GaussianNoise noise(seed);
  for (std::size_t n : {std::size_t{5}, std::size_t{6000}}) {  // odd tail; large enough to run threaded
    for (std::uint64_t call : {std::uint64_t{0}, std::uint64_t{3}}) {
      std::vector<double> got(n);
      noise.fill(got.data(), n, call);
      std::size_t differing = 0;
      for (std::size_t i = 0; i < n; i += 2) {
        const auto h = [&](std::uint64_t index) { return splitmix(splitmix(splitmix(seed) ^ call) ^ index); };
        const double u1 = (static_cast<double>(h(i) >> 11) + 1.0) * 0x1.0p-53;
        const double u2 = static_cast<double>(h(i + 1) >> 11) * 0x1.0p-53;
        const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * std::numbers::pi * u2;
        differing += got[i] != r * std::cos(a);
        if (i + 1 < n) differing += got[i + 1] != r * std::sin(a);
      }
      CHECK(differing == 0);
    }
  }
}

TEST_CASE("every unknown-name error reads the same way: the kind, the name, then every valid name quoted") {
  // The message of the UnknownNameError `parse` throws for the name "bogus" ("" when it throws nothing).
  const auto message = [](auto parse) -> std::string {
    try {
      parse("bogus");
    } catch (const lk::UnknownNameError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(message([](std::string_view n) { lk::parse_timestep_spacing(n); }) ==
        R"(unknown timestep spacing "bogus"; valid names: "linspace", "leading", "trailing")");
  CHECK(message([](std::string_view n) { lk::parse_beta_schedule(n); }) ==
        R"(unknown beta schedule "bogus"; valid names: "linear", "scaled_linear", "squaredcos_cap_v2")");
  CHECK(message([](std::string_view n) { lk::parse_img2img_convention(n); }) ==
        R"(unknown img2img convention "bogus"; valid names: "diffusers_like", "diffusers", "a1111", "a1111_fix_steps")");
  CHECK(message([](std::string_view n) { lk::parse_prediction(n); }) ==
        R"(unknown prediction type "bogus"; valid names: "epsilon", "eps", "v_prediction", "v", "sample", "x0")");
  // The long lists: every name each parser accepts, in the same format.
  const auto listing = [](std::string_view kind, const auto& names) {
    std::string out = "unknown " + std::string(kind) + " \"bogus\"; valid names: ";
    for (std::size_t i = 0; i < std::size(names); ++i) out += (i ? ", \"" : "\"") + std::string(names[i]) + "\"";
    return out;
  };
  CHECK(message([](std::string_view n) { lk::sigma_schedule_from_name(n); }) ==
        listing("sigma schedule", lk::sigma_schedule_names));
  CHECK(message([](std::string_view n) { lk::parse_schedule(n); }) == listing("schedule", lk::schedule_names()));
  CHECK(message([](std::string_view n) { lk::parse_sampler(n); }) == listing("sampler", lk::sampler_names()));
}
