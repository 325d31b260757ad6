// Benchmarks of the attention / norm / activation / resampling kernels. Attention reports gflops (4 B H Lq Lk d),
// peak_fraction of the measured FMA peak and the bytes of working memory; the rest report bytes/s (read + write).
#include <cblas.h>

#include <cmath>
#include <ctime>
#include <random>
#include <vector>

#include "latentkit/kernels/activation.hpp"
#include "latentkit/kernels/attention.hpp"
#include "latentkit/kernels/norm.hpp"
#include "latentkit/kernels/resample.hpp"
#include "support/peak.hpp"

using namespace latentkit;

namespace {

Tensor<float> random_tensor(const Dims& shape, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Tensor<float> t(shape);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = dist(rng);
  return t;
}

struct AttnShape {
  index_t heads, lq, lk, d;
};

/// SD1.5 levels: 64x64 latents (4096 tokens, 8 heads of 40), 32x32 (1024, 80), 16x16 (256, 160); cross: Lk = 77.
void attention_fused(benchmark::State& state, AttnShape s) {
  const Tensor<float> q = random_tensor({1, s.heads, s.lq, s.d}, 1), k = random_tensor({1, s.heads, s.lk, s.d}, 2),
                      v = random_tensor({1, s.heads, s.lk, s.d}, 3);
  Tensor<float> out(Dims{1, s.heads, s.lq, s.d});
  for (auto _ : state) {
    attention(q.view(), k.view(), v.view(), out.view());
    benchmark::DoNotOptimize(out.data());
  }
  latentkit_bench::set_flop_counters(state, 4.0 * double(s.heads * s.lq * s.lk * s.d), max_threads());
  state.counters["workspace_bytes"] = double(attention_workspace_bytes(s.d, s.d));
}

/// One thread, timed by the thread's CPU time (UseManualTime): on a shared, overloaded machine wall time measures
/// the other processes as much as the kernel; CPU time of a single thread does not (caches are still shared).
void attention_fused_cpu1(benchmark::State& state, AttnShape s) {
  const Tensor<float> q = random_tensor({1, s.heads, s.lq, s.d}, 1), k = random_tensor({1, s.heads, s.lk, s.d}, 2),
                      v = random_tensor({1, s.heads, s.lk, s.d}, 3);
  Tensor<float> out(Dims{1, s.heads, s.lq, s.d});
  const auto thread_seconds = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  [[maybe_unused]] const int saved = max_threads();
#if LATENTKIT_HAS_OPENMP
  omp_set_num_threads(1);
#endif
  for (auto _ : state) {
    const double start = thread_seconds();
    attention(q.view(), k.view(), v.view(), out.view());
    benchmark::DoNotOptimize(out.data());
    state.SetIterationTime(thread_seconds() - start);
  }
#if LATENTKIT_HAS_OPENMP
  omp_set_num_threads(saved);
#endif
  latentkit_bench::set_flop_counters(state, 4.0 * double(s.heads * s.lq * s.lk * s.d), 1);
  state.counters["workspace_bytes"] = double(attention_workspace_bytes(s.d, s.d, 1));
}

/// Baseline: the score matrix materialised per head (OpenBLAS sgemm, row softmax, sgemm).
void attention_naive(benchmark::State& state, AttnShape s) {
  const Tensor<float> q = random_tensor({s.heads, s.lq, s.d}, 1), k = random_tensor({s.heads, s.lk, s.d}, 2),
                      v = random_tensor({s.heads, s.lk, s.d}, 3);
  Tensor<float> out(Dims{s.heads, s.lq, s.d}), scores(Dims{s.lq, s.lk});
  const float scale = 1.0f / std::sqrt(float(s.d));
  for (auto _ : state) {
    for (index_t h = 0; h < s.heads; ++h) {
      const float* qh = q.data() + h * s.lq * s.d;
      const float* kh = k.data() + h * s.lk * s.d;
      const float* vh = v.data() + h * s.lk * s.d;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.lq), int(s.lk), int(s.d), scale, qh, int(s.d), kh,
                  int(s.d), 0.0f, scores.data(), int(s.lk));
      softmax(scores.view(), scores.view());
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(s.lq), int(s.d), int(s.lk), 1.0f, scores.data(),
                  int(s.lk), vh, int(s.d), 0.0f, out.data() + h * s.lq * s.d, int(s.d));
    }
    benchmark::DoNotOptimize(out.data());
  }
  latentkit_bench::set_flop_counters(state, 4.0 * double(s.heads * s.lq * s.lk * s.d), max_threads());
  state.counters["workspace_bytes"] = double(s.lq * s.lk * 4);
}

