// Which instruction sets latentkit's SIMD kernels are instantiated for, and how one is picked at run time.
//
// Kernels are functors templated on an xsimd architecture (`template <class Arch> void operator()(Arch, ...)`),
// written once over `xsimd::batch<T, Arch>`. They are instantiated for every architecture the compiler was allowed
// to target (the -m / -march flags: LATENTKIT_NATIVE=ON or the `native` preset gives the build machine's), and
// `simd::dispatch` calls the best one the running CPU supports. A portable build without such flags gets SSE2.
#pragma once
#include <utility>

#include <xsimd/xsimd.hpp>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace simd {

/// Every architecture this translation unit was compiled for, best first.
using arch_list = xsimd::supported_architectures;

/// The best compiled-in architecture the running CPU has: f(Arch{}, args...) is called through it.
template <class F>
auto dispatch(F&& f) noexcept {
  return xsimd::dispatch<arch_list>(std::forward<F>(f));
}

namespace detail {
struct ArchName {
  template <class Arch>
  const char* operator()(Arch) const noexcept { return Arch::name(); }
};
}  // namespace detail

/// The name of the architecture dispatch() picks on this CPU ("avx512f", "fma3+avx2", "sse2", ...).
inline const char* best_arch_name() noexcept { return dispatch(detail::ArchName{})(); }

}  // namespace simd
LATENTKIT_NAMESPACE_END
