// Shared benchmark helpers: a measured FMA-throughput peak for this machine, and the `gflops` / `peak_fraction`
// user counters every kernel benchmark reports.
//
// The peak is measured, not looked up: a register-resident loop of independent FMAs over xsimd::batch<float>,
// run once per process (on one core and on every core), so a kernel's `peak_fraction` compares it with what this
// very CPU, at its current clock and under its current load, can do.
#pragma once
#include <algorithm>
#include <ctime>
#include <cstdint>
#include <string>
#include <utility>

#include <benchmark/benchmark.h>

#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/backend/simd/fma.hpp"
#include "latentkit/config/config.hpp"

namespace latentkit_bench {

namespace detail {

/// Chains of FMAs kept in registers. Enough independent accumulators to cover FMA latency x FMA ports on current
/// x86 (4-5 cycles x 2 ports) and ARM cores; 12 vectors + 2 operands still fit the 16 AVX2 registers.
struct FmaLoop {
  static constexpr int accumulators = 12;

  /// Runs `iterations` rounds of `accumulators` FMAs; returns the flops executed. The result is folded into
  /// `sink` so the loop cannot be removed.
  template <class Arch>
  double operator()(Arch, std::int64_t iterations, float* sink) const noexcept {
    using batch = xsimd::batch<float, Arch>;
    return run(batch{}, iterations, sink, std::make_integer_sequence<int, accumulators>{});
  }

 private:
  // The chains are unrolled with a fold expression so that each accumulator is its own register variable
  // (a loop over an array leaves them in memory at -O2).
  template <class Batch, int... I>
  static double run(Batch, std::int64_t iterations, float* sink, std::integer_sequence<int, I...>) noexcept {
    Batch acc[] = {Batch(1.0f + 0.001f * static_cast<float>(I))...};
    // Values chosen so the chains neither overflow nor become denormal: x -> x * 0.999999 + 1e-6 stays near 1.
    const Batch scale(0.999999f), shift(1e-6f);
    for (std::int64_t it = 0; it < iterations; ++it) {
      // Without -ffast-math the compiler may not reassociate or fold these chains, so every FMA executes.
      ((acc[I] = latentkit::simd::fma(acc[I], scale, shift)), ...);
    }
    const Batch total = (acc[I] + ...);
    *sink = xsimd::hadd(total);
    return 2.0 * static_cast<double>(Batch::size) * accumulators * static_cast<double>(iterations);
  }
};

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
      const double flops = latentkit::simd::dispatch(FmaLoop{})(iterations, &sink);
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
    const double flops = latentkit::simd::dispatch(FmaLoop{})(iterations, &sink);
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
  benchmark::AddCustomContext("simd_arch", latentkit::simd::best_arch_name());
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
