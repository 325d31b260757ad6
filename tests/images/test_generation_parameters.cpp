// AUTOMATIC1111's infotext: the exact text create_infotext writes (key order, omitted defaults, quoting, numbers),
// infotexts as the web UI writes them parsed like parse_generation_parameters, and round trips of awkward values.
// Also the hidden test that writes the PNGs the CLI tests inspect.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "image_test_support.hpp"
#include "latentkit/io/png_writer.hpp"
#include "latentkit/pipelines/generation_parameters.hpp"
#include "support/cli.hpp"

using namespace latentkit;

namespace {

GenerationParameters example() {
  GenerationParameters p;
  p.prompt = "a photograph of an astronaut riding a horse";
  p.negative_prompt = "blurry, lowres";
  p.steps = 20;
  p.sampler = "DPM++ 2M";
  p.schedule = "Karras";
  p.cfg_scale = 7.5;
  p.seed = 42;
  p.width = 512;
  p.height = 768;
  p.model_hash = "6ce0161689";
  p.model_name = "v1-5-pruned-emaonly";
  p.denoising_strength = 0.6;
  p.clip_skip = 2;
  p.rng = "CPU";
  return p;
}

void check_same(const GenerationParameters& a, const GenerationParameters& b) {
  CHECK(a.prompt == b.prompt);
  CHECK(a.negative_prompt == b.negative_prompt);
  CHECK(a.steps == b.steps);
  CHECK(a.sampler == b.sampler);
  CHECK(a.schedule == b.schedule);
  CHECK(a.cfg_scale == b.cfg_scale);
  CHECK(a.seed == b.seed);
  CHECK(a.width == b.width);
  CHECK(a.height == b.height);
  CHECK(a.model_hash == b.model_hash);
  CHECK(a.model_name == b.model_name);
  CHECK(a.denoising_strength == b.denoising_strength);
  CHECK(a.clip_skip == b.clip_skip);
  CHECK(a.rng == b.rng);
  CHECK(a.version == b.version);
  CHECK(a.extra == b.extra);
}

}  // namespace

TEST_CASE("the infotext is written in create_infotext's order, with A1111's key names", "[parameters]") {
  CHECK(format_a1111_parameters(example()) ==
        "a photograph of an astronaut riding a horse\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 512x768, "
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.6, Clip skip: 2, RNG: CPU, "
        "Version: latentkit 0.1.0");
  CHECK(std::string(latentkit_version_label) == "latentkit " + std::to_string(LATENTKIT_VERSION_MAJOR) + "." +
                                                    std::to_string(LATENTKIT_VERSION_MINOR) + "." +
                                                    std::to_string(LATENTKIT_VERSION_PATCH));
}

TEST_CASE("defaults are left out as A1111 leaves them out: clip skip 1, the GPU noise source, no negative prompt", "[parameters]") {
  GenerationParameters p;
  p.prompt = "cat";
  p.sampler = "Euler a";
  p.seed = 1;
  p.rng = "GPU";
  p.version.clear();
  CHECK(format_a1111_parameters(p) == "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512");
  p.prompt.clear();
  CHECK(format_a1111_parameters(p) == "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512");
}

TEST_CASE("values with commas, colons or newlines are JSON-quoted as A1111's quote does; extras go before Version", "[parameters]") {
  GenerationParameters p = example();
  p.negative_prompt.clear();
  p.denoising_strength.reset();
  p.clip_skip = 1;
  p.rng.clear();
  p.model_name = "my model, v2: \"final\"";
  p.extra = {{"Lora hashes", "add_detail: 7c6bad76eb54, more: 0123456789ab"},
             {"Hires upscale", "2"},
             {"TI", "caf\xC3\xA9\nline\ttab\x01"}};
  CHECK(format_a1111_parameters(p) ==
        "a photograph of an astronaut riding a horse\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 512x768, "
        "Model hash: 6ce0161689, Model: \"my model, v2: \\\"final\\\"\", "
        "Lora hashes: \"add_detail: 7c6bad76eb54, more: 0123456789ab\", Hires upscale: 2, "
        "TI: \"caf\xC3\xA9\\nline\\ttab\\u0001\", Version: latentkit 0.1.0");
}

TEST_CASE("numbers are written as Python's repr writes them, integral ones without .0", "[parameters]") {
  const std::pair<double, const char*> cases[] = {{7.0, "7"},       {7.5, "7.5"},         {0.6, "0.6"},   {0.75, "0.75"},
                                                  {1.0, "1"},       {12.25, "12.25"},     {0.1, "0.1"},   {1e-05, "1e-05"},
                                                  {0.0001, "0.0001"}, {1e16, "1e+16"},     {123.456, "123.456"}};
  for (const auto& [x, text] : cases) {
    INFO(x);
    CHECK(detail::a1111_number(x) == text);
  }
}

