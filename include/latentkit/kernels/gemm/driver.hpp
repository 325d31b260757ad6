// GEMM driver: the cache-blocked loop nest around the micro-kernel, and its threading.
//
//   for jc over N in NC blocks            B block (KC x NC) packed (L3)
//     for pc over K in KC slices          slices run in order: each C element sums its slices in K order
//       for ic over M in MC blocks        A block (MC x KC) packed (L2)
//         for jr, ir: NR x MR tiles       the KC x NR B panel stays in L1 while A panels stream from L2
//           micro_kernel
//
// Threads each own a slab of C (whole MR-row or NR-column panels) and never split K. Every C element is summed
// in the same order for any thread count, so results are bit-identical whatever OMP_NUM_THREADS is.
#pragma once
#include <algorithm>

#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/kernels/gemm/blocking.hpp"
#include "latentkit/kernels/gemm/microkernel.hpp"
#include "latentkit/kernels/gemm/pack.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

inline index_t ceil_div(index_t a, index_t b) noexcept { return (a + b - 1) / b; }

/// C = beta * C (the whole result when K == 0 or alpha == 0); C is not read when beta == 0.
inline void scale_output(index_t m, index_t n, float beta, float* c, index_t ldc) noexcept {
  LATENTKIT_OMP(parallel for schedule(static))
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

/// Up to this many columns of C, a float row-major A is read in place instead of packed (see micro_kernel):
/// packing A costs about one pass over A per NC block, amortised over N / NR micro-panels. With the transposing
/// pack (pack_a_panel) that pass is cheap, and on Zen 3 packing wins from N = 320 on (+3-5% at N = 320) while
/// reading in place still wins at N = 40 (attention P*V, +5-25%).
inline constexpr index_t direct_a_max_n = 64;

/// The blocking of the kernel simd::dispatch runs on this CPU.
inline BlockingInfo running_blocking() noexcept { return simd::dispatch(detail::BlockingQuery{})(); }

/// Packing buffers for one GEMM call: one A block and one B block per thread. They are allocated before entering
/// the dispatched kernel, whose call operator is noexcept (xsimd::dispatch): an allocation failure is then a
/// std::bad_alloc for the caller.
struct Workspace {
  AlignedFloats a, b;
  index_t a_stride = 0, b_stride = 0;  // floats per thread
  int threads = 1;
  Workspace(index_t m, index_t n, index_t k, bool pack_a, bool pack_b) : threads(std::max(1, max_threads())) {
    const BlockingInfo bi = running_blocking();
    const index_t kc = std::min(bi.kc, std::max<index_t>(k, 1));
    if (pack_a) a_stride = std::min(bi.mc, ceil_div(std::max<index_t>(m, 1), bi.mr) * bi.mr) * kc;
    if (pack_b) b_stride = std::min(bi.nc, ceil_div(std::max<index_t>(n, 1), bi.nr) * bi.nr) * kc;
    a_stride = ceil_div(a_stride, 16) * 16;  // keep every thread's block 64-byte aligned
    b_stride = ceil_div(b_stride, 16) * 16;
    if (a_stride) a = AlignedFloats(a_stride * threads);
    if (b_stride) b = AlignedFloats(b_stride * threads);
  }
};

/// The blocked loops over the sub-matrix C[i_begin:i_end, j_begin:j_end] on one thread, with its own buffers.
/// i_begin and j_begin are multiples of MR and NR, so tiles (and their rounding) are those of the whole matrix.
template <class Arch, class ASource, class BSource>
void run_block_range(index_t i_begin, index_t i_end, index_t j_begin, index_t j_end, index_t k, float alpha,
                     const ASource& a, const BSource& b, float beta, float* c, index_t ldc, float* a_buffer,
                     float* b_buffer, bool direct_a) noexcept {
  using blocking = GemmBlocking<Arch>;
  constexpr int MR = blocking::mr, NR = blocking::nr;
  constexpr index_t MC = blocking::mc, KC = blocking::kc, NC = blocking::nc;
  for (index_t jc = j_begin; jc < j_end; jc += NC) {
    const index_t nc = std::min(NC, j_end - jc);
    const index_t n_panels = ceil_div(nc, NR);
    for (index_t pc = 0; pc < k; pc += KC) {
      const index_t kc = std::min(KC, k - pc);
      const float* b_block;
      if constexpr (BSource::prepacked) {
        b_block = b.panel(jc, pc, kc);
      } else {
        b.pack_block(b_buffer, jc, nc, pc, kc);  // a whole block at once: the source picks the best read order
        b_block = b_buffer;
      }
      const TileUpdate update{alpha, beta, pc == 0};
      for (index_t ic = i_begin; ic < i_end; ic += MC) {
        const index_t mc = std::min(MC, i_end - ic);
        const index_t m_panels = ceil_div(mc, MR);
        const float* a_block;
        if constexpr (ASource::prepacked) {
          a_block = a.panel(ic, pc, kc);
        } else {
          // In-place A packs only its partial last panel (the kernel needs MR real rows).
          for (index_t ir = 0; ir < m_panels; ++ir)
            if (!direct_a || mc - ir * MR < MR)
              a.pack_panel(a_buffer + ir * MR * kc, ic + ir * MR, static_cast<int>(std::min<index_t>(MR, mc - ir * MR)),
                           pc, kc);
          a_block = a_buffer;
        }
        // jr outer: one KC x NR B panel stays in L1 while the micro-kernel sweeps the block's A panels (L2).
        for (index_t jr = 0; jr < n_panels; ++jr)
          for (index_t ir = 0; ir < m_panels; ++ir) {
            const index_t i = ic + ir * MR, j = jc + jr * NR;
            const int rows = static_cast<int>(std::min<index_t>(MR, i_end - i));
            const int cols = static_cast<int>(std::min<index_t>(NR, j_end - j));
            // The last A panel of a sweep prefetches the next B micro-panel (the only one not already in L1).
            const float* b_next = (ir + 1 == m_panels && jr + 1 < n_panels) ? b_block + (jr + 1) * NR * kc : nullptr;
            if constexpr (!ASource::prepacked) {
              if (direct_a && rows == MR) {
                micro_kernel<Arch, true>(kc, a.in_place(i, pc), a.matrix.row_stride, b_block + jr * NR * kc,
                                         c + i * ldc + j, ldc, rows, cols, update, b_next);
                continue;
              }
            }
            micro_kernel<Arch>(kc, a_block + ir * MR * kc, 0, b_block + jr * NR * kc, c + i * ldc + j, ldc, rows,
                               cols, update, b_next);
          }
      }
    }
  }
}

/// C[M x N] (row stride ldc, unit column stride) = alpha * A * B + beta * C with A, B drawn from panel sources.
/// `workspace` must come from Workspace(m, n, k, !ASource::prepacked, !BSource::prepacked).
///
/// Threading: the C matrix is cut once, up front, into one slab per thread (whole MR-row panels or whole NR-column
/// panels), and each thread runs the blocked loops on its slab with its own packing buffers. No barrier inside:
/// on a loaded machine a descheduled thread delays only its own slab (a design with shared packed blocks needs
/// two barriers per block and stalls every thread on every preemption). The slab direction is the one that
/// duplicates the least packing: cutting M makes every thread pack its own copy of B, cutting N of A.
template <class Arch, class ASource, class BSource>
void run_blocked(Arch, index_t m, index_t n, index_t k, float alpha, const ASource& a, const BSource& b, float beta,
                 float* c, index_t ldc, const Workspace& workspace) noexcept {
  using blocking = GemmBlocking<Arch>;
  constexpr int MR = blocking::mr, NR = blocking::nr;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) return scale_output(m, n, beta, c, ldc);
  // Skinny products (few B panels to amortise A's packing over) read a float row-major A in place.
  bool direct_a = false;
  if constexpr (!ASource::prepacked) direct_a = n <= direct_a_max_n && a.readable_in_place();
  const index_t m_panels = ceil_div(m, MR), n_panels = ceil_div(n, NR);
  const index_t duplicate_if_m_cut = BSource::prepacked ? 0 : n;             // extra B packing per thread (x K)
  const index_t duplicate_if_n_cut = (ASource::prepacked || direct_a) ? 0 : m;  // extra A packing per thread (x K)
  const int threads = workspace.threads;
  bool cut_m = duplicate_if_m_cut < duplicate_if_n_cut ||
               (duplicate_if_m_cut == duplicate_if_n_cut && m_panels >= n_panels);
  // Too few panels to share evenly (N = 40 is 3 panels for 2 threads) costs more than duplicated packing.
  const index_t few = 4 * static_cast<index_t>(threads);
  if (cut_m && m_panels < few && n_panels >= few) cut_m = false;
  if (!cut_m && n_panels < few && m_panels >= few) cut_m = true;

  LATENTKIT_OMP(parallel num_threads(threads))
  {
#if LATENTKIT_HAS_OPENMP
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int t = 0, team = 1;
#endif
    const index_t panels = cut_m ? m_panels : n_panels;
    const index_t first = panels * t / team, last = panels * (t + 1) / team;
    if (first < last) {
      float* a_buffer = workspace.a.get() ? workspace.a.get() + t * workspace.a_stride : nullptr;
      float* b_buffer = workspace.b.get() ? workspace.b.get() + t * workspace.b_stride : nullptr;
      if (cut_m)
        run_block_range<Arch>(first * MR, std::min(m, last * MR), 0, n, k, alpha, a, b, beta, c, ldc, a_buffer,
                              b_buffer, direct_a);
      else
        run_block_range<Arch>(0, m, first * NR, std::min(n, last * NR), k, alpha, a, b, beta, c, ldc, a_buffer,
                              b_buffer, direct_a);
    }
  }
}

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
