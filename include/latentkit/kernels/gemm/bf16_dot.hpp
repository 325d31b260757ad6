// bf16 x bf16 -> f32 GEMM with AVX512-BF16 `vdpbf16ps`, for CPUs that have it (Cooper Lake, Sapphire Rapids,
// Zen 4 and later). Compiled only when the target enables AVX512-BF16 (-mavx512bf16 or -march=native there).
//
// vdpbf16ps multiplies pairs of bf16 and adds both products to a float lane: acc[j] += a0 * b0[j] + a1 * b1[j].
// So the operands are packed in k-pairs: a B panel holds, for each pair (2p, 2p+1), NR interleaved couples
// (B[2p, j], B[2p+1, j]); a row of A is broadcast one 32-bit couple (A[i, 2p], A[i, 2p+1]) at a time. Twice the
// multiply throughput of f32 FMA, at the price of rounding the activations A to bf16 (the weights B already are):
// results differ from gemm() on the f32 activations by that rounding, so this is an opt-in entry point, not a
// dispatch target of gemm().
//
// Threads split M only, in fixed MR-row panels, and each output sums its K pairs in order: bit-identical for any
// thread count. On CPUs without AVX512-BF16 the running path for bf16 weights is gemm()'s convert-while-packing.
#pragma once

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>

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

struct Bf16DotBlocking {
  static constexpr int mr = 8;        // 8 rows x 2 zmm = 16 accumulators + 2 B vectors + 1 broadcast of 32
  static constexpr int nr = 32;       // two zmm of 16 float lanes
  static constexpr index_t kc = 512;  // K slice (an even number: pairs); 32 KiB of bf16 B panel per slice
};

/// Packs B rows [p0, p0 + kc) x columns [j0, j0 + 32) as k-pairs: dst[(p * 32 + j) * 2 + {0, 1}], zero padded.
inline void pack_b_pairs(std::uint16_t* dst, const StridedMatrix<bf16>& b, index_t j0, int cols, index_t p0,
                         index_t kc) noexcept {
  constexpr int NR = Bf16DotBlocking::nr;
  for (index_t p = 0; p < (kc + 1) / 2; ++p)
    for (int j = 0; j < NR; ++j)
      for (int h = 0; h < 2; ++h) {
        const index_t k = 2 * p + h;
        dst[(p * NR + j) * 2 + h] = (j < cols && k < kc) ? b(p0 + k, j0 + j).bits : std::uint16_t{0};
      }
}

/// Rounds A rows [i0, i0 + rows) x [p0, p0 + kc) to bf16 couples: dst[p * MR + i] = (A[i, 2p], A[i, 2p+1]).
inline void pack_a_pairs(std::uint32_t* dst, const StridedMatrix<float>& a, index_t i0, int rows, index_t p0,
                         index_t kc) noexcept {
  constexpr int MR = Bf16DotBlocking::mr;
  for (index_t p = 0; p < (kc + 1) / 2; ++p)
    for (int i = 0; i < MR; ++i) {
      std::uint32_t couple = 0;
      if (i < rows) {
        const std::uint32_t lo = bf16(a(i0 + i, p0 + 2 * p)).bits;
        const std::uint32_t hi = 2 * p + 1 < kc ? bf16(a(i0 + i, p0 + 2 * p + 1)).bits : 0u;
        couple = lo | (hi << 16);
      }
      dst[p * MR + i] = couple;
    }
}

/// One 8 x 32 tile over `pairs` k-pairs; merged into C like the f32 micro-kernel.
inline void bf16_dot_micro_kernel(index_t pairs, const std::uint32_t* a, const std::uint16_t* b, float* c, index_t ldc,
                                  int rows, int cols, float alpha, float beta, bool first) noexcept {
  constexpr int MR = Bf16DotBlocking::mr, NR = Bf16DotBlocking::nr;
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (index_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * NR * 2);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * NR * 2 + 32);
    for (int i = 0; i < MR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[p * MR + i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
  }
  alignas(64) float tile[MR * NR];
  for (int i = 0; i < MR; ++i) {
    _mm512_store_ps(tile + i * NR, acc[i][0]);
    _mm512_store_ps(tile + i * NR + 16, acc[i][1]);
  }
  const TileUpdate update{alpha, beta, first};
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      float& out = c[i * ldc + j];
      out = merge_scalar(tile[i * NR + j], (first && beta == 0.0f) ? 0.0f : out, update);
    }
}

}  // namespace gemm_kernel