TEST_CASE("an infotext as the web UI writes it is read like parse_generation_parameters", "[parameters]") {
  const std::string text =
      "masterpiece, best quality, (a cat:1.2) sitting on a chair\n"
      "in a garden\n"
      "Negative prompt: lowres, bad anatomy\n"
      "extra negative line\n"
      "Steps: 28, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 3468597417, Size: 512x768, "
      "Model hash: 45dee52b, Model: anything-v3, Denoising strength: 0.7, Clip skip: 2, ENSD: 31337, "
      "Hires upscale: 2, Hires upscaler: Latent, Lora hashes: \"add_detail: 7c6bad76eb54\", "
      "TI hashes: \"easynegative: c74b4e810b03\", Version: v1.10.1";
  const GenerationParameters p = parse_a1111_parameters(text);
  CHECK(p.prompt == "masterpiece, best quality, (a cat:1.2) sitting on a chair\nin a garden");
  CHECK(p.negative_prompt == "lowres, bad anatomy\nextra negative line");
  CHECK(p.steps == 28);
  CHECK(p.sampler == "Euler a");
  CHECK(p.schedule == "Automatic");
  CHECK(p.cfg_scale == 7.0);
  CHECK(p.seed == 3468597417);
  CHECK(p.width == 512);
  CHECK(p.height == 768);
  CHECK(p.model_hash == "45dee52b");
  CHECK(p.model_name == "anything-v3");
  CHECK(p.denoising_strength == 0.7);
  CHECK(p.clip_skip == 2);
  CHECK(p.rng.empty());
  CHECK(p.version == "v1.10.1");
  CHECK(p.extra == std::vector<std::pair<std::string, std::string>>{{"ENSD", "31337"},
                                                                     {"Hires upscale", "2"},
                                                                     {"Hires upscaler", "Latent"},
                                                                     {"Lora hashes", "add_detail: 7c6bad76eb54"},
                                                                     {"TI hashes", "easynegative: c74b4e810b03"}});
}

TEST_CASE("missing keys keep A1111's defaults; a last line with fewer than 3 parameters is prompt", "[parameters]") {
  const GenerationParameters p = parse_a1111_parameters("just a prompt, with: one colon\nSteps: 5, Seed: 3");
  CHECK(p.prompt == "just a prompt, with: one colon\nSteps: 5, Seed: 3");
  CHECK(p.steps == 20);
  CHECK(p.seed == -1);
  CHECK(p.clip_skip == 1);
  CHECK(p.version.empty());
  CHECK_FALSE(p.denoising_strength);
  const GenerationParameters q = parse_a1111_parameters("  \n Steps: 5, Seed: 3, Size: 64x32  \n ");
  CHECK(q.prompt.empty());
  CHECK(q.steps == 5);
  CHECK(q.width == 64);
  CHECK(q.height == 32);
  const GenerationParameters r = parse_a1111_parameters("Negative prompt: only this\nSteps: 1, Seed: 2, Sampler: DDIM");
  CHECK(r.prompt.empty());
  CHECK(r.negative_prompt == "only this");
  CHECK(r.sampler == "DDIM");
  CHECK(parse_a1111_parameters("").prompt.empty());
}

TEST_CASE("the reading regex's corners behave as in Python", "[parameters]") {
  // A quoted value needs a comma or the end after its closing quote; otherwise it is read up to the next comma.
  // An empty value is dropped (A1111's v[0] test fails on it); a repeated key keeps its place and its last value.
  // (Expected values checked against Python's re and json on the same text.)
  const GenerationParameters p = parse_a1111_parameters(
      "p\nSteps: 3, Ak: \"x, y\" z, Bk: \"q\\\"r\", Ck: , Dk: \"\", Ek: \"bad json \\q\", Steps: 4, Ak: again");
  CHECK(p.steps == 4);
  CHECK(p.extra == std::vector<std::pair<std::string, std::string>>{
                       {"Ak", "again"}, {"Bk", "q\"r"}, {"Dk", ""}, {"Ek", "\"bad json \\q\""}});
  // A key needs two characters: "x: 1" is no parameter.
  const GenerationParameters q = parse_a1111_parameters("p\nx: 1, Steps: 2, Seed: 3, Size: 8x8, ok-key/2: v");
  CHECK(q.extra == std::vector<std::pair<std::string, std::string>>{{"ok-key/2", "v"}});
  CHECK(q.prompt == "p");
}

