// The register-resident FMA loop the benchmarks measure the machine's peak with (support/peak.hpp).
#pragma once
#include <cstdint>
#include <utility>

#include <benchmark/benchmark.h>

#include "latentkit/backend/simd/fma.hpp"

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

}  // namespace detail

// Defined in support/fma_levels.cpp, compiled once per x86-64 level (benchmarks/support/CMakeLists.txt).
double fma_loop_x86_64_v3(std::int64_t iterations, float* sink);
double fma_loop_x86_64_v4(std::int64_t iterations, float* sink);

}  // namespace latentkit_bench
