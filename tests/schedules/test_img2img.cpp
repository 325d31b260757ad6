// img2img strength against every case of img2img/cases.json and every tensor of img2img.safetensors.
#include <functional>
#include <set>
#include <string>

#include "latentkit/schedules/all.hpp"
#include "schedule_fixtures.hpp"

using namespace latentkit;
using schedules_test::require_close;
using schedules_test::require_equal;

namespace {

/// "<a>.<b>.n<N>.s<strength>" -> parts; the strength keeps its dots.
struct CaseKey {
  std::string first, second;
  index_t n = 0;
  double strength = 0;
};
CaseKey parse_kdiff_key(const std::string& key) {
  CaseKey k;
  const std::size_t a = key.find('.');
  const std::size_t b = key.find('.', a + 1);
  const std::size_t c = key.find(".s", b + 1);
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  REQUIRE(c != std::string::npos);
  k.first = key.substr(0, a);
  k.second = key.substr(a + 1, b - a - 1);
  REQUIRE(key[b + 1] == 'n');
  k.n = std::stoll(key.substr(b + 2, c - b - 2));
  k.strength = std::stod(key.substr(c + 2));
  return k;
}

std::vector<double> tensor_values(const SafetensorsFile& f, const std::string& key) {
  return schedules_test::to_vector<double>(f, key);
}

/// "<family>_<spacing>[_offset<k>]" or "<family>_karras" -> spacing, steps_offset, Karras flag.
struct SchedulerKey {
  TimestepSpacing spacing = TimestepSpacing::linspace;
  index_t offset = 0;
  bool karras = false;
};
SchedulerKey scheduler_key(const std::string& sched) {
  SchedulerKey k;
  std::size_t pos = sched.find('_');
  REQUIRE(pos != std::string::npos);
  while (pos != std::string::npos) {
    const std::size_t next = sched.find('_', pos + 1);
    const std::string tok = sched.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    if (tok == "karras") k.karras = true;
    else if (tok.rfind("offset", 0) == 0) k.offset = std::stoll(tok.substr(6));
    else k.spacing = parse_timestep_spacing(tok);
    pos = next;
  }
  return k;
}

}  // namespace