TEST_CASE("format then parse gives back every field, whatever the values hold", "[parameters]") {
  GenerationParameters p = example();
  p.prompt = "line one, (emphasis:1.3)\nline two: \"quoted\" \\ backslash\n\xE5\xAE\x87\xE5\xAE\x99 \xF0\x9F\x9A\x80";
  p.negative_prompt = "neg, one\nneg two";
  p.sampler = "DPM++ 2M SDE";
  p.model_name = "model, with: everything \"odd\"";
  p.seed = -9223372036854775807 - 1;
  p.cfg_scale = 6.123456789012345;
  p.denoising_strength = 1e-05;
  p.extra = {{"Lora hashes", "a: 1, b: 2"}, {"Empty", ""}, {"Lead", " space"}, {"Trail", "space "},
             {"Quote", "\"starts"}, {"Unicode key \xC3\xA9", "v"}, {"Ctrl", "a\x01\x1f" "b\rc"}};
  const std::string text = format_a1111_parameters(p);
  INFO(text);
  check_same(parse_a1111_parameters(text), p);
  CHECK(format_a1111_parameters(parse_a1111_parameters(text)) == text);

  GenerationParameters bare;  // all defaults, no version
  bare.version.clear();
  check_same(parse_a1111_parameters(format_a1111_parameters(bare)), bare);
}

TEST_CASE("bad numbers and unwritable extra keys are FormatErrors naming the key", "[parameters]") {
  for (const char* text : {"p\nSteps: many, Seed: 1, Size: 8x8", "p\nSteps: 1, Seed: 1.5, Size: 8x8",
                           "p\nSteps: 1, Seed: 1, Size: 8 by 8", "p\nSteps: 1, Seed: 1, Size: 8x", "p\nSteps: 1, Seed: 1, Size: x8",
                           "p\nSteps: 1, Seed: 1, CFG scale: high", "p\nSteps: 1, Seed: 1, Clip skip: 2.5",
                           "p\nSteps: 1, Seed: 1, Denoising strength: half", "p\nSteps: 99999999999, Seed: 1, Size: 8x8"}) {
    INFO(text);
    CHECK_THROWS_AS(parse_a1111_parameters(text), FormatError);
  }
  CHECK_THROWS_WITH(parse_a1111_parameters("p\nSteps: many, Seed: 1, Size: 8x8"), Catch::Contains("'Steps' is 'many'"));
  for (const char* key : {"Steps", "Model", "Version", "", "x", "a,b", "a:b", " lead", "Prompt", "-dash"}) {
    INFO("key '" << key << "'");
    GenerationParameters p;
    p.extra = {{key, "v"}};
    CHECK_THROWS_AS(format_a1111_parameters(p), FormatError);
  }
}

#ifdef LATENTKIT_CLI_PATH
namespace {
/// True when `text` matches `pattern` somewhere ("." also crosses lines, as CTest's PASS_REGULAR_EXPRESSION).
bool contains_match(const std::string& text, std::string pattern) {
  pattern = std::regex_replace(pattern, std::regex(R"(\.\*)"), "[\\s\\S]*");
  return std::regex_search(text, std::regex(pattern));
}
}  // namespace

TEST_CASE("latentkit inspect reads a PNG's A1111 parameters field by field and names a truncated PNG") {
  latentkit_test::TempDir dir("lk_inspect_png");
  GenerationParameters p = example();
  p.extra = {{"Lora hashes", "add_detail: 7c6bad76eb54"}};
  const Image im = image_test::picture(64, 48, 3);
  const auto with_parameters = dir.path / "with_parameters.png", truncated = dir.path / "truncated.png";
  write_png(with_parameters, im, {{"parameters", format_a1111_parameters(p)}, {"Software", "latentkit"}});
  auto bytes = encode_png(im);
  bytes.resize(bytes.size() / 2);
  std::ofstream(truncated, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(std::filesystem::file_size(truncated) == bytes.size());
  const auto inspect = [&](const std::string& args) {
    return latentkit_test::run_program(LATENTKIT_CLI_PATH, "inspect " + args, dir);
  };

  auto r = inspect(latentkit_test::quoted(with_parameters.string()));
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(contains_match(r.output,
                       "tEXt +x2.*parameters: a photograph of an astronaut.*Software: latentkit.*parameters \\(AUTOMATIC1111\\):\n"
                       "  prompt: +a photograph of an astronaut riding a horse\n  negative_prompt: +blurry, lowres\n"
                       "  steps: +20\n  sampler: +DPM\\+\\+ 2M\n  schedule: +Karras\n  cfg_scale: +7.5\n  seed: +42\n"
                       ".*model_hash: +6ce0161689.*clip_skip: +2\n  rng: +CPU\n  version: +latentkit [0-9.]+\n"
                       "  Lora hashes: +add_detail: 7c6bad76eb54"));
  r = inspect(latentkit_test::quoted(with_parameters.string()) + " --json");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(contains_match(r.output, "\"parameters\": \\{.*\"sampler\": \"DPM\\+\\+ 2M\".*\"seed\": 42.*"
                                 "\"denoising_strength\": 0.6.*\"extra\": \\[.*\"key\": \"Lora hashes\""));
  r = inspect(latentkit_test::quoted(truncated.string()));
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK(contains_match(r.output, "truncated.png.*truncated"));
}
#endif  // LATENTKIT_CLI_PATH
