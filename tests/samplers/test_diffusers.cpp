// diffusers DDIM and DPM-Solver++(2M) loops on the VP scale, and the equivalence checks of summary.json.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <regex>

#include "latentkit/denoisers/vp_network.hpp"
#include "latentkit/samplers/diffusers_dpm_solver.hpp"
#include "latentkit/samplers/dpmpp_2m.hpp"
#include "latentkit/samplers/euler.hpp"
#include "support.hpp"

using namespace samplers_test;

namespace {

struct Table {
  std::vector<float> f32;
  std::vector<double> f64;  // the same values promoted, as the reference model uses them
};
Table alphas_cumprod() {
  lk::SafetensorsFile p(latentkit_test::fixture("samplers/problem.safetensors"));
  const auto t = p.load<float>("diffusers_alphas_cumprod_f32");
  Table out{{t.data(), t.data() + t.numel()}, {}};
  out.f64.assign(out.f32.begin(), out.f32.end());
  return out;
}
std::vector<std::int64_t> load_timesteps(const lk::SafetensorsFile& f, const std::string& key) {
  const auto v = load_vector(f, key);
  return {v.begin(), v.end()};
}
std::string first_component(const std::string& run) { return run.substr(0, run.find('.')); }

struct Trace {
  std::vector<std::int64_t> t;
  std::vector<xt::xarray<double>> x, out, x0;
};

template <class T>
xt::xarray<T> run_ddim(lk::Prediction p, const xt::xarray<T>& x_init, std::span<const std::int64_t> timesteps,
                       Trace* trace = nullptr) {
  static const Table table = alphas_cumprod();
  auto model = fixture_model();
  lk::VpNetwork net(model, table.f64, p);
  const lk::DiffusersDDIM ddim{.alphas_cumprod = table.f32, .prediction = p};
  return ddim(net, x_init, timesteps, lk::NoNoise{},
              [&](std::size_t, std::int64_t t, const auto& x, const auto& out, const auto& x0) {
                if (!trace) return;
                trace->t.push_back(t);
                trace->x.push_back(x);
                trace->out.push_back(out);
                trace->x0.push_back(x0);
              });
}

template <class T>
xt::xarray<T> run_dpm(lk::Prediction p, const xt::xarray<T>& x_init, std::span<const std::int64_t> timesteps,
                      std::span<const float> sigmas, Trace* trace = nullptr) {
  static const Table table = alphas_cumprod();
  auto model = fixture_model();
  lk::VpNetwork net(model, table.f64, p);
  const lk::DiffusersDPMSolverMultistep dpm{.prediction = p};
  return dpm(net, x_init, timesteps, sigmas, [&](std::size_t, std::int64_t t, const auto& x, const auto& out, const auto&) {
    if (!trace) return;
    trace->t.push_back(t);
    trace->x.push_back(x);
    trace->out.push_back(out);
  });
}

void compare_trace(const Trace& trace, const lk::SafetensorsFile& f, const std::string& run, double atol) {
  const auto ref_x = load<double>(f, run + ".steps_x");
  const auto ref_out = load<double>(f, run + ".steps_model_output");
  REQUIRE(trace.x.size() == ref_x.shape()[0]);
  for (std::size_t i = 0; i < trace.x.size(); ++i) {
    INFO("step " << i);
    CHECK(max_abs_diff(trace.x[i], row(ref_x, i)) <= atol);
    CHECK(max_abs_diff(trace.out[i], row(ref_out, i)) <= atol);
    if (f.contains(run + ".steps_pred_original_sample"))
      CHECK(max_abs_diff(trace.x0[i], row(load<double>(f, run + ".steps_pred_original_sample"), i)) <= atol);
  }
}

std::vector<float> load_f32(const lk::SafetensorsFile& f, const std::string& key) {
  const auto t = f.load<float>(key);
  return {t.data(), t.data() + t.numel()};
}

}  // namespace

TEST_CASE("the diffusers DDIM loop reproduces every recorded run with its float32 scheduler arithmetic") {
  lk::SafetensorsFile f(latentkit_test::fixture("samplers/diffusers_ddim.safetensors"));
  const auto all = runs(f);
  REQUIRE(!all.empty());
  for (const auto& run : all) {
    INFO("run " << run);
    const auto p = lk::parse_prediction(first_component(run));
    const auto timesteps = load_timesteps(f, run + ".timesteps");
    Trace trace;
    const auto x = run_ddim<double>(p, load<double>(f, run + ".x_init"), timesteps, &trace);
    // Exact float32 replication of the scalars: only the double op order differs (README: ~1e-12).
    CHECK(max_abs_diff(x, load<double>(f, run + ".x_final")) <= 1e-11);
    compare_trace(trace, f, run, 1e-11);
    const auto x32 = run_ddim<float>(p, load<float>(f, run + ".x_init"), timesteps);
    CHECK(max_abs_diff(x32, load<double>(f, run + ".x_final")) <= 1e-4);
  }
}