TEST_CASE("every diffusers img2img case: indices, timesteps and the noisy latent", "[schedules][img2img][fixtures]") {
  const auto cases = schedules_test::load_json("img2img/cases.json");
  const auto sched_doc = schedules_test::load_json("schedules/schedules.json");
  const TrainingSchedule train = schedules_test::fixture_training(sched_doc);
  const std::vector<float> ac = alphas_cumprod<float>(train);
  const SafetensorsFile f(latentkit_test::fixture("img2img/img2img.safetensors"));
  const Tensor<double> x0 = f.load<double>("x0");
  const Tensor<double> noise = f.load<double>("noise");
  std::set<std::string> used_tensors = {"x0", "noise"};

  REQUIRE_FALSE(cases.at("diffusers").empty());
  for (const auto& [key, c] : cases.at("diffusers").items()) {
    INFO("diffusers case " << key);
    const std::string sched = key.substr(0, key.find('.'));
    const index_t n = c.at("num_inference_steps").get<index_t>();
    const double strength = c.at("strength").get<double>();
    const SchedulerKey sk = scheduler_key(sched);
    const DiffusersImg2ImgStart start = diffusers_img2img_start(n, strength);
    CHECK(start.t_start == c.at("t_start").get<index_t>());
    CHECK(start.num_steps_run == c.at("num_steps_run").get<index_t>());
    if (!c.at("begin_index").is_null()) CHECK(start.begin_index == c.at("begin_index").get<index_t>());
    const std::string noisy_key = "diffusers." + key + ".noisy";

    if (sched.rfind("ddim_", 0) == 0) {
      REQUIRE_FALSE(sk.karras);  // DDIM has no Karras sigmas
      const std::vector<std::int64_t> all = ddim_timesteps(n, sk.spacing, sk.offset, train.num_train_timesteps);
      require_equal(all, c.at("all_timesteps").get<std::vector<std::int64_t>>(), "all_timesteps");
      const std::span<const std::int64_t> all_span(all);
      require_equal(diffusers_img2img_timesteps(all_span, start), c.at("timesteps_run").get<std::vector<std::int64_t>>(), "timesteps_run");
      if (c.contains("add_noise_error")) {
        CHECK_THROWS_AS(diffusers_latent_timestep(all_span, start), Error);
        CHECK_FALSE(f.contains(noisy_key));
        continue;
      }
      const std::int64_t t = diffusers_latent_timestep(all_span, start);
      require_equal(std::vector<std::int64_t>{t}, c.at("latent_timestep").get<std::vector<std::int64_t>>(), "latent_timestep");
      const VpNoiseScales scales = vp_noise_scales(std::span<const float>(ac), t);
      CHECK(scales.sqrt_alpha_prod == Approx(c.at("add_noise_sqrt_alpha_prod").get<double>()).epsilon(1e-12));
      CHECK(scales.sqrt_one_minus_alpha_prod == Approx(c.at("add_noise_sqrt_one_minus_alpha_prod").get<double>()).epsilon(1e-12));
      const Tensor<double> noisy = add_noise_vp(x0.view(), noise.view(), scales);
      require_close(std::vector<double>(noisy.data(), noisy.data() + noisy.numel()), tensor_values(f, noisy_key), 1e-12, noisy_key);
    } else if (sched.rfind("euler_", 0) == 0) {
      EulerDiscreteConfig cfg;
      cfg.train = train;
      cfg.timestep_spacing = sk.spacing;
      cfg.steps_offset = sk.offset;
      cfg.use_karras_sigmas = sk.karras;
      const EulerDiscreteTimesteps e = euler_discrete_timesteps(std::span<const float>(ac), cfg, n);
      require_close(e.timesteps, c.at("all_timesteps").get<std::vector<double>>(), 2e-6, "all_timesteps");
      const std::span<const float> all_span(e.timesteps);
      require_close(diffusers_img2img_timesteps(all_span, start), c.at("timesteps_run").get<std::vector<double>>(), 2e-6, "timesteps_run");
      if (c.contains("add_noise_error")) {
        CHECK_THROWS_AS(diffusers_latent_timestep(all_span, start), Error);
        CHECK_FALSE(f.contains(noisy_key));
        continue;
      }
      require_close(std::vector<float>{diffusers_latent_timestep(all_span, start)}, c.at("latent_timestep").get<std::vector<double>>(), 2e-6, "latent_timestep");
      // the sigma (float32, rtol 2e-6) and the noising (float64, rtol 1e-12) are checked separately, so that a
      // last-ulp sigma difference cannot hide behind a loose latent tolerance
      const double recorded_sigma = c.at("add_noise_sigma").get<double>();
      CHECK(e.sigmas.at(static_cast<std::size_t>(start.begin_index)) == Approx(recorded_sigma).epsilon(2e-6));
      const Tensor<double> noisy = add_noise_sigma(x0.view(), noise.view(), recorded_sigma);
      require_close(std::vector<double>(noisy.data(), noisy.data() + noisy.numel()), tensor_values(f, noisy_key), 1e-12, noisy_key);
    } else {
      FAIL("no reproduction for diffusers scheduler " << sched);
    }
    used_tensors.insert(noisy_key);
  }

  const auto model32 = DiscreteSchedule<float>::compvis(train);
  REQUIRE_FALSE(cases.at("kdiff").empty());
  for (const auto& [key, c] : cases.at("kdiff").items()) {
    INFO("kdiff case " << key);
    const CaseKey k = parse_kdiff_key(key);
    const std::string conv = c.at("convention").get<std::string>();
    const Img2ImgConvention convention = conv == "diffusers_get_timesteps" ? Img2ImgConvention::diffusers_like
                                         : conv == "a1111_default"         ? Img2ImgConvention::a1111
                                                                           : parse_img2img_convention(conv);
    CHECK(convention == parse_img2img_convention(k.first));
    double rtol = 0;
    std::function<std::vector<double>(index_t)> make;
    if (k.second == "normal") {
      make = [&](index_t steps) { return Normal{}.sigmas<double>(steps, model32); };
      rtol = 2e-6;  // float32 values
    } else if (k.second == "karras") {
      make = [&](index_t steps) { return Karras{}.sigmas<double>(steps, model32); };
      rtol = 1e-12;
    } else {
      FAIL("no reproduction for sigma schedule " << k.second);
    }
    const SigmaImg2ImgStart<double> r = img2img_sigmas(convention, k.n, k.strength, make);
    CHECK(r.start_index == c.at("start_index").get<index_t>());
    CHECK(r.num_steps_run == c.at("num_steps_run").get<index_t>());
    if (c.contains("steps")) CHECK(r.steps == c.at("steps").get<index_t>());
    if (c.contains("t_enc")) CHECK(r.t_enc == c.at("t_enc").get<index_t>());
    require_close(r.sigma_sched, c.at("sigma_sched").get<std::vector<double>>(), rtol, "sigma_sched");
    const std::string xi_key = "kdiff." + key + ".xi";
    if (r.num_steps_run == 0) {
      CHECK_THROWS_AS(r.start_sigma(), Error);
      CHECK_FALSE(f.contains(xi_key));
      continue;
    }
    const double recorded_sigma = c.at("sigma_sched").at(0).get<double>();
    CHECK(r.start_sigma() == Approx(recorded_sigma).epsilon(rtol));
    const Tensor<double> xi = add_noise_sigma(x0.view(), noise.view(), recorded_sigma);
    require_close(std::vector<double>(xi.data(), xi.data() + xi.numel()), tensor_values(f, xi_key), 1e-12, xi_key);
    used_tensors.insert(xi_key);
  }
  for (const TensorInfo& t : f.tensors()) {
    INFO("tensor " << t.name << " is not covered by any case");
    CHECK(used_tensors.count(t.name) == 1);
  }
}

