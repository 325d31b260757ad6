// txt2img through the library API, checked against every recorded run (CompVis UNet/VAE + k-diffusion
// DPM++(2M) Karras + CFG, seeds from torch.manual_seed): the start noise from the seed, the latent entering every
// step, every step's guided prediction, the final latent, the decoded image and the 8-bit PNG pixels.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <optional>

#include "pipeline_fixtures.hpp"

using namespace pipeline_test;

TEST_CASE("txt2img reproduces every recorded run step by step, from the seed to the pixels") {
  for (const auto& path : runs("txt2img_sd1_tiny")) {
    INFO("run " << path.filename().string());
    const SafetensorsFile run(path);
    const StableDiffusionModel& model = model_of(run);
    const GenerationOptions options = options_of(run, false);
    const Tensor<float> xs = run.load<float>("step_x"), denoised = run.load<float>("step_denoised");
    const Tensor<float> sigmas = run.load<float>("step_sigma");
    std::size_t calls = 0;
    Tensor<float> start;
    const ProgressCallback check_step = [&](const StepProgress& p) {
      if (p.step == 0) start = from_latent(*p.x);
      INFO("step " << p.step);
      REQUIRE(static_cast<index_t>(p.step) < xs.size(0));
      CHECK(p.steps == static_cast<std::size_t>(xs.size(0)));
      CHECK(static_cast<float>(p.sigma) == sigmas(static_cast<index_t>(p.step)));
      const Tensor<float> x_want = item(xs, static_cast<index_t>(p.step)), d_want = item(denoised, static_cast<index_t>(p.step));
      CHECK(max_abs_diff(from_latent(*p.x).view(), x_want.view()) <= bound(x_want.view()));
      CHECK(max_abs_diff(from_latent(*p.denoised).view(), d_want.view()) <= bound(d_want.view()));
      ++calls;
      return true;
    };
    const GenerationResult result = txt2img(model, options, check_step);
    CHECK(calls == static_cast<std::size_t>(xs.size(0)));
    REQUIRE(result.images.size() == 1);
    const GeneratedImage& image = result.images.front();
    // the seed alone gives the recorded start latent exactly: torch.randn(seed) * sigmas[0]
    const Tensor<float> x_init = run.load<float>("x_init");
    CHECK(bit_identical(start, x_init));
    const Tensor<float> final_latent = run.load<float>("final_latent");
    CHECK(max_abs_diff(image.latent.view(), final_latent.view()) <= bound(final_latent.view()));
    const Tensor<float> raw = run.load<float>("image_raw");
    CHECK(max_abs_diff(image.decoded.view(), raw.view()) <= bound(raw.view()));
    CHECK(max_pixel_diff(image.image, recorded_image(run)) <= 1);
    CHECK(max_pixel_diff(image.image, recorded_image(run)) >= 0);
    CHECK(image.seed == options.seed);
    CHECK(image.parameters.prompt == options.prompt);
    CHECK(image.parameters.sampler == "DPM++ 2M");
    CHECK(image.parameters.schedule == "Karras");
    CHECK(result.timings.steps == static_cast<std::size_t>(xs.size(0)));
    CHECK(result.timings.unet_calls == static_cast<std::size_t>(xs.size(0)));
  }
}

TEST_CASE("txt2img: the compile-time sampler gives the run-time one's result bit for bit") {
  const SafetensorsFile run(runs("txt2img_sd1_tiny").front());
  const StableDiffusionModel& model = model_of(run);
  GenerationOptions options = options_of(run, false);
  options.steps = 3;
  const GenerationResult by_name = txt2img(model, options);
  const GenerationResult by_type = txt2img(model, options, Sampler<DPMpp2M, Karras>{});
  CHECK(bit_identical(by_name.images[0].latent, by_type.images[0].latent));
  CHECK(by_type.images[0].parameters.sampler == "DPM++ 2M");
}

TEST_CASE("txt2img: the same seed gives bit-identical images for 1, 2 and 3 threads and across runs") {
  const SafetensorsFile run(runs("txt2img_sd1_tiny").front());
  const StableDiffusionModel& model = model_of(run);
  GenerationOptions options = options_of(run, false);
  options.steps = 3;
  options.sampler = "euler_a";  // stochastic: the per-step noise must be reproducible too
  std::vector<GenerationResult> results;
  for (int threads : {1, 2, 3, 2}) {
    ThreadScope scope(threads);
    results.push_back(txt2img(model, options));
  }
  for (std::size_t k = 1; k < results.size(); ++k) {
    INFO("run " << k);
    CHECK(bit_identical(results[0].images[0].latent, results[k].images[0].latent));
    CHECK(results[0].images[0].image.pixels == results[k].images[0].image.pixels);
  }
}