TEST_CASE("the diffusers DPM-Solver++(2M) loop reproduces every recorded run, plain and Karras") {
  lk::SafetensorsFile f(latentkit_test::fixture("samplers/diffusers_dpmpp_2m.safetensors"));
  const auto all = runs(f);
  REQUIRE(!all.empty());
  int exact_first_steps = 0;
  for (const auto& run : all) {
    INFO("run " << run);
    const auto p = lk::parse_prediction(first_component(run));
    const auto timesteps = load_timesteps(f, run + ".timesteps");
    const auto sigmas = load_f32(f, run + ".sigmas_f32");
    Trace trace;
    const auto x = run_dpm<double>(p, load<double>(f, run + ".x_init"), timesteps, sigmas, &trace);
    // torch evaluates float32 exp/log through SLEEF's vector kernels (1-ulp accurate, not correctly rounded), so a
    // lambda or exp(-h) can differ from libm's by one float32 ulp, which moves x by up to ~2e-7 here (measured). The
    // README allows 1e-5 for double coefficients; we hold 1e-6.
    CHECK(max_abs_diff(x, load<double>(f, run + ".x_final")) <= 1e-6);
    compare_trace(trace, f, run, 1e-6);
    // Whether the float32 rounding points (the sample cast, the float32 decay product, the float32 scalars) sit
    // where diffusers has them is a ~1e-7 effect, below that tolerance; it shows where no SLEEF/libm ulp difference
    // occurred in the first step: then x after step 0 matches to ~1e-15 (4 of the 6 epsilon runs of the public
    // set; dropping the sample cast alone gives ~2e-7 in every run). At least one run must show it.
    const auto ref_x = load<double>(f, run + ".steps_x");
    if (trace.x.size() > 1 && max_abs_diff(trace.x[1], row(ref_x, 1)) <= 1e-12) ++exact_first_steps;
    const auto x32 = run_dpm<float>(p, load<float>(f, run + ".x_init"), timesteps, sigmas);
    CHECK(max_abs_diff(x32, load<double>(f, run + ".x_final")) <= 1e-4);
  }
  CHECK(exact_first_steps >= 1);
}

