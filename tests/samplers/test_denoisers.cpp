// Denoisers (Gaussian mixture, discrete-time adapters, classifier-free guidance) and the noise sources.
#include <limits>
#include "latentkit/denoisers/discrete_time.hpp"
#include "latentkit/denoisers/guidance.hpp"
#include "latentkit/denoisers/vp_network.hpp"
#include "latentkit/samplers/dpmpp_sde.hpp"
#include "latentkit/samplers/euler.hpp"
#include "latentkit/samplers/euler_ancestral.hpp"
#include "latentkit/samplers/registry.hpp"
#include "latentkit/schedules/discrete.hpp"
#include "support.hpp"

using namespace samplers_test;

namespace {
std::vector<double> fixture_alphas_cumprod() {
  lk::SafetensorsFile p(latentkit_test::fixture("samplers/problem.safetensors"));
  return load_vector(p, "diffusers_alphas_cumprod_f32");
}
}  // namespace

TEST_CASE("the Gaussian-mixture denoiser reproduces the recorded denoised states and rejects bad shapes") {
  auto model = fixture_model();
  lk::SafetensorsFile f(latentkit_test::fixture("samplers/kdiff_euler.safetensors"));
  for (const auto& run : runs(f)) {
    const auto xs = load<double>(f, run + ".steps_x");
    const auto ds = load<double>(f, run + ".steps_denoised");
    const auto sigmas = load_vector(f, run + ".steps_sigma");
    for (std::size_t i = 0; i < sigmas.size(); ++i)
      CHECK(max_abs_diff(model(row(xs, i), sigmas[i]), row(ds, i)) <= 1e-12);
  }
  xt::xarray<double> wrong = xt::xarray<double>::from_shape({2, 63});
  wrong.fill(0.5);
  CHECK_THROWS_AS(model(wrong, 1.0), lk::ShapeError);
  CHECK_THROWS_AS(lk::GaussianMixtureDenoiser({1, 2, 3}, {0.5, 0.5}, {1, 1}, 0.1, 10), lk::ShapeError);
  CHECK_THROWS_AS(lk::GaussianMixtureDenoiser({1, 2}, {0.5, 0.5}, {1, -1}, 0.1, 10), lk::Error);
}

TEST_CASE("epsilon, v and x0 adapters turn the matching VP network back into the denoiser") {
  auto model = fixture_model();
  const auto table = fixture_alphas_cumprod();
  const auto schedule = lk::DiscreteSchedule<double>::from_alphas_cumprod(std::span<const double>(table));
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const xt::xarray<double> z = load<double>(problem, "z");
  for (auto p : {lk::Prediction::epsilon, lk::Prediction::v_prediction, lk::Prediction::sample}) {
    INFO(lk::prediction_name(p));
    lk::VpNetwork net(model, table, p);
    lk::DiscreteTimeDenoiser denoiser(net, schedule, p, /*quantize=*/true);
    CHECK(denoiser.sigma_min() == Approx(schedule.sigma_min()));
    for (std::size_t t : {0u, 10u, 250u, 999u}) {
      INFO("t " << t);
      const double sigma = schedule.sigmas()[t];
      const xt::xarray<double> x = z * sigma + row(load<double>(problem, "means"), 0);
      const xt::xarray<double> expected = model(x, sigma);
      CHECK(max_abs_diff(denoiser(x, sigma), expected) <= 1e-12 * std::max(1.0, sigma));
    }
  }
}

namespace {
/// A conditioned test denoiser: D(x, sigma, c) = x / (1 + sigma) + c, counting calls and recording batch sizes.
struct CountingConditioned {
  int calls = 0;
  std::vector<std::size_t> batches{};
  template <class X>
  X operator()(const X& x, double sigma, const X& c) {
    ++calls;
    batches.push_back(x.shape()[0]);
    return X(x / (1 + sigma) + c);
  }
  double sigma_min() const { return 0.1; }
  double sigma_max() const { return 10; }
};
}  // namespace