TEST_CASE("txt2img: a batch gives the images of single runs with seed, seed + 1, ...") {
  const SafetensorsFile run(runs("txt2img_sd1_tiny").front());
  const StableDiffusionModel& model = model_of(run);
  GenerationOptions options = options_of(run, false);
  options.steps = 2;
  options.sampler = "euler_a";
  GenerationOptions batched = options;
  batched.batch_size = 2;
  batched.batch_count = 2;
  const GenerationResult many = txt2img(model, batched);
  REQUIRE(many.images.size() == 4);
  for (std::size_t k = 0; k < many.images.size(); ++k) {
    INFO("image " << k);
    GenerationOptions single = options;
    single.seed = options.seed + k;
    const GenerationResult one = txt2img(model, single);
    CHECK(many.images[k].seed == single.seed);
    const Tensor<float>& want = one.images[0].latent;
    CHECK(max_abs_diff(many.images[k].latent.view(), want.view()) <= 1e-5 * std::max(1.0, max_abs(want.view())));
  }
}

TEST_CASE("txt2img: the progress callback cancels a run") {
  const SafetensorsFile run(runs("txt2img_sd1_tiny").front());
  const StableDiffusionModel& model = model_of(run);
  GenerationOptions options = options_of(run, false);
  std::size_t seen = 0;
  CHECK_THROWS_AS(txt2img(model, options, [&](const StepProgress& p) { return ++seen, p.step < 1; }), GenerationCancelled);
  CHECK(seen == 2);
}

TEST_CASE("txt2img: bad options are refused with a clear error before any work") {
  const SafetensorsFile run(runs("txt2img_sd1_tiny").front());
  const StableDiffusionModel& model = model_of(run);
  const GenerationOptions good = options_of(run, false);
  auto with = [&](auto change) {
    GenerationOptions o = good;
    change(o);
    return o;
  };
  CHECK_THROWS_WITH(txt2img(model, with([](auto& o) { o.width = 100; })), Catch::Contains("multiples of 8"));
  CHECK_THROWS_WITH(txt2img(model, with([](auto& o) { o.steps = 0; })), Catch::Contains("steps"));
  CHECK_THROWS_AS(txt2img(model, with([](auto& o) { o.sampler = "no such sampler"; })), UnknownNameError);
  CHECK_THROWS_AS(txt2img(model, with([](auto& o) { o.schedule = "no such schedule"; })), UnknownNameError);
  CHECK_THROWS_WITH(txt2img(model, with([](auto& o) { o.eta = 0.5; })), Catch::Contains("has no eta"));
  CHECK_THROWS_WITH(txt2img(model, with([](auto& o) { o.taesd_decode = true; })), Catch::Contains("TAESD"));
}

TEST_CASE("load_stable_diffusion names what is wrong with a model path or its tokenizer") {
  CHECK_THROWS_WITH(load_stable_diffusion("/nonexistent/model.safetensors"), Catch::Contains("/nonexistent/model.safetensors"));
  // a safetensors file that is not an SD checkpoint
  CHECK_THROWS_WITH(load_stable_diffusion(latentkit_test::fixture("models/vae_tiny_io.safetensors")),
                    Catch::Contains("not a Stable Diffusion checkpoint"));
  latentkit_test::TempDir dir("lk_tokenizer");
  ModelLoadOptions options;
  options.tokenizer = dir.path / "missing_vocab.json";
  CHECK_THROWS(load_stable_diffusion(latentkit_test::fixture("models/sd1_tiny_pipeline.safetensors"), options));
}

TEST_CASE("find_tokenizer_for looks beside the model first and lists every place it looked") {
  namespace fs = std::filesystem;
  latentkit_test::TempDir dir("lk_find_tokenizer");
  const fs::path model = dir.path / "model.safetensors";
  { std::ofstream(model) << "x"; }
  // nothing beside the model, nothing on the search path: the error names the model's folder
  struct Env {
    std::string name;
    std::optional<std::string> saved;
    Env(std::string n, const std::string& value) : name(std::move(n)) {
      if (const char* v = std::getenv(name.c_str())) saved = v;
      ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~Env() { saved ? ::setenv(name.c_str(), saved->c_str(), 1) : ::unsetenv(name.c_str()); }
  };
  const Env tokenizer("LATENTKIT_TOKENIZER", (dir.path / "no_such_vocab").string());
  const Env cache("XDG_CACHE_HOME", (dir.path / "cache").string());
  if (!fs::exists("/usr/local/share/latentkit") && !fs::exists("/usr/share/latentkit"))
    CHECK_THROWS_WITH(find_tokenizer_for(model), Catch::Contains(dir.path.string()) && Catch::Contains("--tokenizer"));
  // a Hugging Face tokenizer/ folder beside the model is found
  fs::create_directories(dir.path / "tokenizer");
  fs::copy_file(tokenizer_dir() / "vocab.json", dir.path / "tokenizer" / "vocab.json");
  fs::copy_file(tokenizer_dir() / "merges.txt", dir.path / "tokenizer" / "merges.txt");
  CHECK(find_tokenizer_for(model) == dir.path / "tokenizer" / "vocab.json");
}
