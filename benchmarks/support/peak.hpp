// Shared benchmark helpers: a measured FMA-throughput peak for this machine, and the `gflops` / `peak_fraction`
// user counters every kernel benchmark reports.
//
// The peak is measured, not looked up: a register-resident loop of independent FMAs over xsimd::batch<float>,
// run once per process (on one core and on every core), so a kernel's `peak_fraction` compares it with what this
// very CPU, at its current clock and under its current load, can do.
#pragma once
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <cstdint>
#include <string>
#include <utility>

#include <benchmark/benchmark.h>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/backend/simd/cpu_features.hpp"
#include "latentkit/config/config.hpp"
#include "support/fma_loop.hpp"

namespace latentkit_bench {

namespace detail {

/// The FMA loop of the best instruction set this CPU supports, whatever this translation unit was compiled for:
/// the x86-64-v4 / v3 copies of support/fma_levels.cpp when the CPU has them, else FmaLoop's own dispatch. So a
/// portable build's peak_fraction is against the machine's peak, not against SSE2.
inline double run_fma_loop(std::int64_t iterations, float* sink) {
#if defined(LATENTKIT_BENCH_FMA_LEVELS)
  const latentkit::simd::CpuLevels cpu = latentkit::simd::cpu_levels();
  if (cpu.x86_64_v4) return fma_loop_x86_64_v4(iterations, sink);
  if (cpu.x86_64_v3) return fma_loop_x86_64_v3(iterations, sink);
#endif
  return latentkit::simd::dispatch(FmaLoop{})(iterations, sink);
}

/// CPU time of the calling thread, seconds. Rates measured against it are what the core delivers while it runs
/// the loop, unaffected by time slices lost to other processes on a shared machine.
inline double thread_cpu_seconds() noexcept {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/// GFLOP/s of the FMA loop on `threads` threads: the sum of each thread's rate over its own CPU time (each thread
/// is pinned to nothing; with no more threads than cores this is the machine's FMA capacity). Best of several
/// trials: the peak is an upper bound, so lower trials are noise.
inline double measure_fma_gflops(int threads) {
  // ~50-100 ms per trial on a 3 GHz AVX2 core; read through volatile so the trip count is not a constant.
  volatile std::int64_t iterations_source = 4'000'000;
  const std::int64_t iterations = iterations_source;
  double best = 0.0;
  for (int trial = 0; trial < 5; ++trial) {
    double gflops = 0.0;
    LATENTKIT_OMP(parallel for num_threads(threads) reduction(+ : gflops) schedule(static, 1))
    for (int t = 0; t < threads; ++t) {
      float sink = 0.0f;
      const double start = thread_cpu_seconds();
      const double flops = run_fma_loop(iterations, &sink);
      gflops += flops / (thread_cpu_seconds() - start) * 1e-9;
      benchmark::DoNotOptimize(sink);
    }
    best = std::max(best, gflops);
  }
  return best;
}

/// GFLOP/s of the FMA loop on the calling thread alone (no OpenMP region), over CLOCK_THREAD_CPUTIME_ID: exactly
/// the clock Google Benchmark uses for a single-threaded benchmark's CPU time. Best of several trials.
inline double measure_fma_gflops_calling_thread() {
  volatile std::int64_t iterations_source = 4'000'000;
  const std::int64_t iterations = iterations_source;
  double best = 0.0;
  for (int trial = 0; trial < 5; ++trial) {
    float sink = 0.0f;
    const double start = thread_cpu_seconds();
    const double flops = run_fma_loop(iterations, &sink);
    best = std::max(best, flops / (thread_cpu_seconds() - start) * 1e-9);
    benchmark::DoNotOptimize(sink);
  }
  return best;
}

}  // namespace detail

/// Measured FMA peak of one core on the calling thread's CPU time, GFLOP/s: the denominator for single-threaded
/// benchmarks timed on CPU time, so that their fractions do not depend on the time slices other jobs take.
inline double peak_gflops_one_core_cputime() {
  static const double peak = detail::measure_fma_gflops_calling_thread();
  return peak;
}

/// Measured FMA peak of one core, GFLOP/s (float32, the widest SIMD this build dispatches to).
inline double peak_gflops_one_core() {
  static const double peak = detail::measure_fma_gflops(1);
  return peak;
}

/// Measured FMA peak with every thread OpenMP would use (latentkit::max_threads()), GFLOP/s.
inline double peak_gflops_all_cores() {
  static const double peak = detail::measure_fma_gflops(latentkit::max_threads());
  return peak;
}

/// The peak that matches a run on `threads` threads: one core's peak times the thread count, capped by the
/// all-core measurement (which already includes any clock drop when every core is busy).
inline double peak_gflops(int threads) {
  if (threads <= 1) return peak_gflops_one_core();
  if (threads >= latentkit::max_threads()) return peak_gflops_all_cores();
  return std::min(peak_gflops_all_cores(), peak_gflops_one_core() * threads);
}

/// Sets the `gflops` and `peak_fraction` counters from the flops one iteration performs.
/// Both are rate counters, so Google Benchmark divides by the measured time of each repetition; medians over
/// --benchmark_repetitions are medians of per-run rates. Which time: a single-threaded benchmark should keep the
/// default (the main thread's CPU time: robust on a machine shared with other jobs); a multi-threaded one must
/// call UseRealTime(), since the main thread's CPU time does not include the OpenMP workers.
inline void set_flop_counters(benchmark::State& state, double flops_per_iteration, int threads) {
  const double total = flops_per_iteration * static_cast<double>(state.iterations());
  state.counters["gflops"] = benchmark::Counter(total * 1e-9, benchmark::Counter::kIsRate);
  // One thread: the benchmark's rate is over CPU time, so compare it with the CPU-time peak of the same loop.
  const double peak = threads <= 1 ? peak_gflops_one_core_cputime() : peak_gflops(threads);
  state.counters["peak_fraction"] = benchmark::Counter(total * 1e-9 / peak, benchmark::Counter::kIsRate);
  state.counters["threads"] = benchmark::Counter(threads);
}

/// Records the measured peaks in the benchmark context (printed once at the top of every report).
inline void add_peak_context() {
  const latentkit::simd::KernelReport kernels = latentkit::simd::kernel_report();
  benchmark::AddCustomContext("simd_arch", latentkit::simd::best_arch_name());
  benchmark::AddCustomContext("kernels", kernels.running + " (" + kernels.why + ")");
  benchmark::AddCustomContext("cpu_best", kernels.cpu_best);
  if (!kernels.warning.empty()) {
    benchmark::AddCustomContext("WARNING", kernels.warning);
    std::fprintf(stderr, "WARNING: %s\n", kernels.warning.c_str());
  }
  benchmark::AddCustomContext("fma_peak_gflops_one_core", std::to_string(peak_gflops_one_core()));
  benchmark::AddCustomContext("fma_peak_gflops_one_core_cputime", std::to_string(peak_gflops_one_core_cputime()));
  benchmark::AddCustomContext("fma_peak_gflops_all_cores", std::to_string(peak_gflops_all_cores()));
  benchmark::AddCustomContext("threads", std::to_string(latentkit::max_threads()));
}

}  // namespace latentkit_bench

/// main() for a benchmark executable: BENCHMARK_MAIN() plus the measured peaks in the report's context.
#define LATENTKIT_BENCHMARK_MAIN()                                              \
  int main(int argc, char** argv) {                                             \
    ::benchmark::Initialize(&argc, argv);                                       \
    if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;         \
    ::latentkit_bench::add_peak_context();                                      \
    ::benchmark::RunSpecifiedBenchmarks();                                      \
    ::benchmark::Shutdown();                                                    \
    return 0;                                                                   \
  }                                                                             \
  static_assert(true, "require a semicolon after LATENTKIT_BENCHMARK_MAIN()")
