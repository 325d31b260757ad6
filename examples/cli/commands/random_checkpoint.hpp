// `latentkit random-checkpoint -o FILE [--family sd1|sd2] [--dtype F16|BF16|F32] [--seed N]`: writes a full-size
// single-file checkpoint with random weights in the layout of the released files, for the end-to-end benchmark
// (scripts/bench-txt2img) on machines that may not download a real model.
#pragma once
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cli_support.hpp"
#include "latentkit/models/random_checkpoint.hpp"

namespace latentkit_cli {

inline constexpr std::string_view random_checkpoint_usage =
    "usage: latentkit random-checkpoint -o FILE [--family sd1|sd2] [--dtype F16|BF16|F32] [--seed N]\n"
    "\n"
    "Writes a full-size SD1.5 (or SD2.1-v) single-file checkpoint with random weights: every UNet, VAE and text\n"
    "encoder key of the released files, and the schedule buffer. For benchmarks; the images it makes are noise.\n"
    "  -o FILE    the .safetensors file to write (atomically)\n"
    "  --family   sd1 (default: CLIP ViT-L text encoder) or sd2 (OpenCLIP ViT-H, v-prediction UNet)\n"
    "  --dtype    stored precision: F16 (default, like the fp16 releases: 2.1 GB for SD1.5), BF16 or F32\n"
    "  --seed     seed of the random weights (default 1515)\n"
    "Exit status: 0 on success, 1 on a bad command line, 2 if the file cannot be written.\n";

inline int random_checkpoint(std::span<const std::string_view> args) {
  if (wants_help(args)) {
    std::fputs(std::string(random_checkpoint_usage).c_str(), stdout);
    return exit_ok;
  }
  std::optional<std::string> out;
  latentkit::ModelFamily family = latentkit::ModelFamily::sd1;
  latentkit::DType dtype = latentkit::DType::f16;
  std::uint64_t seed = 1515;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (i + 1 >= args.size()) {
      print_error("random-checkpoint", std::string(a) + (a.starts_with("-") ? " needs a value" : ": unexpected argument"));
      return exit_usage;
    }
    const std::string_view v = args[++i];
    if (a == "-o" || a == "--output") {
      out = std::string(v);
    } else if (a == "--family" && (v == "sd1" || v == "sd2")) {
      family = v == "sd1" ? latentkit::ModelFamily::sd1 : latentkit::ModelFamily::sd2;
    } else if (a == "--dtype" && (v == "F16" || v == "BF16" || v == "F32")) {
      dtype = *latentkit::parse_dtype(v);
    } else if (a == "--seed" && parse_number(v, seed)) {
    } else {
      print_error("random-checkpoint", "bad option '" + std::string(a) + " " + std::string(v) + "' (see latentkit help random-checkpoint)");
      return exit_usage;
    }
  }
  if (!out) {
    print_error("random-checkpoint", "-o FILE is required");
    return exit_usage;
  }
  latentkit::write_random_checkpoint(*out, family, dtype, seed);
  std::printf("wrote %s\n", out->c_str());
  return exit_ok;
}

}  // namespace latentkit_cli
