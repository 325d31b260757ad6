// GEMM driver: the cache-blocked loop nest around the micro-kernel, and its threading.
//
//   for jc over N in NC blocks            B block (KC x NC) packed (L3); a float row-major B is instead copied
//                                         into it by the first tile of each micro-panel (CopiedBPanel)
//     for pc over K in KC slices          slices run in order: each C element sums its slices in K order
//       for ic over M in MC blocks        A block (MC x KC) packed (L2)
//         for jr, ir: NR x MR tiles       the KC x NR B panel stays in L1 (L2 with AVX-512) while A panels stream from L2
//           micro_kernel
//
// Threads each own a slab of C (whole MR-row or NR-column panels) and never split K. Every C element is summed
// in the same order for any thread count, so results are bit-identical whatever OMP_NUM_THREADS is.
#pragma once
#include <algorithm>
#include <concepts>
#include <mutex>
#include <utility>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/kernels/gemm/blocking.hpp"
#include "latentkit/kernels/gemm/microkernel.hpp"
#include "latentkit/kernels/gemm/pack.hpp"
#include "latentkit/kernels/gemm/table_operands.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

inline index_t ceil_div(index_t a, index_t b) noexcept { return (a + b - 1) / b; }

/// C = beta * C (the whole result when K == 0 or alpha == 0); C is not read when beta == 0.
inline void scale_output(index_t m, index_t n, float beta, float* c, index_t ldc) noexcept {
  LATENTKIT_OMP(parallel for schedule(static))
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

/// The blocking of the f32 kernel GEMM calls run on this CPU (a kernel-library table's, or simd::dispatch's).
inline BlockingInfo running_blocking() {
  if (const kernel_library::Table* library = simd::library_kernels()) return from_table(library->blocking);
  return simd::dispatch(detail::BlockingQuery{})();
}

/// Packing memory kept between GEMM calls. A fresh block of a few MiB comes from the operating system on every
/// call (the allocator returns large blocks when they are freed) and is page-faulted in, zeroed, page by page:
/// on a virtual machine that cost 15% of a 1024^3 product. The cache holds one spare block, the largest given
/// back; a caller takes it when it is big enough, and any other concurrent caller allocates its own. A mutex
/// (not thread_local storage) guards it, so it works unchanged under a JIT interpreter (clang-repl).
class ScratchCache {
 public:
  static AlignedFloats take(index_t floats) {
    Cache& cache = instance();
    {
      const std::lock_guard<std::mutex> lock(cache.mutex);
      if (cache.spare.get() && cache.spare.size >= floats) return std::move(cache.spare);
    }
    return AlignedFloats(floats);
  }
  static void give_back(AlignedFloats&& block) noexcept {
    Cache& cache = instance();
    const std::lock_guard<std::mutex> lock(cache.mutex);
    if (!cache.spare.get() || block.size > cache.spare.size) cache.spare = std::move(block);
  }
  /// Frees the spare block (the memory a long-lived process stops needing).
  static void release() noexcept {
    Cache& cache = instance();
    const std::lock_guard<std::mutex> lock(cache.mutex);
    cache.spare = AlignedFloats{};
  }

 private:
  struct Cache {
    std::mutex mutex;
    AlignedFloats spare;
  };
  static Cache& instance() noexcept {
    static Cache cache;  // constructed on first use: no static initialisation order to rely on
    return cache;
  }
};

/// Packing buffers for one GEMM call: one A block and one B block per thread, in one block from ScratchCache.
/// They are set up before entering the dispatched kernel, whose call operator is noexcept (xsimd::dispatch): an
/// allocation failure is then a std::bad_alloc for the caller.
struct Workspace {
  index_t a_stride = 0, b_stride = 0;  // floats per thread
  int threads = 1;
  AlignedFloats memory;                // threads x (A block, B block)
  /// Buffers of the float kernel simd::dispatch runs.
  Workspace(index_t m, index_t n, index_t k, bool pack_a, bool pack_b)
      : Workspace(m, n, k, pack_a, pack_b, running_blocking()) {}
  /// Buffers of `a_floats` and `b_floats` per thread (a kernel whose panels are not float: the bytes / 4).
  Workspace(index_t a_floats, index_t b_floats)
      : a_stride(ceil_div(a_floats, 16) * 16), b_stride(ceil_div(b_floats, 16) * 16),  // 64-byte aligned blocks
        threads(std::max(1, max_threads())) {
    if (a_stride + b_stride) memory = ScratchCache::take((a_stride + b_stride) * threads);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() {
    if (memory.get()) ScratchCache::give_back(std::move(memory));
  }
  /// Thread t's A block and B block (null when that operand is not packed).
  float* a_block(int t) const noexcept { return a_stride ? memory.get() + t * (a_stride + b_stride) : nullptr; }
  float* b_block(int t) const noexcept { return b_stride ? memory.get() + t * (a_stride + b_stride) + a_stride : nullptr; }
  /// Floats in one packed block of `extent` rows (A) or columns (B) in `width`-wide panels, at most `block` of
  /// them, over a K slice of at most `kc`.
  static index_t block_floats(index_t extent, index_t k, index_t width, index_t block, index_t kc) noexcept {
    return std::min(block, ceil_div(std::max<index_t>(extent, 1), width) * width) * std::min(kc, std::max<index_t>(k, 1));
  }

 private:
  Workspace(index_t m, index_t n, index_t k, bool pack_a, bool pack_b, const BlockingInfo& bi)
      : Workspace(pack_a ? block_floats(m, k, bi.mr, bi.mc, bi.kc) : 0, pack_b ? block_floats(n, k, bi.nr, bi.nc, bi.kc) : 0) {}
};

/// The float32 micro-kernel of `Arch` as the blocked loops see it: tile and block sizes, the element type of
/// packed panels and their size, and the tile itself. Another kernel (gemm/bf16_dot.hpp) provides the same
/// members and runs through the same loops.
template <class Arch>
struct F32Kernel {
  using blocking = GemmBlocking<Arch>;
  using a_element = float;
  using b_element = float;
  static constexpr int mr = blocking::mr, nr = blocking::nr;
  static constexpr index_t mc = blocking::mc, kc = blocking::kc, nc = blocking::nc;
  static constexpr index_t direct_a_max_n = blocking::direct_a_max_n;
  /// Elements of one packed A (MR-row) or B (NR-column) panel over a K slice of length kc.
  static constexpr index_t a_panel_size(index_t kc) noexcept { return mr * kc; }
  static constexpr index_t b_panel_size(index_t kc) noexcept { return nr * kc; }
  static void tile(index_t kc, const float* a, const float* b, float* c, index_t ldc, int rows, int cols,
                   const TileUpdate& update, const float* b_next, const float* a_next) noexcept {
    const PackedBPanel<nr> b_panel{b, b_next};
    // Smaller register tiles for the edges where they were measured (AVX-512); elsewhere each one would be
    // compiled for every instruction set xsimd dispatches over, for no known gain.
    if constexpr (is_avx512<Arch>())
      if (rows < mr || cols < nr) return edge_tile<Arch>(kc, a, b_panel, c, ldc, rows, cols, update, a_next);
    micro_kernel<Arch>(kc, a, 0, b_panel, c, ldc, rows, cols, update, a_next);
  }
  /// A whole tile that reads its B micro-panel from B's rows in place and copies it into the packed panel on the
  /// way (CopiedBPanel).
  static void tile_copying_b(index_t kc, const float* a, const CopiedBPanel<nr>& b, float* c, index_t ldc,
                             const TileUpdate& update, const float* a_next) noexcept {
    micro_kernel<Arch>(kc, a, 0, b, c, ldc, mr, nr, update, a_next);
  }
  /// The tile with A read in place (row stride lda) instead of from a packed panel.
  static void tile_in_place(index_t kc, const float* a, index_t lda, const float* b, float* c, index_t ldc, int rows,
                            int cols, const TileUpdate& update, const float* b_next) noexcept {
    const PackedBPanel<nr> b_panel{b, b_next};
    if constexpr (is_avx512<Arch>())
      if (cols <= blocking::lanes)  // the last panel of N = 40 (attention P*V): half the FMAs
        return micro_kernel<Arch, true, mr, 1>(kc, a, lda, b_panel, c, ldc, rows, cols, update);
    micro_kernel<Arch, true>(kc, a, lda, b_panel, c, ldc, rows, cols, update);
  }
};

/// Whether an A source can hand the micro-kernel rows of A in place (a float row-major matrix: see DirectA).
template <class ASource>
concept InPlaceASource = requires(const ASource& a) {
  { a.readable_in_place() } -> std::convertible_to<bool>;
  a.in_place(index_t{}, index_t{});
};

/// Whether B's micro-panels can be copied by the first tile that reads them (Kernel::tile_copying_b) instead of
/// packed up front: a kernel that has such a tile, and a float row-major B the source hands over in place.
template <class Kernel, class BSource>
concept CopiesBInTile = !BSource::prepacked && requires(const BSource& b) {
  { b.readable_in_place() } -> std::convertible_to<bool>;
  { b.in_place(index_t{}, index_t{}) } -> std::convertible_to<const float*>;
  &Kernel::tile_copying_b;
};

/// The blocked loops over the sub-matrix C[i_begin:i_end, j_begin:j_end] on one thread, with its own buffers.
/// i_begin and j_begin are multiples of MR and NR, so tiles (and their rounding) are those of the whole matrix.
template <class Kernel, class ASource, class BSource>
void run_block_range(index_t i_begin, index_t i_end, index_t j_begin, index_t j_end, index_t k, float alpha,
                     const ASource& a, const BSource& b, float beta, float* c, index_t ldc,
                     typename Kernel::a_element* a_buffer, typename Kernel::b_element* b_buffer,
                     bool direct_a) noexcept {
  constexpr int MR = Kernel::mr, NR = Kernel::nr;
  constexpr index_t MC = Kernel::mc, KC = Kernel::kc, NC = Kernel::nc;
  // A row-major float B is not packed up front: the first sweep of each K slice copies each micro-panel as its
  // first tile reads it (CopiedBPanel), so B's stream from memory overlaps FMAs.
  bool copy_b = false;
  if constexpr (CopiesBInTile<Kernel, BSource>) copy_b = !direct_a && i_end - i_begin >= MR && b.readable_in_place();
  for (index_t jc = j_begin; jc < j_end; jc += NC) {
    const index_t nc = std::min(NC, j_end - jc);
    const index_t n_panels = ceil_div(nc, NR);
    for (index_t pc = 0; pc < k; pc += KC) {
      const index_t kc = std::min(KC, k - pc);
      const index_t a_panel = Kernel::a_panel_size(kc), b_panel = Kernel::b_panel_size(kc);
      const typename Kernel::b_element* b_block;
      if constexpr (BSource::prepacked) {
        b_block = b.panel(jc, pc, kc);
      } else {
        if (!copy_b) b.pack_block(b_buffer, jc, nc, pc, kc);  // a whole block at once: the source picks the read order
        b_block = b_buffer;
      }
      const TileUpdate update{alpha, beta, pc == 0};
      for (index_t ic = i_begin; ic < i_end; ic += MC) {
        const index_t mc = std::min(MC, i_end - ic);
        const index_t m_panels = ceil_div(mc, MR);
        const typename Kernel::a_element* a_block;
        if constexpr (ASource::prepacked) {
          a_block = a.panel(ic, pc, kc);
        } else {
          // In-place A packs only its partial last panel (the kernel needs MR real rows).
          for (index_t ir = 0; ir < m_panels; ++ir)
            if (!direct_a || mc - ir * MR < MR)
              a.pack_panel(a_buffer + ir * a_panel, ic + ir * MR, static_cast<int>(std::min<index_t>(MR, mc - ir * MR)),
                           pc, kc);
          a_block = a_buffer;
        }
        const bool copying_b = copy_b && ic == i_begin;
        // jr outer: one KC x NR B panel stays in L1 while the micro-kernel sweeps the block's A panels (L2).
        for (index_t jr = 0; jr < n_panels; ++jr)
          for (index_t ir = 0; ir < m_panels; ++ir) {
            const index_t i = ic + ir * MR, j = jc + jr * NR;
            const int rows = static_cast<int>(std::min<index_t>(MR, i_end - i));
            const int cols = static_cast<int>(std::min<index_t>(NR, j_end - j));
            const auto* a_next = ir + 1 < m_panels ? a_block + (ir + 1) * a_panel : nullptr;
            if constexpr (CopiesBInTile<Kernel, BSource>) {
              if (copying_b && ir == 0) {  // the panel's first tile (a whole one: the block has MR rows or more)
                float* packed = b_buffer + jr * b_panel;
                if (cols == NR) {
                  const float* rows_of_b = b.in_place(pc, j);
                  const float* next = jr + 1 < n_panels ? rows_of_b + NR : nullptr;
                  Kernel::tile_copying_b(kc, a_block, {rows_of_b, b.matrix.row_stride, packed, next, kc}, c + i * ldc + j,
                                         ldc, update, a_next);
                  continue;
                }
                b.pack_block(packed, j, cols, pc, kc);  // the last, narrower panel of N: packed on its own
              }
            }
            // The last A panel of a sweep prefetches the next B micro-panel (the only one not already in L1; not
            // yet packed while the first sweep copies B).
            const auto* b_next =
                (!copying_b && ir + 1 == m_panels && jr + 1 < n_panels) ? b_block + (jr + 1) * b_panel : nullptr;
            if constexpr (!ASource::prepacked && InPlaceASource<ASource>) {
              if (direct_a && rows == MR) {
                Kernel::tile_in_place(kc, a.in_place(i, pc), a.matrix.row_stride, b_block + jr * b_panel,
                                      c + i * ldc + j, ldc, rows, cols, update, b_next);
                continue;
              }
            }
            Kernel::tile(kc, a_block + ir * a_panel, b_block + jr * b_panel, c + i * ldc + j, ldc, rows, cols, update,
                         b_next, a_next);
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
template <class Kernel, class ASource, class BSource>
void run_blocked_with(index_t m, index_t n, index_t k, float alpha, const ASource& a, const BSource& b, float beta,
                      float* c, index_t ldc, const Workspace& workspace) noexcept {
  constexpr int MR = Kernel::mr, NR = Kernel::nr;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) return scale_output(m, n, beta, c, ldc);
  // Skinny products (few B panels to amortise A's packing over) read a float row-major A in place.
  bool direct_a = false;
  if constexpr (!ASource::prepacked && InPlaceASource<ASource>) direct_a = n <= Kernel::direct_a_max_n && a.readable_in_place();
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
      // A kernel whose panels are not float keeps them in the same 64-byte aligned float storage.
      auto* a_buffer = reinterpret_cast<typename Kernel::a_element*>(workspace.a_block(t));
      auto* b_buffer = reinterpret_cast<typename Kernel::b_element*>(workspace.b_block(t));
      if (cut_m)
        run_block_range<Kernel>(first * MR, std::min(m, last * MR), 0, n, k, alpha, a, b, beta, c, ldc, a_buffer,
                              b_buffer, direct_a);
      else
        run_block_range<Kernel>(0, m, first * NR, std::min(n, last * NR), k, alpha, a, b, beta, c, ldc, a_buffer,
                              b_buffer, direct_a);
    }
  }
}

/// The float32 kernel of `Arch` over the blocked loops (the entry point every float GEMM goes through).
template <class Arch, class ASource, class BSource>
void run_blocked(Arch, index_t m, index_t n, index_t k, float alpha, const ASource& a, const BSource& b, float beta,
                 float* c, index_t ldc, const Workspace& workspace) noexcept {
  run_blocked_with<F32Kernel<Arch>>(m, n, k, alpha, a, b, beta, c, ldc, workspace);
}

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
