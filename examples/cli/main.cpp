// latentkit: the command-line front end. Each command lives in commands/<name>.hpp; adding one is one
// #include and one row in the table below. `latentkit help CMD` runs CMD with --help.
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli_support.hpp"
#include "commands/bench_model.hpp"
#include "commands/compare.hpp"
#include "commands/encode.hpp"
#include "commands/generate.hpp"
#include "commands/inspect.hpp"
#include "commands/kernels.hpp"
#include "commands/random_checkpoint.hpp"
#include "commands/tokenize.hpp"
#include "latentkit/config/config.hpp"

namespace {

struct Command {
  std::string_view name;
  std::string_view summary;  // one line, shown by `latentkit --help`
  int (*run)(std::span<const std::string_view> args);
};

// ---- the command table -------------------------------------------------------------------------------------
constexpr Command commands[] = {
    {"txt2img", "generate images from a prompt with a Stable Diffusion checkpoint (PNG with the parameters embedded)", latentkit_cli::txt2img},
    {"img2img", "re-generate an image (PNG/JPEG) from a prompt at a denoising strength", latentkit_cli::img2img},
    {"inspect", "a .safetensors file: tensors, totals, metadata, SD family and key report; a PNG: its text chunks and A1111 parameters", latentkit_cli::inspect},
    {"compare", "compare samplers x schedules x steps on the analytic model: table, CSV, error-vs-NFE plot", latentkit_cli::compare},
    {"tokenize", "CLIP token ids, strings and the 77-token row of a prompt; A1111 chunks and weights", latentkit_cli::tokenize},
    {"encode", "prompt + negative prompt -> text conditioning [chunks*77, width] with a checkpoint's CLIP encoder", latentkit_cli::encode},
    {"bench-model", "time one UNet / VAE / TAESD evaluation at full size (a checkpoint or random weights), per layer kind", latentkit_cli::bench_model},
    {"random-checkpoint", "write a full-size SD1.5 / SD2.1 checkpoint with random weights (for benchmarks)", latentkit_cli::random_checkpoint},
    {"kernels", "the SIMD instruction set, GEMM blocking and bf16 kernel of this CPU; time a GEMM shape on each path", latentkit_cli::kernels},
};
// -------------------------------------------------------------------------------------------------------------

const Command* find_command(std::string_view name) {
  for (const auto& c : commands)
    if (c.name == name) return &c;
  return nullptr;
}

void print_overview(std::FILE* out) {
  std::fprintf(out, "latentkit %d.%d.%d: latent-diffusion toolkit\n\nusage: latentkit COMMAND [ARGS...]\n"
               "       latentkit help COMMAND\n\ncommands:\n",
               LATENTKIT_VERSION_MAJOR, LATENTKIT_VERSION_MINOR, LATENTKIT_VERSION_PATCH);
  for (const auto& c : commands)
    std::fprintf(out, "  %-17.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
}

int unknown_command(std::string_view name) {
  std::string valid;
  for (const auto& c : commands) valid += (valid.empty() ? "" : ", ") + std::string(c.name);
  std::fprintf(stderr, "latentkit: unknown command '%.*s'; valid commands: %s\n", static_cast<int>(name.size()),
               name.data(), valid.c_str());
  return latentkit_cli::exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_overview(stderr);
    return latentkit_cli::exit_usage;
  }
  const std::string_view first = args[0];
  if (first == "--help" || first == "-h") {
    print_overview(stdout);
    return latentkit_cli::exit_ok;
  }
  if (first == "--version") {
    std::printf("latentkit %d.%d.%d\n", LATENTKIT_VERSION_MAJOR, LATENTKIT_VERSION_MINOR, LATENTKIT_VERSION_PATCH);
    return latentkit_cli::exit_ok;
  }
  if (first == "help") {
    if (args.size() == 1) {
      print_overview(stdout);
      return latentkit_cli::exit_ok;
    }
    const Command* c = find_command(args[1]);
    if (!c) return unknown_command(args[1]);
    const std::string_view help[] = {"--help"};
    return c->run(std::span<const std::string_view>(help, 1));
  }
  const Command* c = find_command(first);
  if (!c) return unknown_command(first);
  return latentkit_cli::guarded(first, [&] { return c->run(std::span(args).subspan(1)); });
}
