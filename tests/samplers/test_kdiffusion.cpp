// Every k-diffusion reference run (kdiff_*.safetensors): replayed noise, every step, double and float32.
#include <filesystem>

#include "latentkit/samplers/registry.hpp"
#include "support.hpp"

using namespace samplers_test;

namespace {

std::vector<std::filesystem::path> kdiff_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(latentkit_test::fixtures_dir() / "samplers")) {
    const auto name = e.path().filename().string();
    if (name.starts_with("kdiff_") && name.ends_with(".safetensors")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

template <class T>
void check_run(const lk::SafetensorsFile& f, const std::string& sampler, const std::string& run, double atol) {
  INFO("sampler " << sampler << ", run " << run << ", " << (sizeof(T) == 8 ? "double" : "float32"));
  auto model = fixture_model();
  Recording<lk::GaussianMixtureDenoiser> recording{model};
  lk::SafetensorsFile problem(latentkit_test::fixture("samplers/problem.safetensors"));
  const xt::xarray<T> x_T = load<T>(problem, "x_T");
  const std::vector<double> sigmas = load_vector(f, run + ".sigmas");

  std::vector<xt::xarray<T>> draws;
  if (f.contains(run + ".noise")) {
    const auto noise = load<T>(f, run + ".noise");
    for (std::size_t k = 0; k < noise.shape()[0]; ++k) draws.push_back(row(noise, k));
  }
  lk::ReplayNoise<xt::xarray<T>> replay(draws);
  std::vector<xt::xarray<T>> steps_x, steps_denoised;
  std::vector<double> steps_sigma;
  const auto step = lk::make_step(lk::parse_sampler(sampler).sampler);
  const xt::xarray<T> x_final =
      lk::run_steps(step, recording, x_T, sigmas, replay, [&](std::size_t, double sigma, const auto& x, const auto& d) {
        steps_sigma.push_back(sigma);
        steps_x.push_back(x);
        steps_denoised.push_back(d);
      });

  const auto ref_final = load<double>(f, run + ".x_final");
  // The README: in double atol 1e-9, except 3M SDE on `normal` sigmas (it amplifies to |x| ~ 13), which is
  // relative to max|x|; karras runs of 3M SDE keep the absolute tolerance. In float32 every run may use rtol 1e-4
  // of max|x|.
  const bool relative = sizeof(T) == 4 || (sampler == "dpmpp_3m_sde" && run.starts_with("normal."));
  const double scale = relative ? std::max(1.0, max_abs(ref_final)) : 1.0;
  CHECK(max_abs_diff(x_final, ref_final) <= atol * scale);

  const auto ref_x = load<double>(f, run + ".steps_x");
  const auto ref_d = load<double>(f, run + ".steps_denoised");
  const auto ref_sigma = load_vector(f, run + ".steps_sigma");
  REQUIRE(steps_x.size() == ref_x.shape()[0]);
  for (std::size_t i = 0; i < steps_x.size(); ++i) {
    INFO("step " << i);
    CHECK(steps_sigma[i] == ref_sigma[i]);
    CHECK(max_abs_diff(steps_x[i], row(ref_x, i)) <= atol * scale);
    CHECK(max_abs_diff(steps_denoised[i], row(ref_d, i)) <= atol * scale);
  }
  const auto ref_calls = load_vector(f, run + ".model_call_sigmas");
  REQUIRE(recording.sigmas.size() == ref_calls.size());
  for (std::size_t k = 0; k < ref_calls.size(); ++k) CHECK(recording.sigmas[k] == Approx(ref_calls[k]).epsilon(1e-12));
  CHECK(replay.used() == draws.size());
  if (f.contains(run + ".noise_call_sigmas")) {
    const auto calls = load<double>(f, run + ".noise_call_sigmas");
    REQUIRE(replay.calls().size() == calls.shape()[0]);
    for (std::size_t k = 0; k < replay.calls().size(); ++k) {
      CHECK(replay.calls()[k].first == Approx(calls(k, 0)).epsilon(1e-12));
      CHECK(replay.calls()[k].second == Approx(calls(k, 1)).epsilon(1e-12));
    }
  }
}

}  // namespace

TEST_CASE("every k-diffusion sampler reproduces every recorded run in double and in float32") {
  const auto files = kdiff_files();
  REQUIRE(files.size() >= 12);
  for (const auto& path : files) {
    lk::SafetensorsFile f(path);
    const std::string stem = path.stem().string();
    const std::string sampler = stem.substr(std::string("kdiff_").size());
    const auto all_runs = runs(f);
    REQUIRE(!all_runs.empty());
    for (const auto& run : all_runs) {
      check_run<double>(f, sampler, run, 1e-9);
      check_run<float>(f, sampler, run, 1e-4);
    }
  }
}

TEST_CASE("LMS coefficients from exact polynomial integration match the recorded ones") {
  lk::SafetensorsFile f(latentkit_test::fixture("samplers/kdiff_lms.safetensors"));
  for (const auto& run : runs(f)) {
    INFO("run " << run);
    const auto sigmas = load_vector(f, run + ".sigmas");
    const auto coeffs = load<double>(f, run + ".lms_coeffs");
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const int order = static_cast<int>(std::min<std::size_t>(i + 1, 4));
      for (int j = 0; j < 4; ++j) {
        const double expected = coeffs(i, static_cast<std::size_t>(j));
        if (j >= order) {
          CHECK(expected == 0.0);
          continue;
        }
        CHECK(lk::lms_coefficient(order, sigmas, i, j) == Approx(expected).epsilon(1e-12).margin(1e-14));
      }
    }
  }
}