TEST_CASE("classifier-free guidance evaluates cond and uncond in one batched call") {
  CountingConditioned inner;
  xt::xarray<double> uncond = {{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}};
  xt::xarray<double> cond = {{-1.0, 0.5, 2.0}, {3.0, -2.0, 1.0}};
  xt::xarray<double> x = {{0.3, -0.2, 0.1}, {1.5, 2.5, -3.5}};
  lk::ClassifierFreeGuidance cfg(inner, uncond, cond, 7.5);
  const xt::xarray<double> out = cfg(x, 1.0);
  CHECK(inner.calls == 1);
  REQUIRE(inner.batches == std::vector<std::size_t>{4});
  const xt::xarray<double> d_u = x / 2.0 + uncond, d_c = x / 2.0 + cond;
  const xt::xarray<double> expected = d_u + 7.5 * (d_c - d_u);
  CHECK(max_abs_diff(out, expected) <= 1e-12);
  CHECK(cfg.sigma_max() == 10);
  xt::xarray<double> three_rows = xt::xarray<double>::from_shape({3, 3});
  three_rows.fill(1.0);
  CHECK_THROWS_AS(cfg(three_rows, 1.0), lk::ShapeError);
}

TEST_CASE("seeded Gaussian noise is reproducible, standard normal, and independent of the thread count") {
  xt::xarray<double> like = xt::xarray<double>::from_shape({8, 4097});
  like.fill(0.0);
  lk::GaussianNoise a(42), b(42), c(43);
  const xt::xarray<double> a0 = a(1.0, 0.5, like), a1 = a(0.5, 0.2, like);
  const xt::xarray<double> b0 = b(1.0, 0.5, like);
  CHECK(max_abs_diff(a0, b0) == 0.0);
  CHECK(max_abs_diff(a0, a1) > 1.0);
  CHECK(max_abs_diff(a0, c(1.0, 0.5, like)) > 1.0);
  double mean = 0, var = 0;
  for (double v : a0) mean += v;
  mean /= double(a0.size());
  for (double v : a0) var += (v - mean) * (v - mean);
  var /= double(a0.size());
  CHECK(std::abs(mean) < 0.02);
  CHECK(var == Approx(1.0).margin(0.03));
#if LATENTKIT_HAS_OPENMP
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const xt::xarray<double> serial = lk::GaussianNoise(42)(1.0, 0.5, like);
  omp_set_num_threads(std::max(2, threads));
  const xt::xarray<double> parallel = lk::GaussianNoise(42)(1.0, 0.5, like);
  omp_set_num_threads(threads);
  CHECK(max_abs_diff(serial, parallel) == 0.0);
#endif
  // float latents get the same draws rounded to float
  xt::xarray<float> like_f = xt::xarray<float>::from_shape({8, 4097});
  CHECK(max_abs_diff(lk::GaussianNoise(42)(1.0, 0.5, like_f), a0) <= 1e-6 * 6);
}

TEST_CASE("replayed noise runs out loudly, checks shapes, and deterministic runs refuse to draw") {
  xt::xarray<double> x = {{1.0, 2.0}};
  lk::ReplayNoise<xt::xarray<double>> replay({xt::xarray<double>{{0.5, -0.5}}});
  CHECK(replay(2.0, 1.0, x)(0, 1) == -0.5);
  CHECK_THROWS_AS(replay(1.0, 0.5, x), lk::Error);
  lk::ReplayNoise<xt::xarray<double>> wrong({xt::xarray<double>{{0.5, -0.5, 1.0}}});
  CHECK_THROWS_AS(wrong(1.0, 0.5, x), lk::ShapeError);
  auto model = fixture_model();
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const std::vector<double> sigmas{14.6, 3.0, 0.0};
  CHECK_THROWS_AS(lk::EulerAncestral{}(model, load<double>(problem, "x_T"), sigmas, lk::NoNoise{}), lk::Error);
  const std::vector<double> increasing{1.0, 2.0, 0.0};
  CHECK_THROWS_AS(lk::EulerAncestral{}(model, load<double>(problem, "x_T"), increasing, lk::GaussianNoise{}), lk::Error);
}

