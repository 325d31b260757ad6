// Full-size networks with random weights (models/random_weights.hpp): one SD1.5 UNet evaluation at 64x64 latents,
// batch 2 (what a classifier-free-guidance step runs) with f32 and with bf16 weights; VAE decode and encode at
// 512x512 (and tiled decode, with the seam against the untiled one); TAESD decode at 512x512.
// Counters: gflops and peak_fraction (FLOPs counted per layer by nn/profile.hpp), peak_rss_gib (the process's
// high-water mark so far), and per layer kind <kind>_s (seconds per evaluation) and <kind>_gflops.
// Run: latentkit_bench_models --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "latentkit/kernels/gemm/bf16_dot.hpp"
#include "latentkit/models/autoencoder_kl.hpp"
#include "latentkit/models/random_weights.hpp"
#include "latentkit/models/taesd.hpp"
#include "latentkit/models/unet.hpp"
#include "support/peak.hpp"

using namespace latentkit;

namespace {

double peak_rss_gib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

Tensor<float> random_input(const Dims& shape, std::uint64_t seed, float scale = 1.0f) {
  Tensor<float> t(shape);
  GaussianNoise(seed).fill(t.data(), static_cast<std::size_t>(t.numel()), 0);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] *= scale;
  return t;
}

template <class Model>
Model& random_model(Model& model, std::uint64_t seed, WeightType type) {
  fill_random_parameters(model, seed);
  model.prepare(WeightOptions{type, true});
  return model;
}

/// Runs `evaluate(profile)` once per iteration and reports rates against the machine's measured peak.
template <class Evaluate>
void run_network(benchmark::State& state, Evaluate&& evaluate) {
  Profile total;
  for (auto _ : state) {
    Profile p;
    evaluate(&p);
    total += p;
  }
  const double n = static_cast<double>(state.iterations());
  latentkit_bench::set_flop_counters(state, total.total_flops() / n, max_threads());
  for (LayerKind k : layer_kinds) {
    const auto i = static_cast<std::size_t>(k);
    const std::string name(layer_kind_name(k));
    state.counters[name + "_s"] = total.seconds[i] / n;
    if (total.flops[i] > 0) state.counters[name + "_gflops"] = total.flops[i] / total.seconds[i] * 1e-9;
  }
  state.counters["gflop_per_eval"] = total.total_flops() / n * 1e-9;
  state.counters["peak_rss_gib"] = peak_rss_gib();
}

const UNet& sd15_unet(WeightType type) {
  if (type == WeightType::bf16) {
    static UNet bf16_model(UNetConfig::sd15());
    static const bool ready = (random_model(bf16_model, 1515, WeightType::bf16), true);
    (void)ready;
    return bf16_model;
  }
  static UNet f32_model(UNetConfig::sd15());
  static const bool ready = (random_model(f32_model, 1515, WeightType::f32), true);
  (void)ready;
  return f32_model;
}

const AutoencoderKL& sd_vae() {
  static AutoencoderKL model(AutoencoderKLConfig::sd());
  static const bool ready = (random_model(model, 1516, WeightType::f32), true);
  (void)ready;
  return model;
}

void BM_unet_sd15_cfg_step(benchmark::State& state) {
  const WeightType type = state.range(0) ? WeightType::bf16 : WeightType::f32;
  const UNet& unet = sd15_unet(type);
  const Tensor<float> x = random_input({2, 4, 64, 64}, 1), context = random_input({2, 77, 768}, 2);
  const std::vector<float> t{500.0f, 500.0f};
  state.SetLabel(type == WeightType::bf16 ? (bf16_dot_available() ? "bf16 weights (linear: vdpbf16ps)" : "bf16 weights (widened)")
                                          : "f32 weights");
  run_network(state, [&](Profile* p) { benchmark::DoNotOptimize(unet.forward(x.view(), t, context.view(), p)); });
}
BENCHMARK(BM_unet_sd15_cfg_step)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

void BM_vae_decode_512(benchmark::State& state) {
  const AutoencoderKL& vae = sd_vae();
  const Tensor<float> z = random_input({1, 4, 64, 64}, 3);
  run_network(state, [&](Profile* p) { benchmark::DoNotOptimize(vae.decode(z.view(), p)); });
}
BENCHMARK(BM_vae_decode_512)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

void BM_vae_encode_512(benchmark::State& state) {
  const AutoencoderKL& vae = sd_vae();
  const Tensor<float> image = random_input({1, 3, 512, 512}, 4, 0.5f);
  run_network(state, [&](Profile* p) { benchmark::DoNotOptimize(vae.moments(image.view(), p)); });
}
BENCHMARK(BM_vae_encode_512)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

/// Tiled decode of the same latent (tiles of 32 latent pixels overlapping by 16: 3 x 3 tiles); `seam` is
/// max |tiled - untiled| over the image, `seam_rel` that over max |untiled|.
void BM_vae_decode_512_tiled(benchmark::State& state) {
  const AutoencoderKL& vae = sd_vae();
  const Tensor<float> z = random_input({1, 4, 64, 64}, 3);
  const Tensor<float> whole = vae.decode(z.view());
  Tensor<float> tiled;
  run_network(state, [&](Profile* p) { tiled = vae.decode_tiled(z.view(), {32, 16}, p); });
  double seam = 0, range = 0;
  for (index_t i = 0; i < whole.numel(); ++i) {
    seam = std::max(seam, static_cast<double>(std::abs(tiled.data()[i] - whole.data()[i])));
    range = std::max(range, static_cast<double>(std::abs(whole.data()[i])));
  }
  state.counters["seam"] = seam;
  state.counters["seam_rel"] = seam / range;
}
BENCHMARK(BM_vae_decode_512_tiled)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

void BM_taesd_decode_512(benchmark::State& state) {
  static TaesdNetwork decoder = TaesdNetwork::decoder(4);
  static const bool ready = (random_model(decoder, 302, WeightType::f32), true);
  (void)ready;
  const Tensor<float> z = random_input({1, 4, 64, 64}, 5);
  run_network(state, [&](Profile* p) { benchmark::DoNotOptimize(decoder.forward(z.view(), p)); });
}
BENCHMARK(BM_taesd_decode_512)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

}  // namespace

LATENTKIT_BENCHMARK_MAIN();
