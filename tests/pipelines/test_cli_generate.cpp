// `latentkit txt2img` / `latentkit img2img` end to end: the command line a user types, built from each recorded
// run's metadata (prompt, seed, steps, size), must write a PNG within +-1 per channel of the recorded image, with
// the generation parameters embedded; bad input gives one message, a non-zero exit and no output file.
#include <catch2/catch.hpp>

#include <fstream>

#include "latentkit/io/png_text.hpp"
#include "latentkit/io/png_writer.hpp"
#include "pipeline_fixtures.hpp"
#include "support/cli.hpp"

#ifdef LATENTKIT_CLI_PATH
using namespace pipeline_test;

namespace {

using latentkit_test::CliRun;
using latentkit_test::quoted;

CliRun run_cli(const std::string& args, const latentkit_test::TempDir& dir) {
  return latentkit_test::run_program(LATENTKIT_CLI_PATH, args, dir);
}

std::string common_args(const SafetensorsFile& run, const GenerationOptions& o) {
  const auto weights = run.path().parent_path() / run.metadata().at("weights");
  return "-m " + quoted(weights.string()) + " --tokenizer " + quoted(tokenizer_dir().string()) + " -p " + quoted(o.prompt) +
         " -n " + quoted(o.negative_prompt) + " --cfg-scale " + std::to_string(o.cfg_scale) + " --steps " +
         std::to_string(o.steps) + " -s " + std::to_string(o.seed) + " --sampler dpm++2m --schedule karras -W " +
         std::to_string(o.width) + " -H " + std::to_string(o.height);
}

std::string parameters_of(const std::filesystem::path& png) {
  for (const auto& [key, value] : read_png_text(png))
    if (key == "parameters") return value;
  return {};
}

}  // namespace

TEST_CASE("latentkit txt2img reproduces every recorded run's PNG within 1 per channel") {
  for (const auto& path : runs("txt2img_sd1_tiny")) {
    INFO("run " << path.filename().string());
    const SafetensorsFile run(path);
    const GenerationOptions o = options_of(run, false);
    latentkit_test::TempDir dir("lk_cli_txt2img");
    const auto out = dir.path / "out.png";
    const CliRun r = run_cli("txt2img " + common_args(run, o) + " -o " + quoted(out.string()), dir);
    INFO(r.output);
    REQUIRE(r.status == 0);
    const Image got = read_image(out);
    const int diff = max_pixel_diff(got, recorded_image(run));
    CHECK(diff >= 0);
    CHECK(diff <= 1);
    const GenerationParameters p = parse_a1111_parameters(parameters_of(out));
    CHECK(p.prompt == o.prompt);
    CHECK(p.seed == static_cast<std::int64_t>(o.seed));
    CHECK(p.steps == o.steps);
    CHECK(p.width == o.width);
    CHECK(p.height == o.height);
    CHECK(p.sampler == "DPM++ 2M");
    CHECK(p.schedule == "Karras");
    CHECK(p.model_hash.size() == 10);
  }
}

// The recorded img2img runs start from a float image that no 8-bit file holds exactly (its _init.png is that image
// rounded, up to 1/255 away), so the program is checked against the library on the PNG a user would pass, and the
// library against the recorded float run (test_img2img.cpp).
TEST_CASE("latentkit img2img on a run's init PNG gives the library's img2img of that PNG, pixel for pixel") {
  for (const auto& path : runs("img2img_sd1_tiny")) {
    INFO("run " << path.filename().string());
    const SafetensorsFile run(path);
    const auto init_png = path.parent_path() / (path.stem().string() + "_init.png");
    REQUIRE(std::filesystem::exists(init_png));
    GenerationOptions o = options_of(run, true);
    o.convention = Img2ImgConvention::diffusers_like;
    o.init_latent = InitLatent::mean;
    latentkit_test::TempDir dir("lk_cli_img2img");
    const auto out = dir.path / "out.png";
    const CliRun r = run_cli("img2img " + common_args(run, o) + " -i " + quoted(init_png.string()) + " --strength " +
                                 std::to_string(o.strength) + " --img2img-convention diffusers --init-latent mean -o " +
                                 quoted(out.string()) + " --no-model-hash",
                             dir);
    INFO(r.output);
    REQUIRE(r.status == 0);
    const GenerationResult want = img2img(model_of(run), read_image(init_png), o);
    CHECK(max_pixel_diff(read_image(out), want.images[0].image) == 0);
    const GenerationParameters p = parse_a1111_parameters(parameters_of(out));
    REQUIRE(p.denoising_strength.has_value());
    CHECK(*p.denoising_strength == Approx(o.strength));
    CHECK(p.model_hash.empty());
  }
}

