// GEMM and conv2d throughput: latentkit vs OpenBLAS vs Eigen, one thread and all threads.
//
// Names: gemm/<impl>/<shape>/threads:<n>, gemm_bf16/latentkit/<mode>/... (f32 kernel with bf16 weights, and the
// vdpbf16ps kernel where it runs: compiled in or from the kernel library), conv2d/latentkit/... and the GEMM each
// convolution reduces to (conv2d/gemm_equivalent/...). Counters: gflops and peak_fraction (support/peak.hpp).
// Run: latentkit_gemm_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <cblas.h>

#include "latentkit/kernels/conv2d.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/kernels/gemm/bf16_dot.hpp"
#include "support/peak.hpp"

using namespace latentkit;

namespace {

struct Shape {
  std::string label;
  index_t m, n, k;
};

template <class T>
std::vector<T> random_vector(index_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = T(dist(gen));
  return v;
}

void use_threads(int threads) {
#if LATENTKIT_HAS_OPENMP
  omp_set_num_threads(threads);
#endif
  openblas_set_num_threads(threads);
  Eigen::setNbThreads(threads);
}

enum class Impl { latentkit, openblas, eigen };

void bench_gemm(benchmark::State& state, Impl impl, Shape s, int threads) {
  use_threads(threads);
  const auto a = random_vector<float>(s.m * s.k, 1), b = random_vector<float>(s.k * s.n, 2);
  std::vector<float> c(static_cast<std::size_t>(s.m * s.n));
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor> ea(a.data(), s.m, s.k), eb(b.data(), s.k, s.n);
  Eigen::Map<RowMajor> ec(c.data(), s.m, s.n);
  for (auto _ : state) {
    switch (impl) {
      case Impl::latentkit:
        gemm(Transpose::no, Transpose::no, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.n, 0.0f, c.data(), s.n);
        break;
      case Impl::openblas:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(s.m), static_cast<int>(s.n),
                    static_cast<int>(s.k), 1.0f, a.data(), static_cast<int>(s.k), b.data(), static_cast<int>(s.n), 0.0f,
                    c.data(), static_cast<int>(s.n));
        break;
      case Impl::eigen:
        ec.noalias() = ea * eb;
        break;
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  latentkit_bench::set_flop_counters(state, 2.0 * s.m * s.n * s.k, threads);
}

/// How a GEMM with bf16 weights runs: the f32 kernel widening B while packing on every call, or from B widened
/// and packed once; or the vdpbf16ps kernel (activations rounded to bf16) packing B per call, or once.
enum class Bf16Mode { convert_while_packing, prepacked, vdpbf16ps, vdpbf16ps_prepacked };

void bench_gemm_bf16(benchmark::State& state, Bf16Mode mode, Shape s, int threads) {
  use_threads(threads);
  const auto a = random_vector<float>(s.m * s.k, 1);
  const auto b = random_vector<bf16>(s.k * s.n, 2);
  std::vector<float> c(static_cast<std::size_t>(s.m * s.n));
  const PackedMatrix packed = mode == Bf16Mode::prepacked ? pack_weights_b(Transpose::no, s.k, s.n, b.data(), s.n) : PackedMatrix{};
  const bool dot = mode == Bf16Mode::vdpbf16ps || mode == Bf16Mode::vdpbf16ps_prepacked;
  if (dot && !bf16_dot_available()) {
    state.SkipWithError("no AVX512-BF16 kernel runs here");
    return;
  }
  const PackedBf16Weights pairs = mode == Bf16Mode::vdpbf16ps_prepacked
                                      ? pack_weights_b_bf16_dot(Transpose::no, s.k, s.n, b.data(), s.n)
                                      : PackedBf16Weights{};
  for (auto _ : state) {
    switch (mode) {
      case Bf16Mode::convert_while_packing:
        gemm(Transpose::no, Transpose::no, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.n, 0.0f, c.data(), s.n);
        break;
      case Bf16Mode::prepacked:
        gemm(Transpose::no, s.m, 1.0f, a.data(), s.k, packed, 0.0f, c.data(), s.n);
        break;
      case Bf16Mode::vdpbf16ps:
        gemm_bf16_dot(Transpose::no, Transpose::no, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.n, 0.0f, c.data(), s.n);
        break;
      case Bf16Mode::vdpbf16ps_prepacked:
        gemm_bf16_dot(Transpose::no, s.m, 1.0f, a.data(), s.k, pairs, 0.0f, c.data(), s.n);
        break;
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  latentkit_bench::set_flop_counters(state, 2.0 * s.m * s.n * s.k, threads);
}

struct ConvShape {
  std::string label;
  index_t channels, size, out_channels, stride;
  Conv2dGeometry geometry;
};

/// 3x3 convolution with pre-packed weights (as a UNet layer runs it) and bias.
void bench_conv(benchmark::State& state, ConvShape s, int threads) {
  use_threads(threads);
  const auto x = random_vector<float>(s.channels * s.size * s.size, 1);
  const auto w = random_vector<float>(s.out_channels * s.channels * 9, 2);
  const auto bias = random_vector<float>(s.out_channels, 3);
  const TensorView<const float> input(x.data(), Dims{1, s.channels, s.size, s.size});
  const PackedConv2dWeights packed = pack_conv2d_weights(TensorView<const float>(w.data(), Dims{s.out_channels, s.channels, 3, 3}));
  const index_t out = s.geometry.output_extent(s.size, 3, true);
  Tensor<float> y({1, s.out_channels, out, out});
  for (auto _ : state) {
    conv2d(input, packed, TensorView<const float>(bias.data(), Dims{s.out_channels}), s.geometry, y.view());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  latentkit_bench::set_flop_counters(state, 2.0 * s.out_channels * out * out * s.channels * 9, threads);
}

/// Single-threaded runs are timed on CPU time (robust to other jobs on a shared machine), multi-threaded ones on
/// wall time (the main thread's CPU time would miss the workers).
benchmark::internal::Benchmark* timed(benchmark::internal::Benchmark* b, int threads) {
  if (threads > 1) b->UseRealTime();
  return b->Unit(benchmark::kMillisecond);
}

std::string shape_label(index_t m, index_t n, index_t k) {
  return "M=" + std::to_string(m) + ",N=" + std::to_string(n) + ",K=" + std::to_string(k);
}

void register_all() {
  std::vector<Shape> shapes;
  for (index_t n : {256, 512, 1024, 2048, 4096}) shapes.push_back({"square/" + shape_label(n, n, n), n, n, n});
  const std::vector<Shape> sd = {
      {"sd_conv3x3_64/" + shape_label(4096, 320, 2880), 4096, 320, 2880},
      {"sd_conv3x3_32/" + shape_label(1024, 640, 5760), 1024, 640, 5760},
      {"sd_conv3x3_16/" + shape_label(256, 1280, 11520), 256, 1280, 11520},
      {"sd_linear_64/" + shape_label(4096, 320, 320), 4096, 320, 320},
      {"sd_attn_qk/" + shape_label(4096, 4096, 40), 4096, 4096, 40},
      {"sd_attn_pv/" + shape_label(4096, 40, 4096), 4096, 40, 4096},
  };
  shapes.insert(shapes.end(), sd.begin(), sd.end());
  const int all = max_threads();
  std::vector<int> thread_counts = {1};
  if (all > 1) thread_counts.push_back(all);

  for (int t : thread_counts) {
    const std::string suffix = "/threads:" + std::to_string(t);
    for (const auto& s : shapes) {
      for (const auto& [impl, name] : {std::pair{Impl::latentkit, "latentkit"}, std::pair{Impl::openblas, "openblas"},
                                       std::pair{Impl::eigen, "eigen"}}) {
        auto* b = benchmark::RegisterBenchmark(("gemm/" + std::string(name) + "/" + s.label + suffix).c_str(),
                                               bench_gemm, impl, s, t);
        timed(b, t);
        if (s.m * s.n * s.k >= 4096LL * 4096 * 4096) b->Iterations(1);
      }
    }
    for (const auto& s : sd) {
      if (s.k < 320) continue;
      std::vector<std::pair<Bf16Mode, const char*>> modes = {{Bf16Mode::convert_while_packing, "convert_while_packing"},
                                                             {Bf16Mode::prepacked, "prepacked"}};
      if (bf16_dot_available())
        modes.insert(modes.end(), {{Bf16Mode::vdpbf16ps, "vdpbf16ps"}, {Bf16Mode::vdpbf16ps_prepacked, "vdpbf16ps_prepacked"}});
      for (const auto& [mode, name] : modes)
        timed(benchmark::RegisterBenchmark(("gemm_bf16/latentkit/" + std::string(name) + "/" + s.label + suffix).c_str(),
                                           bench_gemm_bf16, mode, s, t), t);
    }
    const std::vector<ConvShape> convs = {
        {"[1,320,64,64]->320", 320, 64, 320, 1, Conv2dGeometry::padded(1)},
        {"[1,640,32,32]->640", 640, 32, 640, 1, Conv2dGeometry::padded(1)},
        {"[1,1280,16,16]->1280", 1280, 16, 1280, 1, Conv2dGeometry::padded(1)},
        {"[1,1280,8,8]->1280", 1280, 8, 1280, 1, Conv2dGeometry::padded(1)},
        {"vae_down_[1,256,128,128]->256_s2", 256, 128, 256, 2, Conv2dGeometry{2, 2, 0, 1, 0, 1}},
    };
    for (const auto& cs : convs) {
      timed(benchmark::RegisterBenchmark(("conv2d/latentkit/" + cs.label + suffix).c_str(), bench_conv, cs, t)
          , t);
      // The GEMM this convolution reduces to: C[O, pixels] = W[O, C*9] * im2col[C*9, pixels].
      const index_t out = cs.geometry.output_extent(cs.size, 3, true);
      const Shape g{"", cs.out_channels, out * out, cs.channels * 9};
      timed(benchmark::RegisterBenchmark(("conv2d/gemm_equivalent/latentkit/" + cs.label + "/" + shape_label(g.m, g.n, g.k) + suffix).c_str(),
                                   bench_gemm, Impl::latentkit, g, t), t);
      timed(benchmark::RegisterBenchmark(("conv2d/gemm_equivalent/openblas/" + cs.label + "/" + shape_label(g.m, g.n, g.k) + suffix).c_str(),
                                   bench_gemm, Impl::openblas, g, t), t);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  latentkit_bench::add_peak_context();
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
