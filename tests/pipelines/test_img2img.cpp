// img2img through the library API against every recorded run: the VAE encoding of the init image, the start
// index of the strength (diffusers' rule, as the run used; A1111's starts one sigma earlier), the noised start
// latent from the seed, every step, the final latent and the image.
#include <catch2/catch.hpp>

#include "pipeline_fixtures.hpp"

using namespace pipeline_test;

namespace {
GenerationOptions recorded_img2img(const SafetensorsFile& run) {
  GenerationOptions o = options_of(run, true);
  o.convention = Img2ImgConvention::diffusers_like;
  o.init_latent = InitLatent::mean;  // the recorded runs take the posterior mean
  return o;
}
}  // namespace

TEST_CASE("img2img reproduces every recorded run: encoding, start sigma, steps, final latent, image") {
  for (const auto& path : runs("img2img_sd1_tiny")) {
    INFO("run " << path.filename().string());
    const SafetensorsFile run(path);
    const StableDiffusionModel& model = model_of(run);
    const GenerationOptions options = recorded_img2img(run);
    const Tensor<float> init = run.load<float>("init_image");
    const Tensor<float> xs = run.load<float>("step_x"), denoised = run.load<float>("step_denoised");
    const Tensor<float> sigmas_used = run.load<float>("sigmas_used");
    Tensor<float> start;
    const ProgressCallback check_step = [&](const StepProgress& p) {
      if (p.step == 0) start = from_latent(*p.x);
      INFO("step " << p.step);
      REQUIRE(static_cast<index_t>(p.step) < xs.size(0));
      CHECK(p.steps == static_cast<std::size_t>(sigmas_used.numel() - 1));
      CHECK(static_cast<float>(p.sigma) == sigmas_used(static_cast<index_t>(p.step)));
      const Tensor<float> x_want = item(xs, static_cast<index_t>(p.step)), d_want = item(denoised, static_cast<index_t>(p.step));
      CHECK(max_abs_diff(from_latent(*p.x).view(), x_want.view()) <= bound(x_want.view()));
      CHECK(max_abs_diff(from_latent(*p.denoised).view(), d_want.view()) <= bound(d_want.view()));
      return true;
    };
    const GenerationResult result = img2img(model, init, options, check_step);
    REQUIRE(result.images.size() == 1);
    // the start latent from the seed: mean * scale + torch.randn(seed) * sigma_start (the mean within the VAE's
    // float32 tolerance, the noise exact)
    const Tensor<float> x_init = run.load<float>("x_init");
    CHECK(max_abs_diff(start.view(), x_init.view()) <= bound(x_init.view()));
    CHECK(result.timings.steps == static_cast<std::size_t>(sigmas_used.numel() - 1));
    const Tensor<float> final_latent = run.load<float>("final_latent");
    CHECK(max_abs_diff(result.images[0].latent.view(), final_latent.view()) <= bound(final_latent.view()));
    const Tensor<float> raw = run.load<float>("image_raw");
    CHECK(max_abs_diff(result.images[0].decoded.view(), raw.view()) <= bound(raw.view()));
    const int diff = max_pixel_diff(result.images[0].image, recorded_image(run));
    CHECK(diff >= 0);
    CHECK(diff <= 1);
    REQUIRE(result.images[0].parameters.denoising_strength.has_value());
    CHECK(*result.images[0].parameters.denoising_strength == options.strength);
  }
}

/// The first sigma and the step count an img2img run with `options` starts with (the run is cancelled there).
std::pair<double, std::size_t> start_of(const StableDiffusionModel& model, const Tensor<float>& init, const GenerationOptions& options) {
  std::pair<double, std::size_t> start{-1.0, 0};
  CHECK_THROWS_AS(img2img(model, init, options, [&](const StepProgress& p) {
                    start = {p.sigma, p.steps};
                    return false;
                  }),
                  GenerationCancelled);
  return start;
}

TEST_CASE("img2img: A1111's convention starts one sigma before diffusers'; strength 1 starts at sigma_max") {
  for (const auto& path : runs("img2img_sd1_tiny")) {
    INFO("run " << path.filename().string());
    const SafetensorsFile run(path);
    const StableDiffusionModel& model = model_of(run);
    const Tensor<float> init = run.load<float>("init_image"), full = run.load<float>("sigmas_full");
    const index_t start = std::stol(run.metadata().at("start_index"));
    const index_t steps = full.numel() - 1;
    GenerationOptions options = recorded_img2img(run);
    const auto diffusers = start_of(model, init, options);
    CHECK(static_cast<float>(diffusers.first) == full(start));
    CHECK(diffusers.second == static_cast<std::size_t>(steps - start));
    if (start >= 1) {
      options.convention = Img2ImgConvention::a1111;
      const auto a1111 = start_of(model, init, options);
      CHECK(static_cast<float>(a1111.first) == full(start - 1));
      CHECK(a1111.second == static_cast<std::size_t>(steps - start + 1));
    }
    options.strength = 1.0;
    options.convention = Img2ImgConvention::diffusers_like;
    const auto pure = start_of(model, init, options);
    CHECK(static_cast<float>(pure.first) == full(0));
    CHECK(pure.second == static_cast<std::size_t>(steps));
  }
}

TEST_CASE("img2img: strength 0 returns the image unchanged without a step") {
  const SafetensorsFile run(runs("img2img_sd1_tiny").front());
  const StableDiffusionModel& model = model_of(run);
  GenerationOptions options = recorded_img2img(run);
  options.strength = 0.0;
  const Tensor<float> init = run.load<float>("init_image");
  for (auto convention : {Img2ImgConvention::a1111, Img2ImgConvention::diffusers_like}) {
    options.convention = convention;
    const GenerationResult r = img2img(model, init, options, [](const StepProgress&) -> bool { throw Error("a step ran"); });
    CHECK(r.timings.steps == 0);
    CHECK(r.timings.unet_calls == 0);
    CHECK(bit_identical(r.images[0].decoded, init));
  }
}

TEST_CASE("img2img: a sampled start latent is reproducible from the seed and differs from the mean") {
  const SafetensorsFile run(runs("img2img_sd1_tiny").front());
  const StableDiffusionModel& model = model_of(run);
  GenerationOptions options = recorded_img2img(run);
  options.steps = 4;
  const Tensor<float> init = run.load<float>("init_image");
  const GenerationResult mean = img2img(model, init, options);
  options.init_latent = InitLatent::sample;
  const GenerationResult a = img2img(model, init, options), b = img2img(model, init, options);
  CHECK(bit_identical(a.images[0].latent, b.images[0].latent));
  CHECK_FALSE(bit_identical(a.images[0].latent, mean.images[0].latent));
}

TEST_CASE("img2img: an init image of another size or a strength outside [0, 1] is refused") {
  const SafetensorsFile run(runs("img2img_sd1_tiny").front());
  const StableDiffusionModel& model = model_of(run);
  GenerationOptions options = recorded_img2img(run);
  const Tensor<float> init = run.load<float>("init_image");
  GenerationOptions other = options;
  other.width += 8;
  CHECK_THROWS_AS(img2img(model, init, other), ShapeError);
  other = options;
  other.strength = 1.5;
  CHECK_THROWS_WITH(img2img(model, init, other), Catch::Contains("strength"));
}