TEST_CASE("diffusers strength arithmetic truncates a float64 product like Python's int()", "[schedules][img2img]") {
  CHECK(diffusers_img2img_start(100, 0.29).init_timestep == 28);  // 0.29 * 100 = 28.999999999999996
  CHECK(diffusers_img2img_start(20, 0.3).t_start == 14);
  CHECK(diffusers_img2img_start(20, 1.0).t_start == 0);
  const auto zero = diffusers_img2img_start(20, 0.0);
  CHECK(zero.num_steps_run == 0);
  CHECK_FALSE(zero.can_run());
  CHECK(diffusers_img2img_start(10, 0.5, 2).begin_index == 10);
  CHECK_THROWS_AS(diffusers_img2img_start(20, 1.5), Error);
  CHECK_THROWS_AS(diffusers_img2img_start(20, -0.1), Error);
  CHECK_THROWS_AS(diffusers_img2img_start(0, 0.5), Error);
}

TEST_CASE("A1111 runs one step more than diffusers for the same strength", "[schedules][img2img]") {
  const auto model = DiscreteSchedule<float>::compvis();
  auto make = [&](index_t steps) { return Karras{}.sigmas<double>(steps, model); };
  for (double s : {0.1, 0.3, 0.5, 0.75}) {
    const auto a = img2img_sigmas(Img2ImgConvention::a1111, 20, s, make);
    const auto d = img2img_sigmas(Img2ImgConvention::diffusers_like, 20, s, make);
    CHECK(a.num_steps_run == d.num_steps_run + 1);
    const auto fixed = img2img_sigmas(Img2ImgConvention::a1111_fix_steps, 20, s, make);
    CHECK(fixed.num_steps_run == 20);
    CHECK(fixed.sigma_sched.back() == 0.0);
  }
  CHECK(img2img_sigmas(Img2ImgConvention::a1111, 20, 0.0, make).num_steps_run == 1);
  CHECK_THROWS_AS(img2img_sigmas(Img2ImgConvention::a1111_fix_steps, 20, 0.0, make), Error);
  CHECK_THROWS_AS(parse_img2img_convention("invoke"), UnknownNameError);
  CHECK_THROWS_AS(img2img_sigmas(Img2ImgConvention::a1111, 20, 0.5, [](index_t) { return std::vector<double>{1.0, 0.0}; }), Error);
}

TEST_CASE("add_noise rejects latents and noise of different shapes", "[schedules][img2img]") {
  const Tensor<float> x0 = Tensor<float>::full(Dims{2, 3}, 1.0f);
  const Tensor<float> noise = Tensor<float>::full(Dims{3, 2}, 0.5f);
  CHECK_THROWS_AS(add_noise_sigma(x0.view(), noise.view(), 2.0), ShapeError);
  const Tensor<float> noise_ok = Tensor<float>::full(Dims{2, 3}, 0.5f);
  const Tensor<float> y = add_noise_sigma(x0.view(), noise_ok.view(), 2.0);
  CHECK(y.data()[5] == 2.0f);
  const Tensor<float> v = add_noise_vp(x0.view(), noise_ok.view(), VpNoiseScales{0.6, 0.8});
  CHECK(v.data()[0] == Approx(0.6 + 0.4));
}
