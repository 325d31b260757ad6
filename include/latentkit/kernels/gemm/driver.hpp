// GEMM driver: the cache-blocked loop nest around the micro-kernel, and its threading.
//
//   for jc over N in NC blocks            B block (KC x NC) packed once, shared by all threads (L3)
//     for pc over K in KC slices          slices run in order: each C element sums its slices in K order
//       for ic over M in MC blocks        A block (MC x KC) packed once, shared by all threads (L2)
//         for (jr, ir) NR x MR tiles      split statically between threads; the KC x NR B panel stays in L1
//           micro_kernel
//
// Threads split the packing of each block and the tiles of each block; they never split K. Every C element is
// owned by exactly one thread for each slice and is summed in the same order for any thread count, so results
// are bit-identical whatever OMP_NUM_THREADS is.
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
/// packing A costs about one pass over A per NC block, amortised over N / NR micro-panels, so below ~32 panels
/// (measured on Zen 3: 2x for N = 40, +15% for N = 320, neutral to noisy above) the copy costs more than it saves.
inline constexpr index_t direct_a_max_n = 512;

/// The blocking of the kernel simd::dispatch runs on this CPU.
inline BlockingInfo running_blocking() noexcept { return simd::dispatch(detail::BlockingQuery{})(); }

/// Packing buffers for one GEMM call. They are allocated before entering the dispatched kernel, whose call
/// operator is noexcept (xsimd::dispatch): an allocation failure is then a std::bad_alloc for the caller.
struct Workspace {
  AlignedFloats a, b;
  Workspace(index_t m, index_t n, index_t k, bool pack_a, bool pack_b) {
    const BlockingInfo bi = running_blocking();
    const index_t kc = std::min(bi.kc, std::max<index_t>(k, 1));
    if (pack_a) a = AlignedFloats(std::min(bi.mc, ceil_div(std::max<index_t>(m, 1), bi.mr) * bi.mr) * kc);
    if (pack_b) b = AlignedFloats(std::min(bi.nc, ceil_div(std::max<index_t>(n, 1), bi.nr) * bi.nr) * kc);
  }
};

/// C[M x N] (row stride ldc, unit column stride) = alpha * A * B + beta * C with A, B drawn from panel sources.
/// `workspace` must come from Workspace(m, n, k, !ASource::prepacked, !BSource::prepacked).
template <class Arch, class ASource, class BSource>
void run_blocked(Arch, index_t m, index_t n, index_t k, float alpha, const ASource& a, const BSource& b, float beta,
                 float* c, index_t ldc, const Workspace& workspace) noexcept {
  using blocking = GemmBlocking<Arch>;
  constexpr int MR = blocking::mr, NR = blocking::nr;
  constexpr index_t MC = blocking::mc, KC = blocking::kc, NC = blocking::nc;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) return scale_output(m, n, beta, c, ldc);
  const AlignedFloats& a_buffer = workspace.a;
  // Skinny products (few B panels to amortise A's packing over) read a float row-major A in place.
  bool direct_a = false;
  if constexpr (!ASource::prepacked) direct_a = n <= direct_a_max_n && a.readable_in_place();
  const AlignedFloats& b_buffer = workspace.b;

  LATENTKIT_OMP(parallel)
  {
    for (index_t jc = 0; jc < n; jc += NC) {
      const index_t nc = std::min(NC, n - jc);
      const index_t n_panels = ceil_div(nc, NR);
      for (index_t pc = 0; pc < k; pc += KC) {
        const index_t kc = std::min(KC, k - pc);
        const float* b_block;
        if constexpr (BSource::prepacked) {
          b_block = b.panel(jc, pc, kc);
        } else {
          LATENTKIT_OMP(for schedule(static))
          for (index_t jr = 0; jr < n_panels; ++jr)
            b.pack_panel(b_buffer.get() + jr * NR * kc, jc + jr * NR, static_cast<int>(std::min<index_t>(NR, nc - jr * NR)),
                         pc, kc);
          b_block = b_buffer.get();
        }
        const TileUpdate update{alpha, beta, pc == 0};
        for (index_t ic = 0; ic < m; ic += MC) {
          const index_t mc = std::min(MC, m - ic);
          const index_t m_panels = ceil_div(mc, MR);
          const float* a_block;
          if constexpr (ASource::prepacked) {
            a_block = a.panel(ic, pc, kc);
          } else {
            // In-place A packs only its partial last panel (the kernel needs MR real rows).
            LATENTKIT_OMP(for schedule(static))
            for (index_t ir = 0; ir < m_panels; ++ir)
              if (!direct_a || mc - ir * MR < MR)
                a.pack_panel(a_buffer.get() + ir * MR * kc, ic + ir * MR,
                             static_cast<int>(std::min<index_t>(MR, mc - ir * MR)), pc, kc);
            a_block = a_buffer.get();
          }
          // Consecutive tiles of one thread share a B panel (jr outer), which stays in L1 while A streams from L2.
          LATENTKIT_OMP(for collapse(2) schedule(static))
          for (index_t jr = 0; jr < n_panels; ++jr)
            for (index_t ir = 0; ir < m_panels; ++ir) {
              const index_t i = ic + ir * MR, j = jc + jr * NR;
              const int rows = static_cast<int>(std::min<index_t>(MR, m - i));
              const int cols = static_cast<int>(std::min<index_t>(NR, n - j));
              if constexpr (!ASource::prepacked) {
                if (direct_a && rows == MR) {
                  micro_kernel<Arch, true>(kc, a.in_place(i, pc), a.matrix.row_stride, b_block + jr * NR * kc,
                                           c + i * ldc + j, ldc, rows, cols, update);
                  continue;
                }
              }
              micro_kernel<Arch>(kc, a_block + ir * MR * kc, 0, b_block + jr * NR * kc, c + i * ldc + j, ldc, rows,
                                 cols, update);
            }
        }
      }
    }
  }
}

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
