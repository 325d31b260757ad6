// latentkit configuration: version, ABI namespace, OpenMP switch.
#pragma once

#define LATENTKIT_VERSION_MAJOR 0
#define LATENTKIT_VERSION_MINOR 1
#define LATENTKIT_VERSION_PATCH 0

// OpenMP is optional (a notebook interpreter may not have it). Kernels write LATENTKIT_OMP(parallel for ...)
// and get a serial loop when it is off. It is on only when asked for (LATENTKIT_USE_OPENMP) AND compiled with it.
#if defined(LATENTKIT_USE_OPENMP) && LATENTKIT_USE_OPENMP && defined(_OPENMP)
#include <omp.h>
#define LATENTKIT_PRAGMA_(x) _Pragma(#x)
#define LATENTKIT_OMP(x) LATENTKIT_PRAGMA_(omp x)
#define LATENTKIT_HAS_OPENMP 1
#else
#define LATENTKIT_OMP(x)
#define LATENTKIT_HAS_OPENMP 0
#endif

// Every public name lives in an ABI-tagged inline namespace (as nlohmann/json does), so that objects built with
// and without OpenMP never link against each other silently. The tag follows what the code actually does
// (LATENTKIT_HAS_OPENMP), not what was asked for.
//
// A translation unit of the compiled kernel library (src/kernel_library/) is compiled once per instruction set and
// defines LATENTKIT_ABI_ISA (x86_64_v3, ...): its copy of every latentkit symbol then has a name of its own, so the
// linker never merges an inline function compiled with -march=x86-64-v4 into a caller's baseline code.
#if LATENTKIT_HAS_OPENMP
#define LATENTKIT_ABI_BASE v0_1_omp
#else
#define LATENTKIT_ABI_BASE v0_1
#endif
#define LATENTKIT_JOIN_IMPL_(a, b) a##_##b
#define LATENTKIT_JOIN_(a, b) LATENTKIT_JOIN_IMPL_(a, b)
#if defined(LATENTKIT_ABI_ISA)
#define LATENTKIT_ABI_NAME LATENTKIT_JOIN_(LATENTKIT_ABI_BASE, LATENTKIT_ABI_ISA)
#else
#define LATENTKIT_ABI_NAME LATENTKIT_ABI_BASE
#endif

#define LATENTKIT_NAMESPACE_BEGIN namespace latentkit { inline namespace LATENTKIT_ABI_NAME {
#define LATENTKIT_NAMESPACE_END } }

LATENTKIT_NAMESPACE_BEGIN
/// Threads a parallel region will use (1 without OpenMP).
inline int max_threads() noexcept {
#if LATENTKIT_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
LATENTKIT_NAMESPACE_END
