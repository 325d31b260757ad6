// FmaLoop for one x86-64 level: compiled once with -march=x86-64-v3 and once with -v4 (with LATENTKIT_ABI_ISA, so
// that latentkit's inline functions compiled with those flags keep names of their own), so that every build's
// benchmarks measure the peak of the best instruction set the CPU has.
#include <xsimd/xsimd.hpp>

#include "support/fma_loop.hpp"

#define LATENTKIT_BENCH_JOIN_IMPL_(a, b) a##b
#define LATENTKIT_BENCH_JOIN_(a, b) LATENTKIT_BENCH_JOIN_IMPL_(a, b)

namespace latentkit_bench {
double LATENTKIT_BENCH_JOIN_(fma_loop_, LATENTKIT_ABI_ISA)(std::int64_t iterations, float* sink) {
  return detail::FmaLoop{}(xsimd::default_arch{}, iterations, sink);
}
}  // namespace latentkit_bench
