// The bf16 x bf16 -> f32 GEMM kernel with AVX512-BF16 `vdpbf16ps`, for CPUs that have it (Cooper Lake, Sapphire
// Rapids, Zen 4 and later). Compiled only when the target enables AVX512-BF16 (-mavx512bf16, or -march=native
// there); the public entry points, in every build, are in gemm/bf16_dot.hpp.
//
// vdpbf16ps multiplies pairs of bf16 and adds both products to a float lane: acc[j] += a0 * b0[j] + a1 * b1[j],
// twice the multiply throughput of an f32 FMA. So the operands are packed in k-pairs:
//   an A panel holds, per pair p, MR couples (A[i, 2p], A[i, 2p+1]), each one 32-bit word broadcast to all lanes;
//   a B panel holds, per pair p, NR couples (B[2p, j], B[2p+1, j]), interleaved, loaded as two vectors.
// An odd K is padded with a zero half. The activations A are rounded to bf16 while they are packed (the weights B
// already are): results differ from gemm() on the f32 activations by that rounding, so this is an opt-in entry
// point, not a dispatch target of gemm().
//
// The loops, threading and determinism are gemm()'s (gemm/driver.hpp run through Bf16DotKernel): each output
// sums its K slices in order, whatever the thread count, so results are bit-identical for any OMP_NUM_THREADS.
// On CPUs without AVX512-BF16 the running path for bf16 weights is gemm()'s convert-while-packing.
#pragma once

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/kernels/gemm/driver.hpp"
#include "latentkit/kernels/gemm/microkernel.hpp"
#include "latentkit/kernels/gemm/pack.hpp"

#define LATENTKIT_HAS_AVX512_BF16_GEMM 1

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

/// Number of k-pairs in a K slice of length kc (an odd slice ends with a half-zero pair).
constexpr index_t pairs_of(index_t kc) noexcept { return (kc + 1) / 2; }

/// The vdpbf16ps micro-kernel, as run_blocked_with sees it (the members of F32Kernel).
struct Bf16DotKernel {
  using a_element = std::uint32_t;  // a couple of bf16 (A[i, 2p] in the low half)
  using b_element = std::uint16_t;  // bf16 bits, two rows of B interleaved column by column
  static constexpr int mr = 14;     // 14 rows x 2 zmm = 28 accumulators + 2 B vectors + 1 broadcast of 32
  static constexpr int nr = 32;     // two zmm of 16 float lanes
  /// K slice, in elements (even: whole pairs): 256 pairs, a 32 KiB B micro-panel that stays in L1 (1024
  /// measured the same on Zen 5).
  static constexpr index_t kc = 512;
  static constexpr index_t mc = mr * 12;  // A block: 168 rows x 256 couples = 168 KiB (L2)
  static constexpr index_t nc = (index_t{4} << 20) / (kc * 2) / nr * nr;  // B block of at most 4 MiB
  static_assert(kc % 2 == 0 && nc % nr == 0 && mc % mr == 0);

  static constexpr index_t a_panel_size(index_t kc) noexcept { return mr * pairs_of(kc); }
  static constexpr index_t b_panel_size(index_t kc) noexcept { return nr * 2 * pairs_of(kc); }

  /// C[0:rows, 0:cols] <- merge(A_panel * B_panel) over pairs_of(kc) k-pairs (same merge rule as the f32 kernel).
  static void tile(index_t kc, const std::uint32_t* __restrict a, const std::uint16_t* __restrict b, float* c,
                   index_t ldc, int rows, int cols, const TileUpdate& update, const std::uint16_t* b_next,
                   const std::uint32_t* a_next) noexcept {
    using batch = xsimd::batch<float, xsimd::avx512f>;
    constexpr int MR = mr, NR = nr;
    const index_t pairs = pairs_of(kc);
    const CTilePrefetch<NR> c_prefetch(c, ldc, rows, cols, pairs, MR);
    // Plain __m512 accumulators: held in xsimd batches, GCC 12 kept all 28 on the stack in some translation units
    // once the loop was split for the C prefetch (157 instead of 350 GFLOP/s in the benchmark).
    __m512 acc[MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (index_t p = 0; p < pairs; ++p) {
      c_prefetch.at(p);
      const __m512bh b0 = (__m512bh)_mm512_load_si512(b);
      const __m512bh b1 = (__m512bh)_mm512_load_si512(b + NR);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i]));
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
      }
      if (b_next) {  // the next B micro-panel, two cache lines per pair
        __builtin_prefetch(b_next + p * 2 * NR, 0, 3);
        __builtin_prefetch(b_next + p * 2 * NR + NR, 0, 3);
      }
      if (a_next) __builtin_prefetch(a_next + p * MR, 0, 3);  // the next A panel, as the f32 kernel does
      a += MR;
      b += 2 * NR;
    }
    batch result[MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) result[i][0] = acc[i][0], result[i][1] = acc[i][1];
    store_tile(result, c, ldc, rows, cols, update);
  }
};

