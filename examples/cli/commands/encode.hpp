// `latentkit encode -m FILE [--tokenizer PATH] [--clip-skip N] [-n TEXT] [--out FILE] [-p] PROMPT...`:
// encodes a prompt and a negative prompt with the checkpoint's text encoder (A1111 chunks, weights, clip skip)
// and prints the conditioning shape, the tokens of each chunk and summary statistics; --out saves cond/uncond.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cli_support.hpp"
#include "latentkit/io/safetensors_writer.hpp"
#include "latentkit/models/clip_text.hpp"
#include "latentkit/pipelines/conditioning.hpp"
#include "latentkit/pipelines/stable_diffusion.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"

namespace latentkit_cli {

inline constexpr std::string_view encode_usage =
    "usage: latentkit encode -m FILE [--tokenizer PATH] [--clip-skip N] [-n TEXT] [--out FILE] [-p] PROMPT...\n"
    "\n"
    "Encodes PROMPT (several arguments are joined with spaces) and the negative prompt with the text encoder of\n"
    "a checkpoint: A1111 prompt syntax ((word:1.2), [word], BREAK), 75-token chunks, mean-restoring weights.\n"
    "Prints the conditioning shape [chunks * 77, width], the prompt tokens of each chunk and statistics.\n"
    "  -m, --model FILE   single-file SD1 (CLIP ViT-L) or SD2 (OpenCLIP) .safetensors, or a diffusers folder\n"
    "                     (alias: --checkpoint)\n"
    "  --tokenizer PATH   CLIP BPE vocabulary (see latentkit help tokenize); default: beside the model, then the\n"
    "                     usual search path (alias: --vocab)\n"
    "  -p, --prompt TEXT  the prompt (or give it as the trailing arguments)\n"
    "  --clip-skip N      1 = last layer, 2 = penultimate, ... (default: SD1 1, SD2 single file 2)\n"
    "  -n, --negative-prompt TEXT  the negative prompt (default: empty; alias: --negative)\n"
    "  --out FILE         save cond and uncond [chunks * 77, width] to a .safetensors file\n"
    "Exit status: 0 on success, 1 on a bad command line, 2 if a file is missing or malformed.\n";

namespace detail {

inline void print_stats(const char* label, const latentkit::Tensor<float>& t, const std::vector<std::size_t>& tokens) {
  double sum = 0, sq = 0;
  float lo = t.numel() ? t.data()[0] : 0.0f, hi = lo;
  for (latentkit::index_t i = 0; i < t.numel(); ++i) {
    const float v = t.data()[i];
    sum += v;
    sq += static_cast<double>(v) * v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const double n = static_cast<double>(std::max<latentkit::index_t>(t.numel(), 1));
  const double mean = sum / n, stddev = std::sqrt(std::max(0.0, sq / n - mean * mean));
  std::printf("%-7s %s  tokens per chunk:", label, t.shape().str().c_str());
  for (auto k : tokens) std::printf(" %zu", k);
  std::printf("  mean %.6g  std %.6g  min %.6g  max %.6g\n", mean, stddev, static_cast<double>(lo), static_cast<double>(hi));
}

}  // namespace detail

inline int encode(std::span<const std::string_view> args) {
  if (wants_help(args)) {
    std::fputs(std::string(encode_usage).c_str(), stdout);
    return exit_ok;
  }
  std::optional<std::string> checkpoint, vocab, out;
  std::string prompt, negative;
  bool have_prompt = false;
  latentkit::ConditioningOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    const bool model = a == "-m" || a == "--model" || a == "--checkpoint";
    const bool tokenizer = a == "--tokenizer" || a == "--vocab";
    const bool negative_flag = a == "-n" || a == "--negative-prompt" || a == "--negative";
    const bool prompt_flag = a == "-p" || a == "--prompt";
    const bool takes_value = model || tokenizer || negative_flag || prompt_flag || a == "--clip-skip" || a == "--out";
    if (takes_value && i + 1 >= args.size()) {
      print_error("encode", std::string(a) + " needs a value");
      return exit_usage;
    }
    if (model) {
      checkpoint = std::string(args[++i]);
    } else if (tokenizer) {
      vocab = std::string(args[++i]);
    } else if (negative_flag) {
      negative = std::string(args[++i]);
    } else if (prompt_flag) {
      prompt += (have_prompt ? " " : "") + std::string(args[++i]);
      have_prompt = true;
    } else if (a == "--out") {
      out = std::string(args[++i]);
    } else if (a == "--clip-skip") {
      const std::string_view v = args[++i];
      int n = 0;
      if (!parse_number(v, n) || n < 1) {
        print_error("encode", "--clip-skip needs a positive integer, got '" + std::string(v) + "'");
        return exit_usage;
      }
      options.clip_skip = n;
    } else if (a.starts_with("--")) {
      print_error("encode", "unknown option '" + std::string(a) + "' (see latentkit help encode)");
      return exit_usage;
    } else {
      prompt += (have_prompt ? " " : "") + std::string(a);
      have_prompt = true;
    }
  }
  if (!checkpoint || !have_prompt) {
    print_error("encode", !checkpoint ? "-m/--model is required" : "no prompt given");
    return exit_usage;
  }
  const latentkit::ClipTextEncoder encoder = latentkit::load_text_encoder(*checkpoint);
  const auto flavor = encoder.layout().padding == latentkit::ClipPadding::zero ? latentkit::ClipFlavor::open_clip
                                                                                : latentkit::ClipFlavor::openai;
  const auto tokenizer = vocab ? latentkit::ClipTokenizer::load(*vocab, flavor) : latentkit::ClipTokenizer::load(latentkit::find_tokenizer_for(*checkpoint), flavor);
  const auto& c = encoder.config();
  std::printf("encoder: %s layout, width %lld, %lld layers, %lld heads, MLP %lld (%s), vocab %lld, context %lld\n",
              std::string(encoder.layout().name).c_str(), static_cast<long long>(c.width), static_cast<long long>(c.layers),
              static_cast<long long>(c.heads), static_cast<long long>(c.mlp_width),
              std::string(latentkit::activation_name(c.activation)).c_str(), static_cast<long long>(c.vocab_size),
              static_cast<long long>(c.context_length));
  const latentkit::Conditioning cond = latentkit::encode_conditioning(encoder, tokenizer, prompt, negative, options);
  std::printf("conditioning: %zu chunk(s), clip skip %d\n", cond.chunks, cond.clip_skip);
  detail::print_stats("cond", cond.cond, cond.cond_chunk_tokens);
  detail::print_stats("uncond", cond.uncond, cond.uncond_chunk_tokens);
  if (out) {
    latentkit::SafetensorsWriter writer;
    writer.add("cond", cond.cond);
    writer.add("uncond", cond.uncond);
    writer.set_metadata("prompt", prompt);
    writer.set_metadata("negative_prompt", negative);
    writer.set_metadata("clip_skip", std::to_string(cond.clip_skip));
    writer.set_metadata("checkpoint", *checkpoint);
    writer.write(*out);
    std::printf("wrote %s\n", out->c_str());
  }
  return exit_ok;
}

}  // namespace latentkit_cli
