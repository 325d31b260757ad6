// latentkit configuration: version, ABI namespace, OpenMP switch.
#pragma once

#define LATENTKIT_VERSION_MAJOR 0
#define LATENTKIT_VERSION_MINOR 1
#define LATENTKIT_VERSION_PATCH 0

// Every public name lives in an ABI-tagged inline namespace (as nlohmann/json does), so that objects built
// with different configurations (OpenMP on/off, CUDA on/off) never link against each other silently.
#if defined(LATENTKIT_USE_OPENMP) && LATENTKIT_USE_OPENMP
#define LATENTKIT_ABI_OMP _omp
#else
#define LATENTKIT_ABI_OMP
#endif
#define LATENTKIT_ABI_CONCAT_(a, b) a##b
#define LATENTKIT_ABI_CONCAT(a, b) LATENTKIT_ABI_CONCAT_(a, b)
#define LATENTKIT_ABI_NAME LATENTKIT_ABI_CONCAT(v0_1, LATENTKIT_ABI_OMP)

#define LATENTKIT_NAMESPACE_BEGIN namespace latentkit { inline namespace LATENTKIT_ABI_NAME {
#define LATENTKIT_NAMESPACE_END } }

// OpenMP is optional (a notebook interpreter may not have it). Kernels write LATENTKIT_OMP(parallel for ...)
// and get a serial loop when it is off.
#if defined(LATENTKIT_USE_OPENMP) && LATENTKIT_USE_OPENMP && defined(_OPENMP)
#include <omp.h>
#define LATENTKIT_PRAGMA_(x) _Pragma(#x)
#define LATENTKIT_OMP(x) LATENTKIT_PRAGMA_(omp x)
#define LATENTKIT_HAS_OPENMP 1
#else
#define LATENTKIT_OMP(x)
#define LATENTKIT_HAS_OPENMP 0
#endif

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