TEST_CASE("the equivalence checks of summary.json hold for our implementations") {
  const auto summary = nlohmann::json::parse(latentkit_test::read_text(latentkit_test::fixture("samplers/summary.json")));
  const Table table = alphas_cumprod();
  lk::SafetensorsFile ddim_file(latentkit_test::fixture("samplers/diffusers_ddim.safetensors"));
  lk::SafetensorsFile dpm_file(latentkit_test::fixture("samplers/diffusers_dpmpp_2m.safetensors"));
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const auto sigma_of = [&](std::int64_t t) { return std::sqrt((1 - table.f64[t]) / table.f64[t]); };
  const std::regex numbered(R"((.+)\.n(\d+)\.max_abs_diff)"), roundtrip(R"(vp_eps_roundtrip_t(\d+)\.max_abs_diff)"),
      tweedie(R"(tweedie_max_abs_err_sigma_(.+))");
  REQUIRE(summary.at("checks").size() > 0);
  for (const auto& [key, value] : summary.at("checks").items()) {
    INFO("check " << key << " = " << value.get<double>());
    const double recorded = value.get<double>();
    std::smatch m;
    if (std::regex_match(key, m, numbered)) {
      const std::string family = m[1];
      const std::string n = m[2];
      if (family == "ddim_eps_vs_kdiff_euler_ve" || family == "ddim_v_vs_ddim_eps") {
        const std::string run = "epsilon.n" + n;
        const auto timesteps = load_timesteps(ddim_file, run + ".timesteps");
        const auto z = load<double>(ddim_file, run + ".x_init");
        const xt::xarray<double> eps_vp = run_ddim<double>(lk::Prediction::epsilon, z, timesteps);
        if (family == "ddim_v_vs_ddim_eps") {
          const xt::xarray<double> v_vp = run_ddim<double>(lk::Prediction::v_prediction, z, timesteps);
          CHECK(max_abs_diff(v_vp, eps_vp) == Approx(recorded).margin(1e-9));
          continue;
        }
        // DDIM(eps) is Euler on the VE scale: x_VE = x_VP / sqrt(abar), sigmas sigma(t_i) then sigma(abar_0).
        std::vector<double> sigmas;
        for (auto t : timesteps) sigmas.push_back(sigma_of(t));
        sigmas.push_back(sigma_of(0));
        auto model = fixture_model();
        const xt::xarray<double> x_ve0 = z / std::sqrt(table.f64[timesteps.front()]);
        const xt::xarray<double> euler = lk::Euler{}(model, x_ve0, sigmas, lk::NoNoise{});
        const xt::xarray<double> ddim_ve = eps_vp / std::sqrt(table.f64[0]);
        CHECK(max_abs_diff(ddim_ve, euler) == Approx(recorded).margin(1e-9));
      } else if (family == "dpmpp2m_eps_plain_vs_kdiff_dpmpp_2m" || family == "dpmpp2m_eps_karras_vs_kdiff_dpmpp_2m") {
        const std::string run = std::string("epsilon.") + (family.find("karras") != std::string::npos ? "karras" : "plain") +
                                ".n" + n;
        const auto timesteps = load_timesteps(dpm_file, run + ".timesteps");
        const auto sigmas_f32 = load_f32(dpm_file, run + ".sigmas_f32");
        const auto z = load<double>(dpm_file, run + ".x_init");
        const xt::xarray<double> diffusers = run_dpm<double>(lk::Prediction::epsilon, z, timesteps, sigmas_f32);
        const std::vector<double> sigmas(sigmas_f32.begin(), sigmas_f32.end());
        auto model = fixture_model();
        const xt::xarray<double> x_ve0 = z * std::sqrt(sigmas.front() * sigmas.front() + 1);
        const xt::xarray<double> kdiff = lk::DPMpp2M{}(model, x_ve0, sigmas, lk::NoNoise{});
        // Against the recorded diffusers result our k-diffusion DPM++(2M) reproduces the check to 1e-9; against our
        // own diffusers loop it agrees up to that loop's 1e-6 (see the DPM-Solver test).
        CHECK(max_abs_diff(load<double>(dpm_file, run + ".x_final"), kdiff) == Approx(recorded).margin(1e-9));
        CHECK(max_abs_diff(diffusers, kdiff) == Approx(recorded).margin(1e-6));
      } else {
        FAIL("unknown check family " << family);
      }
    } else if (std::regex_match(key, m, roundtrip)) {
      // eps from the VP wrapper, turned back into x0 by the epsilon adapter formula, gives the wrapper's x0.
      const std::int64_t t = std::stoll(m[1]);
      auto model = fixture_model();
      lk::VpNetwork eps_net(model, table.f64, lk::Prediction::epsilon), x0_net(model, table.f64, lk::Prediction::sample);
      const xt::xarray<double> x_t = load<double>(problem, "z");
      const double a = table.f64[t];
      const xt::xarray<double> eps = eps_net(x_t, double(t));
      const xt::xarray<double> x0 = (x_t - std::sqrt(1 - a) * eps) / std::sqrt(a);
      CHECK(max_abs_diff(x0, x0_net(x_t, double(t))) <= std::max(recorded, 1e-15) * 10);
    } else if (std::regex_match(key, m, tweedie)) {
      // D = x + sigma^2 grad log p_sigma(x), the gradient by central differences of the closed-form log density.
      const double sigma = std::stod(m[1]);
      const auto means = load_vector(problem, "means"), weights = load_vector(problem, "weights"),
                 variances = load_vector(problem, "variances");
      const std::size_t dim = means.size() / weights.size();
      const auto log_p = [&](const std::vector<double>& x) {
        std::vector<double> terms;
        for (std::size_t k = 0; k < weights.size(); ++k) {
          const double v = variances[k] + sigma * sigma;
          double d2 = 0;
          for (std::size_t j = 0; j < dim; ++j) d2 += (x[j] - means[k * dim + j]) * (x[j] - means[k * dim + j]);
          terms.push_back(std::log(weights[k]) - 0.5 * dim * std::log(2 * M_PI * v) - d2 / (2 * v));
        }
        const double top = *std::max_element(terms.begin(), terms.end());
        double s = 0;
        for (double l : terms) s += std::exp(l - top);
        return top + std::log(s);
      };
      auto model = fixture_model();
      const xt::xarray<double> z = load<double>(problem, "z");
      const xt::xarray<double> x = row(z, 0) * sigma + row(xt::xarray<double>(load<double>(problem, "means")), 1);
      xt::xarray<double> x_batch = x;
      x_batch.reshape({1, dim});
      const xt::xarray<double> d = model(x_batch, sigma);
      std::vector<double> point(x.begin(), x.end());
      const double step = 1e-5 * std::max(1.0, sigma);
      double worst = 0;
      for (std::size_t j = 0; j < dim; ++j) {
        auto up = point, down = point;
        up[j] += step;
        down[j] -= step;
        const double grad = (log_p(up) - log_p(down)) / (2 * step);
        worst = nan_max(worst, std::abs(point[j] + sigma * sigma * grad - d.data()[j]));
      }
      // Central differences are accurate to ~1e-10 relative here; the recorded autograd error is ~1e-14.
      CHECK(worst <= 1e-6 * std::max(1.0, sigma * sigma));
    } else {
      FAIL("unknown check " << key);
    }
  }
}
