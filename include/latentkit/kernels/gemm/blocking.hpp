// GEMM blocking: the register tile (MR x NR) and the cache blocks (MC, KC, NC) for each SIMD architecture.
//
// The loops follow the BLIS/GotoBLAS structure (see docs/kernels-gemm.md):
//   NC columns of B are packed per KC slice of K (the packed KC x NC panel lives in L3),
//   MC rows of A are packed per KC slice (the MC x KC block lives in L2),
//   one KC x NR micro-panel of B stays in L1 while the micro-kernel sweeps the MR-row panels of A.
#pragma once
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/shape.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

/// Number of SIMD registers the architecture exposes to the micro-kernel (accumulators + operands must fit).
template <class Arch>
constexpr int simd_register_count() noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return 32;
#endif
#if XSIMD_WITH_NEON64
  if constexpr (std::is_base_of_v<xsimd::neon64, Arch>) return 32;
#endif
  return 16;
}

/// Whether `Arch` is one of xsimd's AVX-512 architectures (the 14 x 32 tile and its blocks).
template <class Arch>
constexpr bool is_avx512() noexcept {
#if XSIMD_WITH_AVX512F
  return std::is_base_of_v<xsimd::avx512f, Arch>;
#else
  return false;
#endif
}

/// Tile and cache-block sizes for float32 on `Arch`.
///
/// KC is the one size that fixes the rounding of the result (each output element is summed in KC-long chunks,
/// in order); it depends only on the architecture, never on the thread count or the matrix shape, so a result is
/// bit-identical for any number of threads on a given machine.
template <class Arch>
struct GemmBlocking {
  using batch = xsimd::batch<float, Arch>;
  static constexpr int lanes = static_cast<int>(batch::size);
  /// Vectors per micro-tile row: two, so each broadcast of A feeds two independent FMAs.
  static constexpr int nr_vectors = 2;
  static constexpr int nr = nr_vectors * lanes;
  /// Rows per micro-tile: as many as leave room for the two B vectors and one broadcast of A
  /// (16 registers: 6 x 2 accumulators + 3; 32 registers: 14 x 2 + 3).
  static constexpr int mr = simd_register_count<Arch>() == 32 ? 14 : 6;
  /// K slice. Longer slices mean fewer passes over C (each slice reads and writes the C tile once), fewer
  /// micro-kernel calls and fewer packing calls; the KC x NR micro-panel of B (32 KiB for AVX2 at 512, 96 KiB for
  /// AVX-512 at 768) then lives in L1/L2, which feed the kernel fast enough. Measured in paired runs: 512 against
  /// 256/320/384 on Zen 3 for AVX2; on Zen 5 for AVX-512, 512 against 256-384 (+1-8%), then 768 against 512, 640
  /// and 1024 (+2-4% on the long-K SD shapes and M=4096,N=320,K=2880; 1024 makes NC smaller than N = 1280 and
  /// loses 5% there). docs/performance.md has the figures.
  static constexpr index_t kc = is_avx512<Arch>() ? 768 : 512;
  /// Rows of A per L2 block, a multiple of MR: MC x KC floats = 336 KiB with AVX-512 (8 x MR: a third of Zen 5's
  /// 1 MiB L2, beside the 96 KiB B micro-panel; 6-18 x MR measured alike at KC 512), 12 x MR elsewhere (144 KiB
  /// with AVX2).
  static constexpr index_t mc = mr * (is_avx512<Arch>() ? 8 : 12);
  /// Columns of B per L3 block: a KC x NC panel of at most 4 MiB, a multiple of NR.
  static constexpr index_t nc = (index_t{4} << 20) / static_cast<index_t>(sizeof(float)) / kc / nr * nr;
  /// Up to this many columns of C, a float row-major A is read in place instead of packed (micro_kernel's
  /// DirectA): packing A costs one pass over A per NC block, amortised over N / NR micro-panels. Measured in
  /// paired runs against OpenBLAS: on Zen 3 (AVX2, MR 6) packing wins from N = 320 on (+3-5%) while reading in
  /// place wins at N = 40 (attention P*V, +5-25%); on Zen 5 (AVX-512, MR 14) reading in place wins at N = 320
  /// (+10%: the linear and 64x64 conv shapes) and loses from N = 640 on (-1 to -6%).
  static constexpr index_t direct_a_max_n = simd_register_count<Arch>() == 32 ? 512 : 64;
  static_assert(nc % nr == 0 && mc % mr == 0);
};

/// GemmBlocking's sizes as run-time values, for code outside the dispatched kernel (workspace sizing, checks).
struct BlockingInfo {
  int mr = 0, nr = 0;
  index_t mc = 0, kc = 0, nc = 0;
};

namespace detail {
struct BlockingQuery {
  template <class Arch>
  BlockingInfo operator()(Arch) const noexcept {
    using b = GemmBlocking<Arch>;
    return {b::mr, b::nr, b::mc, b::kc, b::nc};
  }
};
}  // namespace detail

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
