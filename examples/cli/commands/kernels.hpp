// `latentkit kernels [--gemm M N K] [--repeat R]`: which instruction set the CPU kernels run on, the GEMM
// blocking, whether the vdpbf16ps kernel is in this build, and optionally one GEMM shape timed on each path
// (f32, bf16 weights widened while packing, vdpbf16ps) with the bf16 path's difference from f32.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli_support.hpp"
#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/backend/simd/cpu_features.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/kernels/gemm/bf16_dot.hpp"

namespace latentkit_cli {

inline constexpr std::string_view kernels_usage =
    "usage: latentkit kernels [--gemm M N K] [--repeat R]\n"
    "\n"
    "Prints the best x86-64 level this CPU supports, the instruction set compiled into this program, the levels of\n"
    "the kernel library (latentkit::kernels) it links, which kernels a call runs and why (a WARNING on stderr when\n"
    "they are slower than what the CPU offers), the GEMM micro-tile and cache blocks, the thread count\n"
    "(OMP_NUM_THREADS) and whether this build has the AVX512-BF16 (vdpbf16ps) kernel.\n"
    "LATENTKIT_KERNELS=auto|compiled-in|x86-64-v3|x86-64-v4 forces where kernel calls go (default auto).\n"
    "  --gemm M N K  also times C[M x N] = A[M x K] * W[K x N] with weights packed once: f32 weights, bf16 weights\n"
    "                (widened to f32 while packed) and, where built, the vdpbf16ps kernel (activations rounded\n"
    "                to bf16); prints the median time, GFLOP/s, and the vdpbf16ps result's largest difference\n"
    "                from the f32 one relative to the largest |C|\n"
    "  --repeat R    timed calls per path, after one warm-up call (default: 5)\n"
    "Exit status: 0 on success, 1 on a bad command line.\n";

namespace detail {

inline bool parse_extent(std::string_view text, latentkit::index_t& out) { return parse_number(text, out) && out > 0; }

/// Median wall time in milliseconds of `repeat` calls of f, after one warm-up call.
template <class F>
double median_ms(int repeat, F&& f) {
  f();
  std::vector<double> ms;
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

inline void print_timing(const char* path, double ms, double flops) {
  std::printf("  %-34s %10.3f ms %9.1f GFLOP/s\n", path, ms, flops / (ms * 1e6));
}

inline void time_gemm(latentkit::index_t m, latentkit::index_t n, latentkit::index_t k, int repeat) {
  using namespace latentkit;
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(static_cast<std::size_t>(m * k)), w(static_cast<std::size_t>(k * n));
  std::vector<bf16> w_bf16(w.size());
  for (auto& x : a) x = dist(gen);
  for (std::size_t i = 0; i < w.size(); ++i) w_bf16[i] = bf16(w[i] = dist(gen));
  std::vector<float> c(static_cast<std::size_t>(m * n));
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  std::printf("GEMM M=%lld N=%lld K=%lld, weights packed once, median of %d calls:\n", static_cast<long long>(m),
              static_cast<long long>(n), static_cast<long long>(k), repeat);
  const PackedMatrix packed = pack_weights_b(Transpose::no, k, n, w.data(), n);
  print_timing("f32 weights", median_ms(repeat, [&] { gemm(Transpose::no, m, 1.0f, a.data(), k, packed, 0.0f, c.data(), n); }), flops);
  const PackedMatrix widened = pack_weights_b(Transpose::no, k, n, w_bf16.data(), n);
  print_timing("bf16 weights, f32 kernel",
               median_ms(repeat, [&] { gemm(Transpose::no, m, 1.0f, a.data(), k, widened, 0.0f, c.data(), n); }), flops);
  if (!bf16_dot_available()) return;
  const std::vector<float> reference = c;  // the f32 kernel on the same bf16 weights
  const PackedBf16Weights pairs = pack_weights_b_bf16_dot(Transpose::no, k, n, w_bf16.data(), n);
  print_timing("bf16 weights, vdpbf16ps kernel",
               median_ms(repeat, [&] { gemm_bf16_dot(Transpose::no, m, 1.0f, a.data(), k, pairs, 0.0f, c.data(), n); }), flops);
  double largest = 0.0, difference = 0.0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    largest = std::max(largest, std::abs(static_cast<double>(reference[i])));
    difference = std::max(difference, std::abs(static_cast<double>(c[i]) - reference[i]));
  }
  std::printf("  vdpbf16ps vs f32 kernel: max |difference| / max |C| = %.2e (activations rounded to bf16)\n",
              largest > 0.0 ? difference / largest : 0.0);
}

}  // namespace detail

inline int kernels(std::span<const std::string_view> args) {
  using latentkit::index_t;
  if (wants_help(args)) {
    std::fputs(std::string(kernels_usage).c_str(), stdout);
    return exit_ok;
  }
  index_t m = 0, n = 0, k = 0;
  int repeat = 5;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--gemm") {
      if (i + 3 >= args.size() || !detail::parse_extent(args[i + 1], m) || !detail::parse_extent(args[i + 2], n) ||
          !detail::parse_extent(args[i + 3], k)) {
        print_error("kernels", "--gemm needs three positive integers M N K");
        return exit_usage;
      }
      i += 3;
    } else if (args[i] == "--repeat") {
      index_t r = 0;
      if (i + 1 >= args.size() || !detail::parse_extent(args[++i], r) || r > 1000) {
        print_error("kernels", "--repeat needs an integer from 1 to 1000");
        return exit_usage;
      }
      repeat = static_cast<int>(r);
    } else {
      print_error("kernels", "unknown argument '" + std::string(args[i]) + "' (see latentkit kernels --help)");
      return exit_usage;
    }
  }
  return guarded("kernels", [&] {
    const latentkit::simd::KernelReport report = latentkit::simd::kernel_report();
    std::printf("CPU: %s%s\n", report.cpu_best.c_str(),
                latentkit::simd::cpu_levels().avx512_bf16 ? ", AVX512-BF16" : "");
    std::printf("compiled into this program: %s\n", report.compiled_in.c_str());
    std::string library;
    for (const std::string& level : report.library) library += (library.empty() ? "" : ", ") + level;
    std::printf("kernel library: %s\n", library.empty() ? "not linked" : library.c_str());
    std::printf("kernels run: %s (%s)\n", report.running.c_str(), report.why.c_str());
    if (!report.warning.empty()) std::fprintf(stderr, "WARNING: %s\n", report.warning.c_str());
    const auto b = latentkit::gemm_kernel::running_blocking();
    std::printf("threads: %d\n", latentkit::max_threads());
    std::printf("f32 GEMM: micro-tile %d x %d, K slice %lld, M block %lld, N block %lld\n", b.mr, b.nr,
                static_cast<long long>(b.kc), static_cast<long long>(b.mc), static_cast<long long>(b.nc));
    switch (latentkit::gemm_kernel::bf16_dot_path()) {
      case latentkit::gemm_kernel::Bf16DotPath::compiled_in:
        std::printf("vdpbf16ps GEMM: compiled in (micro-tile 14 x 32, K slice %lld)\n",
                    static_cast<long long>(latentkit::gemm_kernel::Bf16DotLayout::kc));
        break;
      case latentkit::gemm_kernel::Bf16DotPath::library:
        std::printf("vdpbf16ps GEMM: kernel library (%s, micro-tile 14 x 32, K slice %lld)\n",
                    latentkit::simd::library_bf16_dot()->arch, static_cast<long long>(latentkit::gemm_kernel::Bf16DotLayout::kc));
        break;
      default:
        std::printf("vdpbf16ps GEMM: not available (%s)\n", latentkit::simd::cpu_levels().avx512_bf16
                        ? "this CPU has AVX512-BF16, but this build neither targets it nor links the kernel library"
                        : "this CPU has no AVX512-BF16");
    }
    if (m > 0) detail::time_gemm(m, n, k, repeat);
    return exit_ok;
  });
}

}  // namespace latentkit_cli