/// In-register transpose of the 16 x 16 tile of 32-bit elements r[0..15] (row i becomes column i): interleave
/// 32-bit pairs, then 64-bit pairs (s[4g + c] lane q = column 4q + c of rows 4g..4g+3), then move 128-bit lanes
/// (a 4 x 4 transpose of lanes across each four registers of one c).
inline void transpose_16x16(__m512i r[16]) noexcept {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {
    r[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    r[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    r[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    r[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44), v1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
    const __m512i v2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44), v3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
    t[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);       // lane 0 of each group: column c
    t[4 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);   // lane 1: column 4 + c
    t[8 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);   // lane 2: column 8 + c
    t[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);  // lane 3: column 12 + c
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

/// A source for the vdpbf16ps kernel: float activations (any strides), rounded to bf16 couples while packed.
template <int MR>
struct Bf16PairASource {
  static_assert(MR <= 16, "one 16 x 16 transpose covers a panel's rows");
  static constexpr bool prepacked = false;
  StridedMatrix<float> matrix;

  /// Rows [i0, i0 + rows) x [p0, p0 + kc) into one MR-row panel of couples: dst[p * MR + i]. Per 16 pairs, each
  /// row's 32 floats are rounded by one vcvtne2ps2bf16 into 16 couples (32-bit lanes), and a 16 x 16 transpose
  /// turns the rows' vectors into the panel's steps. Every rounding of A goes through that instruction, whatever
  /// A's layout (a transposed or strided A is gathered into rows first), so all layouts give the same bits.
  void pack_panel(std::uint32_t* dst, index_t i0, int rows, index_t p0, index_t kc) const noexcept {
    alignas(64) float gathered[MR][Bf16DotKernel::kc];  // used only by a transposed or strided A (28 KiB)
    const float* row[MR] = {};
    for (int i = 0; i < rows; ++i) {
      row[i] = &matrix(i0 + i, p0);
      if (matrix.col_stride != 1) {
        for (index_t k = 0; k < kc; ++k) gathered[i][k] = row[i][k * matrix.col_stride];
        row[i] = gathered[i];
      }
    }
    const index_t pairs = pairs_of(kc);
    const auto first = [](index_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1); };
    for (index_t q0 = 0; q0 < pairs; q0 += 16) {
      const index_t k0 = 2 * q0, left = std::min<index_t>(32, kc - k0);  // floats of this step in each row
      const __mmask16 lo = first(std::min<index_t>(left, 16)), hi = first(std::max<index_t>(left - 16, 0));
      __m512i r[16];
      for (int i = 0; i < 16; ++i) {
        if (i >= rows) {
          r[i] = _mm512_setzero_si512();
          continue;
        }
        // Fourteen row streams from memory outrun the hardware prefetcher: ask for the lines two steps ahead
        // (+10% for M=4096, N=320, K=2880 on Zen 5). An address past the row is harmless for a prefetch.
        const auto ahead = reinterpret_cast<std::uintptr_t>(row[i] + k0) + 64 * sizeof(float);
        _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
        const __m512 low = _mm512_maskz_loadu_ps(lo, row[i] + k0);  // a missing odd element reads as zero
        const __m512 high = hi ? _mm512_maskz_loadu_ps(hi, row[i] + k0 + 16) : _mm512_setzero_ps();
        r[i] = (__m512i)_mm512_cvtne2ps_pbh(high, low);
      }
      transpose_16x16(r);
      const index_t steps = std::min<index_t>(16, pairs - q0);
      for (index_t p = 0; p < steps; ++p) _mm512_mask_storeu_epi32(dst + (q0 + p) * MR, first(MR), r[p]);
    }
  }
};

/// Packs columns [j0, j0 + nc) x rows [p0, p0 + kc) of a bf16 B into NR-column pair panels, panel q at
/// dst + q * b_panel_size(kc): dst[(p * NR + j) * 2 + h] = B[p0 + 2p + h, j0 + q * NR + j], zero past the edges.
template <int NR>
inline void pack_b_pairs_block(std::uint16_t* __restrict dst, const StridedMatrix<bf16>& b, index_t j0, index_t nc,
                               index_t p0, index_t kc) noexcept {
  static_assert(NR == 32, "the row-major path interleaves two rows of 32 bf16 per panel");
  const index_t pairs = pairs_of(kc), panel = Bf16DotKernel::b_panel_size(kc);
  const index_t panels = (nc + NR - 1) / NR;
  if (b.col_stride == 1) {
    // Row-major: rows 2p and 2p+1 are contiguous; a 16-bit interleave of 32 columns of each gives one pair step.
    // Panel by panel: each row contributes one 64-byte line to a panel (panels are 32 KiB apart, so writing all
    // panels row by row would land every store of a step in the same L1 set).
    const __m512i low = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                         37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i high = _mm512_add_epi16(low, _mm512_set1_epi16(16));
    for (index_t q = 0; q < panels; ++q) {
      const index_t cols = std::min<index_t>(NR, nc - q * NR);
      const __mmask32 valid = cols == NR ? ~__mmask32{0} : (__mmask32{1} << cols) - 1;
      std::uint16_t* out = dst + q * panel;
      for (index_t p = 0; p < pairs; ++p) {
        const auto* r0 = reinterpret_cast<const std::uint16_t*>(&b(p0 + 2 * p, j0 + q * NR));
        const __m512i x0 = _mm512_maskz_loadu_epi16(valid, r0);
        const __m512i x1 = 2 * p + 1 < kc ? _mm512_maskz_loadu_epi16(valid, r0 + b.row_stride) : _mm512_setzero_si512();
        _mm512_store_si512(out + p * 2 * NR, _mm512_permutex2var_epi16(x0, low, x1));
        _mm512_store_si512(out + p * 2 * NR + NR, _mm512_permutex2var_epi16(x0, high, x1));
      }
    }
    return;
  }
  // Column-major (weights W [N, K] used as W^T) or general strides: each column is read along k.
  for (index_t q = 0; q < panels; ++q) {
    std::uint16_t* out = dst + q * panel;
    const index_t cols = std::min<index_t>(NR, nc - q * NR);
    if (cols < NR) std::fill(out, out + panel, std::uint16_t{0});
    for (index_t j = 0; j < cols; ++j) {
      const bf16* column = &b(p0, j0 + q * NR + j);
      for (index_t k = 0; k < kc; ++k) out[((k / 2) * NR + j) * 2 + k % 2] = column[k * b.row_stride].bits;
      if (kc % 2) out[((kc / 2) * NR + j) * 2 + 1] = 0;
    }
  }
}

template <int NR>
struct Bf16PairBSource {
  static constexpr bool prepacked = false;
  StridedMatrix<bf16> matrix;
  void pack_block(std::uint16_t* dst, index_t j0, index_t nc, index_t p0, index_t kc) const noexcept {
    pack_b_pairs_block<NR>(dst, matrix, j0, nc, p0, kc);
  }
};

/// A B operand packed once into pair panels: slice p0 (all slices but the last are KC long) starts at
/// p0 * padded_n, and within it the panel of column j0 at j0 * 2 * pairs_of(kc).
struct Bf16PairPrepackedSource {
  static constexpr bool prepacked = true;
  const std::uint16_t* data;
  index_t padded_n;
  const std::uint16_t* panel(index_t j0, index_t p0, index_t kc) const noexcept {
    return data + p0 * padded_n + j0 * 2 * pairs_of(kc);
  }
};

/// Packing buffers for a vdpbf16ps GEMM (A and B blocks in 32-bit words).
inline Workspace bf16_dot_workspace(index_t m, index_t n, index_t k, bool pack_b) {
  using K = Bf16DotKernel;
  const index_t pairs = pairs_of(k), slice_pairs = K::kc / 2;
  return Workspace(Workspace::block_floats(m, pairs, K::mr, K::mc, slice_pairs),
                   pack_b ? Workspace::block_floats(n, pairs, K::nr, K::nc, slice_pairs) : 0);
}

/// The vdpbf16ps kernel's entry points on plain operands (gemm/bf16_dot.hpp calls them, or the kernel library's
/// copy of them: src/kernel_library/bf16_dot_table.cpp).

/// C = alpha * bf16(A) * B + beta * C, B packed per call.
inline void bf16_dot_gemm(float alpha, const StridedMatrix<float>& a, const StridedMatrix<bf16>& b, float beta, float* c,
                          index_t ldc) {
  using K = Bf16DotKernel;
  const Workspace ws = bf16_dot_workspace(a.rows, b.cols, a.cols, true);
  run_blocked_with<K>(a.rows, b.cols, a.cols, alpha, Bf16PairASource<K::mr>{a}, Bf16PairBSource<K::nr>{b}, beta, c, ldc,
                      ws);
}

/// Packs all of B [K x N] into pair panels at `out` (padded_n = N rounded up to NR; see PackedBf16Weights).
inline void bf16_dot_pack(const StridedMatrix<bf16>& b, std::uint16_t* out) noexcept {
  using K = Bf16DotKernel;
  const index_t padded_n = (b.cols + K::nr - 1) / K::nr * K::nr;
  for (index_t p0 = 0; p0 < b.rows; p0 += K::kc) {
    const index_t kc = std::min(K::kc, b.rows - p0);
    pack_b_pairs_block<K::nr>(out + p0 * padded_n, b, 0, b.cols, p0, kc);
  }
}

/// C = alpha * bf16(A) * packed(B) + beta * C, B [k x n] packed by bf16_dot_pack.
inline void bf16_dot_gemm_packed(float alpha, const StridedMatrix<float>& a, const std::uint16_t* b, index_t k, index_t n,
                                 float beta, float* c, index_t ldc) {
  using K = Bf16DotKernel;
  const Workspace ws = bf16_dot_workspace(a.rows, n, k, false);
  run_blocked_with<K>(a.rows, n, k, alpha, Bf16PairASource<K::mr>{a},
                      Bf16PairPrepackedSource{b, (n + K::nr - 1) / K::nr * K::nr}, beta, c, ldc, ws);
}

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END

#endif  // __AVX512BF16__