TEST_CASE("churn draws noise only inside [s_tmin, s_tmax] and raises the evaluated sigma") {
  auto model = fixture_model();
  Recording<lk::GaussianMixtureDenoiser> recording{model};
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const std::vector<double> sigmas{10.0, 5.0, 2.0, 1.0, 0.0};
  lk::Euler euler{.churn = {.s_churn = 1.0, .s_tmin = 1.5, .s_tmax = 8.0}};
  lk::GaussianNoise noise(3);
  euler(recording, load<double>(problem, "x_T"), sigmas, noise);
  CHECK(noise.calls() == 2);  // sigma 5 and sigma 2
  const double gamma = std::min(1.0 / 4.0, std::sqrt(2.0) - 1.0);
  REQUIRE(recording.sigmas.size() == 4);
  CHECK(recording.sigmas[0] == 10.0);
  CHECK(recording.sigmas[1] == Approx(5.0 * (1 + gamma)));
  CHECK(recording.sigmas[2] == Approx(2.0 * (1 + gamma)));
  CHECK(recording.sigmas[3] == 1.0);
}

#if LATENTKIT_HAS_OPENMP
TEST_CASE("a seeded stochastic run on a batch large enough to go parallel is bit-identical with 1, 2 and 3 threads") {
  auto model = fixture_model();
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const xt::xarray<double> x_T = load<double>(problem, "x_T");
  // 512 x 64 = 32768 values: above the mixture's parallel threshold (16384 values) and the Gaussian noise's
  // (2048 pairs), so both the model and the draws run threaded.
  const std::size_t rows = 512, dim = x_T.shape()[1];
  xt::xarray<double> x = xt::xarray<double>::from_shape({rows, dim});
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < dim; ++j) x(i, j) = x_T(i % x_T.shape()[0], j) * (1.0 + 1e-3 * double(i));
  const std::vector<double> sigmas{14.6, 6.0, 2.5, 1.0, 0.3, 0.0};
  const int threads = omp_get_max_threads();
  std::vector<xt::xarray<double>> results;
  for (int n : {1, 2, 3}) {
    omp_set_num_threads(n);
    results.push_back(lk::DPMppSDE{}(model, x, sigmas, lk::GaussianNoise(5)));
  }
  omp_set_num_threads(threads);
  CHECK(max_abs(results[0]) > 0.1);
  CHECK(max_abs_diff(results[0], results[1]) == 0.0);
  CHECK(max_abs_diff(results[0], results[2]) == 0.0);
}
#endif

TEST_CASE("samplers reject a zero sigma before the last one, non-finite sigmas and a negative last sigma") {
  auto model = fixture_model();
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const xt::xarray<double> x_T = load<double>(problem, "x_T");
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::vector<double>& bad : std::vector<std::vector<double>>{
           {1.0, 0.0, 0.0}, {0.0, 0.0}, {inf, 1.0, 0.0}, {2.0, nan, 0.0}, {2.0, 1.0, -0.5}, {2.0, 1.0, nan}}) {
    INFO("sigmas " << bad[0] << ", " << bad[1] << ", " << bad.back());
    CHECK_THROWS_AS(lk::Euler{}(model, x_T, bad, lk::NoNoise{}), lk::Error);
    CHECK_THROWS_AS(lk::EulerAncestral{}(model, x_T, bad, lk::GaussianNoise(1)), lk::Error);
  }
  CHECK_THROWS_WITH(lk::Euler{}(model, x_T, std::vector<double>{1.0, 0.0, 0.0}, lk::NoNoise{}),
                    Catch::Contains("sigma 1") && Catch::Contains("only the last one may be 0"));
  const xt::xarray<double> ok = lk::Euler{}(model, x_T, std::vector<double>{1.0, 0.5, 0.0}, lk::NoNoise{});
  CHECK(std::isfinite(max_abs(ok)));
  const xt::xarray<double> ending_above_zero = lk::Euler{}(model, x_T, std::vector<double>{1.0, 0.5}, lk::NoNoise{});
  CHECK(std::isfinite(max_abs(ending_above_zero)));
}

TEST_CASE("the max-abs test helpers report NaN as a failure instead of skipping it") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const xt::xarray<double> a = {1.0, -2.0, 3.0}, all_nan = {nan, nan, nan}, one_nan = {1.0, nan, 3.0};
  CHECK(max_abs_diff(a, a) == 0.0);
  CHECK(max_abs_diff(a, xt::xarray<double>{1.0, -2.5, 3.0}) == 0.5);
  CHECK_FALSE(max_abs_diff(all_nan, a) <= 1e-9);
  CHECK_FALSE(max_abs_diff(a, one_nan) <= 1e-9);
  CHECK_FALSE(max_abs(all_nan) <= 1e9);
  CHECK_FALSE(max_abs(one_nan) <= 1e9);
  CHECK(max_abs(a) == 3.0);
}

