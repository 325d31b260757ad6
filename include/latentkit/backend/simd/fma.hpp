// Fused multiply-add on xsimd batches with one rounding wherever the instruction set has it.
//
// xsimd 8 (Debian 12's libxsimd-dev) has no AVX-512 kernel for fma: batch<float, avx512*> falls back to
// x * y + z, which the compiler may or may not contract into an FMA, and in a * x + b * y may contract either
// product. Results would then depend on the optimiser, and differ from the scalar std::fma a reference uses.
// simd::fma issues the AVX-512 instruction itself and defers to xsimd::fma everywhere else.
#pragma once
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace simd {

/// x * y + z, rounded once on FMA-capable architectures (SSE2 builds have no FMA: two roundings there).
template <class T, class Arch>
inline xsimd::batch<T, Arch> fma(const xsimd::batch<T, Arch>& x, const xsimd::batch<T, Arch>& y,
                                 const xsimd::batch<T, Arch>& z) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    if constexpr (std::is_same_v<T, float>) return _mm512_fmadd_ps(x, y, z);
    if constexpr (std::is_same_v<T, double>) return _mm512_fmadd_pd(x, y, z);
  }
#endif
  return xsimd::fma(x, y, z);
}

}  // namespace simd
LATENTKIT_NAMESPACE_END