void set_bytes(benchmark::State& state, index_t bytes_per_iteration) {
  state.SetBytesProcessed(state.iterations() * bytes_per_iteration);
  state.counters["threads"] = max_threads();
}

void group_norm_bench(benchmark::State& state, bool fused_silu) {
  const index_t c = state.range(0), hw = state.range(1);
  const Tensor<float> x = random_tensor({1, c, hw, hw}, 4), g = random_tensor({c}, 5), b = random_tensor({c}, 6);
  Tensor<float> y(x.shape());
  for (auto _ : state) {
    if (fused_silu) group_norm_silu(x.view(), y.view(), 32, 1e-5f, g.view(), b.view());
    else group_norm(x.view(), y.view(), 32, 1e-5f, g.view(), b.view());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 2 * x.numel() * 4);
}

void layer_norm_bench(benchmark::State& state) {
  const index_t rows = state.range(0), d = state.range(1);
  const Tensor<float> x = random_tensor({rows, d}, 7), g = random_tensor({d}, 8), b = random_tensor({d}, 9);
  Tensor<float> y(x.shape());
  for (auto _ : state) {
    layer_norm(x.view(), y.view(), 1e-5f, g.view(), b.view());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 2 * x.numel() * 4);
}

template <void (*Fn)(TensorView<const float>, TensorView<float>)>
void unary_bench(benchmark::State& state) {
  const Tensor<float> x = random_tensor({state.range(0), state.range(1)}, 10);
  Tensor<float> y(x.shape());
  for (auto _ : state) {
    Fn(x.view(), y.view());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 2 * x.numel() * 4);
}

void geglu_bench(benchmark::State& state) {
  const index_t rows = state.range(0), f = state.range(1);
  const Tensor<float> x = random_tensor({rows, 2 * f}, 11);
  Tensor<float> y(Dims{rows, f});
  for (auto _ : state) {
    geglu(x.view(), y.view());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 3 * rows * f * 4);
}

void upsample_bench(benchmark::State& state) {
  const index_t c = state.range(0), hw = state.range(1);
  const Tensor<float> x = random_tensor({1, c, hw, hw}, 12);
  Tensor<float> y(Dims{1, c, 2 * hw, 2 * hw});
  for (auto _ : state) {
    upsample_nearest2x(x.view(), y.view());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 5 * x.numel() * 4);
}

void concat_bench(benchmark::State& state) {
  const index_t c = state.range(0), hw = state.range(1);
  const Tensor<float> a = random_tensor({1, c, hw, hw}, 13), b = random_tensor({1, c, hw, hw}, 14);
  Tensor<float> y(Dims{1, 2 * c, hw, hw});
  for (auto _ : state) {
    concat_channels(a.view(), b.view(), y.view());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 4 * a.numel() * 4);
}

void residual_add_bench(benchmark::State& state) {
  const index_t c = state.range(0), hw = state.range(1);
  const Tensor<float> a = random_tensor({1, c, hw, hw}, 15), b = random_tensor({1, c, hw, hw}, 16);
  Tensor<float> y(a.shape());
  for (auto _ : state) {
    residual_add(a.view(), b.view(), y.view());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 3 * a.numel() * 4);
}

}  // namespace