/// C[M x N] = alpha * bf16(A) * B + beta * C with A float [M x K] (row stride lda, rounded to bf16 here) and
/// B bf16 [K x N] (row stride ldb): the vdpbf16ps path. C is not read when beta == 0.
inline void gemm_bf16_dot(index_t m, index_t n, index_t k, float alpha, const float* a, index_t lda, const bf16* b,
                          index_t ldb, float beta, float* c, index_t ldc) {
  using namespace gemm_kernel;
  using blocking = Bf16DotBlocking;
  if (m < 0 || n < 0 || k < 0) throw ShapeError("gemm_bf16_dot: negative extent");
  if ((k > 0 && (lda < k || ldb < n)) || ldc < n) throw ShapeError("gemm_bf16_dot: leading dimension too small");
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) return scale_output(m, n, beta, c, ldc);
  const StridedMatrix<float> am{a, m, k, lda, 1};
  const StridedMatrix<bf16> bm{b, k, n, ldb, 1};
  const index_t n_panels = ceil_div(n, blocking::nr), m_panels = ceil_div(m, blocking::mr);
  const index_t max_pairs = (std::min(blocking::kc, k) + 1) / 2;
  struct U16Free { void operator()(std::uint16_t* p) const noexcept { ::operator delete[](p, std::align_val_t{64}); } };
  struct U32Free { void operator()(std::uint32_t* p) const noexcept { ::operator delete[](p, std::align_val_t{64}); } };
  std::unique_ptr<std::uint16_t[], U16Free> b_pack(static_cast<std::uint16_t*>(
      ::operator new[](static_cast<std::size_t>(n_panels * max_pairs * blocking::nr * 2) * 2, std::align_val_t{64})));
  std::unique_ptr<std::uint32_t[], U32Free> a_pack(static_cast<std::uint32_t*>(
      ::operator new[](static_cast<std::size_t>(m_panels * max_pairs * blocking::mr) * 4, std::align_val_t{64})));
  for (index_t pc = 0; pc < k; pc += blocking::kc) {
    const index_t kc = std::min(blocking::kc, k - pc), pairs = (kc + 1) / 2;
    LATENTKIT_OMP(parallel)
    {
      LATENTKIT_OMP(for schedule(static))
      for (index_t jr = 0; jr < n_panels; ++jr)
        pack_b_pairs(b_pack.get() + jr * pairs * blocking::nr * 2, bm, jr * blocking::nr,
                     static_cast<int>(std::min<index_t>(blocking::nr, n - jr * blocking::nr)), pc, kc);
      LATENTKIT_OMP(for schedule(static))
      for (index_t ir = 0; ir < m_panels; ++ir)
        pack_a_pairs(a_pack.get() + ir * pairs * blocking::mr, am, ir * blocking::mr,
                     static_cast<int>(std::min<index_t>(blocking::mr, m - ir * blocking::mr)), pc, kc);
      LATENTKIT_OMP(for collapse(2) schedule(static))
      for (index_t ir = 0; ir < m_panels; ++ir)
        for (index_t jr = 0; jr < n_panels; ++jr) {
          const index_t i = ir * blocking::mr, j = jr * blocking::nr;
          bf16_dot_micro_kernel(pairs, a_pack.get() + ir * pairs * blocking::mr,
                                b_pack.get() + jr * pairs * blocking::nr * 2, c + i * ldc + j, ldc,
                                static_cast<int>(std::min<index_t>(blocking::mr, m - i)),
                                static_cast<int>(std::min<index_t>(blocking::nr, n - j)), alpha, beta, pc == 0);
        }
    }
  }
}

LATENTKIT_NAMESPACE_END

#endif  // __AVX512BF16__