namespace {
/// A text-conditioned stand-in for a UNet: the fixture mixture as an epsilon network (VpNetwork) plus a term that
/// depends on the context, eps(x_t, t, c) = eps_mixture(x_t, t) + c / (1 + t). Counts calls and records batches.
struct ConditionedNetwork {
  lk::VpNetwork<lk::GaussianMixtureDenoiser> vp;
  int calls = 0;
  std::vector<std::size_t> batches{};
  xt::xarray<double> operator()(const xt::xarray<double>& x_t, double t, const xt::xarray<double>& context) {
    ++calls;
    batches.push_back(x_t.shape()[0]);
    return vp(x_t, t) + context / (1.0 + t);
  }
};
}  // namespace

TEST_CASE("a sampler chosen by name runs classifier-free guidance over a conditioned discrete-time network") {
  const auto table = fixture_alphas_cumprod();
  const auto schedule = lk::DiscreteSchedule<double>::from_alphas_cumprod(std::span<const double>(table));
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const xt::xarray<double> z = load<double>(problem, "z");
  const std::size_t batch = z.shape()[0], dim = z.shape()[1];
  xt::xarray<double> uncond = xt::xarray<double>::from_shape({batch, dim}), cond = uncond;
  for (std::size_t i = 0; i < batch; ++i)
    for (std::size_t j = 0; j < dim; ++j) {
      uncond(i, j) = 0.3 * std::sin(double(i * dim + j));
      cond(i, j) = 0.5 * std::cos(0.7 * double(i * dim + j)) + 0.1;
    }
  const double scale = 4.0;
  ConditionedNetwork net{lk::VpNetwork(fixture_model(), table, lk::Prediction::epsilon)};
  lk::DiscreteTimeDenoiser denoiser(net, schedule, lk::Prediction::epsilon, /*quantize=*/true);
  lk::ClassifierFreeGuidance cfg(denoiser, uncond, cond, scale);
  CHECK(&cfg.schedule() == &denoiser.schedule());

  // The hand-computed guided denoiser: D = x - sigma * (eps_u + scale * (eps_c - eps_u)) at the quantized timestep.
  lk::VpNetwork reference(fixture_model(), table, lk::Prediction::epsilon);
  const int steps = 6;
  std::vector<double> visited;
  double worst = 0;
  const xt::xarray<double> out = lk::sample(
      lk::parse_sampler("DPM++ 2M"), cfg, z, steps, lk::NoNoise{},
      [&](std::size_t, double sigma, const xt::xarray<double>& x, const xt::xarray<double>& denoised) {
        visited.push_back(sigma);
        const double t = std::round(schedule.sigma_to_t(sigma));
        const xt::xarray<double> eps = reference(xt::xarray<double>(x / std::sqrt(sigma * sigma + 1.0)), t);
        const xt::xarray<double> eps_u = eps + uncond / (1.0 + t), eps_c = eps + cond / (1.0 + t);
        const xt::xarray<double> expected = x - sigma * (eps_u + scale * (eps_c - eps_u));
        worst = nan_max(worst, max_abs_diff(denoised, expected) / std::max(1.0, max_abs(expected)));
      });
  CHECK(worst <= 1e-12);
  // One batched call of the network per step (DPM++ 2M: one model evaluation per step), on [uncond; cond].
  CHECK(net.calls == steps);
  CHECK(net.batches == std::vector<std::size_t>(steps, 2 * batch));
  // The default schedule is `normal`: the model's training table, reached through cfg.schedule().
  const auto normal = lk::Normal{}.sigmas<double>(steps, schedule);
  REQUIRE(visited.size() == std::size_t(steps));
  for (int i = 0; i < steps; ++i) CHECK(visited[std::size_t(i)] == normal[std::size_t(i)]);
  CHECK(std::isfinite(max_abs(out)));
  CHECK(max_abs_diff(out, xt::xarray<double>(z * normal.front())) > 1.0);
}