BENCHMARK_CAPTURE(attention_fused, sd15_64x64_self_h8_d40, AttnShape{8, 4096, 4096, 40})->Name("attention/latentkit/64x64_self_L4096_h8_d40")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_fused, sd15_32x32_self_h8_d80, AttnShape{8, 1024, 1024, 80})->Name("attention/latentkit/32x32_self_L1024_h8_d80")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_fused, sd15_16x16_self_h8_d160, AttnShape{8, 256, 256, 160})->Name("attention/latentkit/16x16_self_L256_h8_d160")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_fused, sd15_64x64_cross_h8_d40, AttnShape{8, 4096, 77, 40})->Name("attention/latentkit/64x64_cross_Lk77_h8_d40")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_fused, sd15_32x32_cross_h8_d80, AttnShape{8, 1024, 77, 80})->Name("attention/latentkit/32x32_cross_Lk77_h8_d80")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_fused_cpu1, sd15_64x64_self_h8_d40, AttnShape{8, 4096, 4096, 40})->Name("attention/latentkit_1thread_cputime/64x64_self_L4096_h8_d40")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_fused_cpu1, sd15_32x32_self_h8_d80, AttnShape{8, 1024, 1024, 80})->Name("attention/latentkit_1thread_cputime/32x32_self_L1024_h8_d80")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_fused_cpu1, sd15_16x16_self_h8_d160, AttnShape{8, 256, 256, 160})->Name("attention/latentkit_1thread_cputime/16x16_self_L256_h8_d160")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_fused_cpu1, sd15_64x64_cross_h8_d40, AttnShape{8, 4096, 77, 40})->Name("attention/latentkit_1thread_cputime/64x64_cross_Lk77_h8_d40")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_naive, sd15_64x64_self_h8_d40, AttnShape{8, 4096, 4096, 40})->Name("attention/naive_openblas/64x64_self_L4096_h8_d40")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_naive, sd15_32x32_self_h8_d80, AttnShape{8, 1024, 1024, 80})->Name("attention/naive_openblas/32x32_self_L1024_h8_d80")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(attention_naive, sd15_16x16_self_h8_d160, AttnShape{8, 256, 256, 160})->Name("attention/naive_openblas/16x16_self_L256_h8_d160")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(group_norm_bench, plain, false)->Name("groupnorm/latentkit/C_HW")->Args({320, 64})->Args({1280, 16})->UseRealTime();
BENCHMARK_CAPTURE(group_norm_bench, silu, true)->Name("groupnorm_silu/latentkit/C_HW")->Args({320, 64})->Args({1280, 16})->UseRealTime();
BENCHMARK(layer_norm_bench)->Name("layernorm/latentkit/rows_D")->Args({4096, 320})->Args({77, 768})->UseRealTime();
BENCHMARK(unary_bench<silu>)->Name("silu/latentkit/rows_cols")->Args({1280, 1024})->UseRealTime();
BENCHMARK(unary_bench<gelu>)->Name("gelu/latentkit/rows_cols")->Args({4096, 1280})->UseRealTime();
BENCHMARK(unary_bench<gelu_tanh>)->Name("gelu_tanh/latentkit/rows_cols")->Args({4096, 1280})->UseRealTime();
BENCHMARK(unary_bench<quick_gelu>)->Name("quick_gelu/latentkit/rows_cols")->Args({77, 3072})->UseRealTime();
BENCHMARK(unary_bench<softmax>)->Name("softmax/latentkit/rows_cols")->Args({1024, 4096})->Args({4096, 77})->UseRealTime();
BENCHMARK(geglu_bench)->Name("geglu/latentkit/rows_F")->Args({4096, 1280})->UseRealTime();
BENCHMARK(upsample_bench)->Name("upsample_nearest2x/latentkit/C_HW")->Args({1280, 16})->Args({640, 32})->UseRealTime();
BENCHMARK(concat_bench)->Name("concat_channels/latentkit/C_HW")->Args({320, 64})->UseRealTime();
BENCHMARK(residual_add_bench)->Name("residual_add/latentkit/C_HW")->Args({320, 64})->UseRealTime();

LATENTKIT_BENCHMARK_MAIN();