TEST_CASE("latentkit txt2img / img2img: bad input gives one clear message, a non-zero exit and no output file") {
  const SafetensorsFile run(runs("txt2img_sd1_tiny").front());
  GenerationOptions o = options_of(run, false);
  o.steps = 1;
  const std::string good = common_args(run, o);
  latentkit_test::TempDir dir("lk_cli_bad");
  const auto out = dir.path / "out.png";
  const auto garbage = dir.path / "garbage.png";
  { std::ofstream(garbage) << "not an image at all"; }
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases{
      {"txt2img -m /nonexistent.safetensors -p x", "/nonexistent.safetensors"},
      {"txt2img -m " + quoted(latentkit_test::fixture("models/vae_tiny_io.safetensors").string()) + " --tokenizer " +
           quoted(tokenizer_dir().string()) + " -p x",
       "not a Stable Diffusion checkpoint"},
      {"txt2img " + good + " -W 100", "multiples of 8"},
      {"txt2img " + good + " --sampler warp-drive", "warp-drive"},
      {"txt2img " + good + " --schedule sideways", "sideways"},
      {"txt2img " + good + " --rng quantum", "quantum"},
      {"txt2img " + good + " --no-such-flag", "--no-such-flag"},
      {"txt2img -p x", "--model"},
      {"img2img " + good + " -i " + quoted(garbage.string()), "garbage.png"},
      {"img2img " + good + " -i " + quoted(garbage.string()) + " --strength 1.5", "strength"},
      {"img2img " + good + " -i /nonexistent.png", "/nonexistent.png"},
  };
  for (const auto& c : cases) {
    INFO(c.args);
    const CliRun r = run_cli(c.args + " -o " + quoted(out.string()), dir);
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK(r.output.find(c.expect) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
  }
}

TEST_CASE("latentkit txt2img --help and img2img --help describe the flags") {
  latentkit_test::TempDir dir("lk_cli_help");
  for (const char* command : {"txt2img", "img2img"}) {
    const CliRun r = run_cli(std::string(command) + " --help", dir);
    CHECK(r.status == 0);
    CHECK(r.output.find("--cfg-scale") != std::string::npos);
    CHECK(r.output.find("--sampler") != std::string::npos);
  }
}

TEST_CASE("encode and tokenize take txt2img's flag names, and the old spellings as aliases") {
  const SafetensorsFile run(runs("txt2img_sd1_tiny").front());
  const GenerationOptions o = options_of(run, false);
  const auto weights = run.path().parent_path() / run.metadata().at("weights");
  latentkit_test::TempDir dir("lk_cli_flags");
  const CliRun now = run_cli("encode -m " + quoted(weights.string()) + " --tokenizer " + quoted(tokenizer_dir().string()) +
                                 " -n " + quoted("blurry") + " -p " + quoted(o.prompt), dir);
  const CliRun old = run_cli("encode --checkpoint " + quoted(weights.string()) + " --vocab " + quoted(tokenizer_dir().string()) +
                                 " --negative " + quoted("blurry") + " " + quoted(o.prompt), dir);
  INFO(now.output);
  CHECK(now.status == 0);
  CHECK(old.status == 0);
  CHECK(now.output == old.output);
  const CliRun tok_now = run_cli("tokenize --tokenizer " + quoted(tokenizer_dir().string()) + " " + quoted(o.prompt), dir);
  const CliRun tok_old = run_cli("tokenize --vocab " + quoted(tokenizer_dir().string()) + " " + quoted(o.prompt), dir);
  CHECK(tok_now.status == 0);
  CHECK(tok_now.output == tok_old.output);
}

TEST_CASE("latentkit txt2img: batch count names the files and seeds; --vae-tiling, --taesd, --preview") {
  const SafetensorsFile run(runs("txt2img_sd1_tiny").front());
  GenerationOptions o = options_of(run, false);
  o.steps = 2;
  const std::string args = "txt2img " + common_args(run, o) + " --no-model-hash";
  latentkit_test::TempDir dir("lk_cli_options");
  const auto plain = dir.path / "plain.png";
  CliRun r = run_cli(args + " -b 2 -o " + quoted(plain.string()), dir);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto second = dir.path / "plain_1.png";
  REQUIRE(std::filesystem::exists(second));
  CHECK(parse_a1111_parameters(parameters_of(plain)).seed == static_cast<std::int64_t>(o.seed));
  CHECK(parse_a1111_parameters(parameters_of(second)).seed == static_cast<std::int64_t>(o.seed + 1));
  // the seed + 1 image equals a single run with that seed
  const auto single = dir.path / "single.png";
  GenerationOptions next = o;
  next.seed = o.seed + 1;
  REQUIRE(run_cli("txt2img " + common_args(run, next) + " --no-model-hash -o " + quoted(single.string()), dir).status == 0);
  CHECK(max_pixel_diff(read_image(single), read_image(second)) == 0);
  // tiles of 64 latent pixels cover these small latents in one tile: the same image
  const auto tiled = dir.path / "tiled.png";
  REQUIRE(run_cli(args + " --vae-tiling -o " + quoted(tiled.string()), dir).status == 0);
  CHECK(max_pixel_diff(read_image(tiled), read_image(plain)) == 0);
  // a TAESD decode and per-step previews through it
  const auto taesd = latentkit_test::fixture("models/taesd_random_decoder.safetensors");
  const auto fast = dir.path / "taesd.png", preview = dir.path / "preview.png";
  r = run_cli(args + " --taesd " + quoted(taesd.string()) + " --taesd-decode --preview " + quoted(preview.string()) + " -o " +
                  quoted(fast.string()),
              dir);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(read_image(fast).width == o.width);
  CHECK(read_image(preview).width == o.width);
  // without TAESD the preview is the cheap latent projection at latent resolution
  r = run_cli(args + " --preview " + quoted(preview.string()) + " -o " + quoted(fast.string()), dir);
  REQUIRE(r.status == 0);
  CHECK(read_image(preview).width == o.width / 8);
}

#endif  // LATENTKIT_CLI_PATH
