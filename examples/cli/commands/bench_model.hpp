// `latentkit bench-model [FILE] [--model M] [--size PX] [--batch B] [--weights f32|bf16] [--repeat R]`: one timed
// network evaluation, on a checkpoint's weights or on random full-size SD1.5 / SD2.1 weights, with the time per
// layer kind, GFLOP/s and the peak resident memory.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli_support.hpp"
#include "latentkit/kernels/gemm/bf16_dot.hpp"
#include "latentkit/models/random_weights.hpp"
#include "latentkit/models/sd_checkpoint.hpp"
#include "latentkit/models/taesd.hpp"

namespace latentkit_cli {

inline constexpr std::string_view bench_model_usage =
    "usage: latentkit bench-model [FILE] [--model unet|vae-decode|vae-encode|taesd-decode] [--family sd1|sd2]\n"
    "                             [--size PX] [--batch B] [--weights f32|bf16] [--tile T] [--repeat R]\n"
    "\n"
    "Times one evaluation of a network at full size and prints seconds (median of R), GFLOP/s, the time and\n"
    "GFLOP/s per layer kind (conv, linear, attention, norm, other) and the process's peak resident memory.\n"
    "  FILE        a single-file checkpoint (its UNet / VAE, configs from its metadata or shapes) or, for\n"
    "              taesd-decode, a TAESD decoder; without FILE the weights are random at the family's size\n"
    "  --model     unet (default: one classifier-free-guidance step, batch 2), vae-decode, vae-encode, taesd-decode\n"
    "  --family    sd1 (default) or sd2: the configuration of random weights\n"
    "  --size      image size in pixels, a multiple of 64 (default 512: 64x64 latents)\n"
    "  --batch     latents per evaluation (default 2 for the UNet, 1 otherwise)\n"
    "  --weights   compute weight type: f32 (default) or bf16 (kept packed; vdpbf16ps where the CPU has it)\n"
    "  --tile      VAE only: tiled decode/encode with tiles of T latent pixels (overlap T/2), and the seam:\n"
    "              max |tiled - untiled| (the untiled result is computed too)\n"
    "  --repeat    timed evaluations after one warm-up (default 1)\n"
    "Exit status: 0 on success, 1 on a bad command line, 2 if the file is missing or malformed.\n";

namespace detail {

inline void print_profile(const latentkit::Profile& p, double runs) {
  for (latentkit::LayerKind k : latentkit::layer_kinds) {
    const auto i = static_cast<std::size_t>(k);
    const std::string name(latentkit::layer_kind_name(k));
    if (p.flops[i] > 0)
      std::printf("  %-10s %8.3f s %9.1f GFLOP/s\n", name.c_str(), p.seconds[i] / runs, p.flops[i] / p.seconds[i] * 1e-9);
    else
      std::printf("  %-10s %8.3f s\n", name.c_str(), p.seconds[i] / runs);
  }
}

/// max |a - b| over two tensors of the same size (the tiled result against the untiled one).
inline double max_difference(const latentkit::Tensor<float>& a, const latentkit::Tensor<float>& b) {
  double m = 0;
  for (latentkit::index_t i = 0; i < a.numel(); ++i) m = std::max<double>(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}

inline latentkit::Tensor<float> gaussian(const latentkit::Dims& shape, std::uint64_t seed) {
  latentkit::Tensor<float> t(shape);
  latentkit::GaussianNoise(seed).fill(t.data(), static_cast<std::size_t>(t.numel()), 0);
  return t;
}

}  // namespace detail

inline int bench_model(std::span<const std::string_view> args) {
  using namespace latentkit;
  if (wants_help(args)) {
    std::fputs(bench_model_usage.data(), stdout);
    return exit_ok;
  }
  std::string_view file, model = "unet", family = "sd1";
  index_t size = 512, batch = 0, tile = 0;
  int repeat = 1;
  WeightType weights = WeightType::f32;
  const auto bad = [](const std::string& what) {
    print_error("bench-model", what + " (see latentkit help bench-model)");
    return exit_usage;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--model" && has_value) model = args[++i];
    else if (a == "--family" && has_value) family = args[++i];
    else if (a == "--size" && has_value) {
      if (!parse_number(args[++i], size) || size < 64 || size % 64 != 0) return bad("--size needs a multiple of 64");
    } else if (a == "--batch" && has_value) {
      if (!parse_number(args[++i], batch) || batch < 1) return bad("--batch needs a positive integer");
    } else if (a == "--tile" && has_value) {
      if (!parse_number(args[++i], tile) || tile < 2 || tile % 2 != 0) return bad("--tile needs an even number >= 2");
    } else if (a == "--repeat" && has_value) {
      if (!parse_number(args[++i], repeat) || repeat < 1) return bad("--repeat needs a positive integer");
    } else if (a == "--weights" && has_value) {
      try {
        weights = parse_weight_type(args[++i]);
      } catch (const Error& e) {
        return bad(e.what());
      }
    } else if (a.starts_with("-") && a.size() > 1) {
      return bad("unknown option or missing value '" + std::string(a) + "'");
    } else if (file.empty()) {
      file = a;
    } else {
      return bad("expected at most one FILE");
    }
  }
  if (model != "unet" && model != "vae-decode" && model != "vae-encode" && model != "taesd-decode")
    return bad("unknown --model '" + std::string(model) + "'; valid: unet, vae-decode, vae-encode, taesd-decode");
  if (family != "sd1" && family != "sd2") return bad("unknown --family '" + std::string(family) + "'; valid: sd1, sd2");
  if (tile && !model.starts_with("vae")) return bad("--tile applies to vae-decode and vae-encode");
  if (batch == 0) batch = model == "unet" ? 2 : 1;

  return guarded("bench-model", [&] {
    const WeightOptions options{weights, true};
    const LoadOptions load{options, std::nullopt};
    const auto with_random_weights = [&](auto model, std::uint64_t seed) {
      fill_random_parameters(model, seed);
      model.prepare(options);
      return model;
    };
    const std::optional<SafetensorsFile> checkpoint =
        file.empty() ? std::nullopt : std::optional<SafetensorsFile>(std::filesystem::path(file));
    const std::string source = !file.empty()              ? std::string(file)
                               : model == "taesd-decode" ? std::string("random TAESD weights")
                                                         : "random " + std::string(family == "sd2" ? "SD2.1" : "SD1.5") + " weights";
    const index_t latent = size / 8;
    Profile profile;
    std::vector<double> seconds;
    const auto time = [&](auto&& evaluate) {
      evaluate(nullptr);  // warm-up: first-touch of the packed weights and the scratch buffers
      for (int r = 0; r < repeat; ++r) {
        const auto start = std::chrono::steady_clock::now();
        evaluate(&profile);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    };
    std::string what;
    double seam = -1;
    if (model == "unet") {
      const UNet unet = checkpoint ? load_unet(*checkpoint, load)
                                   : with_random_weights(UNet(family == "sd2" ? UNetConfig::sd21_v() : UNetConfig::sd15()), 1515);
      const Tensor<float> x = detail::gaussian({batch, unet.config().in_channels, latent, latent}, 1);
      const Tensor<float> context = detail::gaussian({batch, 77, unet.config().context_dim}, 2);
      const std::vector<float> t(static_cast<std::size_t>(batch), 500.0f);
      what = "UNet, latents " + x.shape().str();
      time([&](Profile* p) { (void)unet.forward(x.view(), t, context.view(), p); });
    } else if (model.starts_with("vae")) {
      const AutoencoderKL vae =
          checkpoint ? load_vae(*checkpoint, load) : with_random_weights(AutoencoderKL(AutoencoderKLConfig::sd()), 1516);
      const index_t f = vae.downsampling_factor();
      const TileOptions tiles{model == "vae-decode" ? tile : tile * f, model == "vae-decode" ? tile / 2 : tile / 2 * f};
      if (model == "vae-decode") {
        const Tensor<float> z = detail::gaussian({batch, vae.latent_channels(), size / f, size / f}, 3);
        what = "VAE decode, latents " + z.shape().str() + (tile ? ", tiles of " + std::to_string(tile) : "");
        Tensor<float> out;
        time([&](Profile* p) { out = tile ? vae.decode_tiled(z.view(), tiles, p) : vae.decode(z.view(), p); });
        if (tile) seam = detail::max_difference(out, vae.decode(z.view()));
      } else {
        Tensor<float> image = detail::gaussian({batch, 3, size, size}, 4);
        what = "VAE encode, image " + image.shape().str() + (tile ? ", tiles of " + std::to_string(tile * f) + " px" : "");
        Tensor<float> out;
        time([&](Profile* p) { out = tile ? vae.moments_tiled(image.view(), tiles, p) : vae.moments(image.view(), p); });
        if (tile) seam = detail::max_difference(out, vae.moments(image.view()));
      }
    } else {
      const TaesdNetwork decoder =
          checkpoint ? load_taesd(*checkpoint, "", options) : with_random_weights(TaesdNetwork::decoder(4), 302);
      const Tensor<float> z = detail::gaussian({batch, decoder.in_channels(), latent, latent}, 5);
      what = "TAESD decode, latents " + z.shape().str();
      time([&](Profile* p) { (void)decoder.forward(z.view(), p); });
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2], runs = static_cast<double>(repeat);
    std::printf("%s (%s, %s weights%s), %d thread%s\n", what.c_str(), source.c_str(),
                std::string(weight_type_name(weights)).c_str(),
                weights == WeightType::bf16 ? (bf16_dot_available() ? "; linear layers on vdpbf16ps" : "; widened to f32")
                                            : "",
                max_threads(), max_threads() == 1 ? "" : "s");
    std::printf("  time       %8.3f s (median of %d)  %.1f GFLOP/s (%.1f GFLOP per evaluation)\n", median, repeat,
                profile.total_flops() / runs / median * 1e-9, profile.total_flops() / runs * 1e-9);
    detail::print_profile(profile, runs);
    if (seam >= 0) std::printf("  seam       max |tiled - untiled| = %.6g\n", seam);
    std::printf("  peak RSS   %.2f GiB\n", peak_rss_gib());
    return exit_ok;
  });
}

}  // namespace latentkit_cli
