// Throughput of the tensor core: dtype conversion, element-wise ops and reductions, vectorised vs scalar.
// Bytes counted = bytes read + bytes written; rates are reported by Google Benchmark as bytes_per_second.
// Run single-threaded for the vector-vs-scalar comparison: OMP_NUM_THREADS=1 ./latentkit_core_bench
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "latentkit/core/convert.hpp"
#include "latentkit/core/elementwise.hpp"
#include "latentkit/core/reduce.hpp"

using namespace latentkit;

namespace {
template <class T>
std::vector<T> random_values(std::size_t n) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<T> v(n);
  for (auto& x : v) x = T(normal(rng));
  return v;
}

// Scalar baselines, kept scalar on purpose (the vectoriser would otherwise turn them into SIMD code).
#define LATENTKIT_SCALAR __attribute__((noinline, optimize("no-tree-vectorize")))
LATENTKIT_SCALAR void scalar_add(const float* a, const float* b, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
LATENTKIT_SCALAR void scalar_axpy(float alpha, const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = alpha * x[i] + y[i];
}
LATENTKIT_SCALAR double scalar_sum(const float* x, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i];
  return s;
}
LATENTKIT_SCALAR double scalar_dot(const float* x, const float* y, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * y[i];
  return s;
}
template <class From, class To>
LATENTKIT_SCALAR void scalar_convert(const From* src, To* dst, std::size_t n) {
  convert_scalar(src, dst, n);
}

template <class From, class To, bool Vector>
void BM_convert(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<From> src = random_values<From>(n);
  std::vector<To> dst(n);
  for (auto _ : state) {
    if constexpr (Vector) convert(src.data(), dst.data(), n);
    else scalar_convert(src.data(), dst.data(), n);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * (sizeof(From) + sizeof(To))));
}

template <bool Vector>
void BM_add(benchmark::State& state) {
  const auto n = state.range(0);
  Tensor<float> a = Tensor<float>::full({n}, 1.5f), b = Tensor<float>::full({n}, 2.5f), out({n});
  for (auto _ : state) {
    if constexpr (Vector) add(a, b, out);
    else scalar_add(a.data(), b.data(), out.data(), static_cast<std::size_t>(n));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * 12);
}

template <bool Vector>
void BM_axpy(benchmark::State& state) {
  const auto n = state.range(0);
  Tensor<float> x = Tensor<float>::full({n}, 1.5f), y = Tensor<float>::full({n}, 2.5f);
  for (auto _ : state) {
    if constexpr (Vector) axpy(1e-3, x, y);
    else scalar_axpy(1e-3f, x.data(), y.data(), static_cast<std::size_t>(n));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * 12);
}

// Per-channel bias on NCHW (broadcast second operand) and a transposed (gathered) operand.
void BM_add_bias_nchw(benchmark::State& state) {
  const index_t c = 320, hw = state.range(0);
  Tensor<float> x = Tensor<float>::full({2, c, hw}, 1.0f), bias = Tensor<float>::full({c, 1}, 0.5f);
  for (auto _ : state) {
    add_inplace(x, bias);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * 8);
}
void BM_add_transposed(benchmark::State& state) {
  const index_t n = state.range(0);
  Tensor<float> a = Tensor<float>::full({n, n}, 1.0f), b = Tensor<float>::full({n, n}, 2.0f), out({n, n});
  for (auto _ : state) {
    add(a, b.view().transpose(), out);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * n * 12);
}

template <bool Vector>
void BM_sum(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> v = random_values<float>(n);
  const TensorView<const float> view(v.data(), {static_cast<index_t>(n)});
  for (auto _ : state) benchmark::DoNotOptimize(Vector ? sum(view) : scalar_sum(v.data(), n));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * 4));
}
template <bool Vector>
void BM_dot(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = random_values<float>(n), y = random_values<float>(n);
  const TensorView<const float> vx(x.data(), {static_cast<index_t>(n)}), vy(y.data(), {static_cast<index_t>(n)});
  for (auto _ : state) benchmark::DoNotOptimize(Vector ? dot(vx, vy) : scalar_dot(x.data(), y.data(), n));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * 8));
}
void BM_max_abs_diff(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = random_values<float>(n), y = random_values<float>(n);
  const TensorView<const float> vx(x.data(), {static_cast<index_t>(n)}), vy(y.data(), {static_cast<index_t>(n)});
  for (auto _ : state) benchmark::DoNotOptimize(max_abs_diff(vx, vy));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * 8));
}
void BM_mean_axis_groupnorm(benchmark::State& state) {  // GroupNorm statistics: [N*G, C/G*H*W] rows
  Tensor<float> x = Tensor<float>::full({2 * 32, 10 * 64 * 64}, 0.25f);
  for (auto _ : state) benchmark::DoNotOptimize(mean(x, 1));
  state.SetBytesProcessed(state.iterations() * x.numel() * 4);
}
}  // namespace

// 16 Ki elements (in cache) and 4 Mi elements (memory-bound).
#define SIZES ->Arg(1 << 14)->Arg(1 << 22)
BENCHMARK(BM_convert<float, f16, true>) SIZES;
BENCHMARK(BM_convert<float, f16, false>) SIZES;
BENCHMARK(BM_convert<f16, float, true>) SIZES;
BENCHMARK(BM_convert<f16, float, false>) SIZES;
BENCHMARK(BM_convert<float, bf16, true>) SIZES;
BENCHMARK(BM_convert<float, bf16, false>) SIZES;
BENCHMARK(BM_convert<bf16, float, true>) SIZES;
BENCHMARK(BM_convert<bf16, float, false>) SIZES;
BENCHMARK(BM_add<true>) SIZES;
BENCHMARK(BM_add<false>) SIZES;
BENCHMARK(BM_axpy<true>) SIZES;
BENCHMARK(BM_axpy<false>) SIZES;
BENCHMARK(BM_add_bias_nchw)->Arg(64 * 64);
BENCHMARK(BM_add_transposed)->Arg(1024);
BENCHMARK(BM_sum<true>) SIZES;
BENCHMARK(BM_sum<false>) SIZES;
BENCHMARK(BM_dot<true>) SIZES;
BENCHMARK(BM_dot<false>) SIZES;
BENCHMARK(BM_max_abs_diff) SIZES;
BENCHMARK(BM_mean_axis_groupnorm);

BENCHMARK_MAIN();
