// GEMM micro-kernel: one MR x NR tile of C from a packed A panel (KC x MR) and a packed B panel (KC x NR).
//
// The tile's MR x NR/lanes accumulators live in registers for the whole K slice; each step loads NR/lanes
// vectors of B, broadcasts MR scalars of A and issues MR x NR/lanes independent FMAs. Every output element is
// summed over k in increasing order, starting from zero, whatever the tile's position: the rounding of an element
// never depends on how M and N were partitioned.
#pragma once
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "latentkit/backend/simd/fma.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/kernels/gemm/blocking.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

/// How a K slice's product P is merged into C (the first slice applies beta, later ones accumulate).
struct TileUpdate {
  float alpha = 1.0f;
  float beta = 0.0f;       // used only when `first`
  bool first = true;       // first K slice: C = alpha * P + beta * C (C is not read when beta == 0)
};

/// The merge rule for one element, shared by the vector store and the scalar edge store so that both round alike.
inline float merge_scalar(float product, float c, const TileUpdate& u) noexcept {
  if (!u.first) return std::fma(u.alpha, product, c);
  if (u.beta == 0.0f) return u.alpha * product;
  return std::fma(u.alpha, product, u.beta * c);
}

template <class Batch>
inline Batch merge_vector(Batch product, Batch c, const TileUpdate& u) noexcept {
  if (!u.first) return simd::fma(Batch(u.alpha), product, c);
  if (u.beta == 0.0f) return Batch(u.alpha) * product;
  return simd::fma(Batch(u.alpha), product, Batch(u.beta) * c);
}

/// The C tile is read and written once per K slice, usually from L3. Its rows are brought into L1 during the last
/// MR steps of the K loop, one row per step, so that the store phase finds them there: prefetched before the loop
/// they were gone by its end, evicted by the 64-92 KiB of A and B panels that stream through L1 in a slice, and
/// a power-of-two ldc puts every row in the same L1 set (14 rows 8 KiB apart, 12 ways). Measured on Zen 5: +3-5%
/// on 2048^3 and the SD shapes against prefetching the tile before the loop. A slice shorter than the tile
/// prefetches its extra rows up front. A prefetch never faults, so addresses past C are harmless.
/// Every member is always_inline: GCC models a prefetch as free of side effects, finds an out-of-line function
/// made only of prefetches "const", and deletes the calls to it.
template <int NR>
class CTilePrefetch {
 public:
  /// A K loop of `steps` steps whose last `tile_rows` steps each bring one of the tile's rows in.
  [[gnu::always_inline]] CTilePrefetch(float* c, index_t ldc, int rows, int cols, index_t steps, int tile_rows) noexcept
      : c_(c), ldc_(ldc), rows_(rows), cols_(cols), first_step_(steps > tile_rows ? steps - tile_rows : 0) {
    for (index_t i = steps; i < rows; ++i) row(i);
  }
  /// Called once per K step k: from step `first_step_` on, row k - first_step_.
  [[gnu::always_inline]] void at(index_t k) const noexcept {
    if (k >= first_step_ && k - first_step_ < rows_) row(k - first_step_);  // a condition GCC splits the loop on
  }

 private:
  [[gnu::always_inline]] void row(index_t i) const noexcept {
    float* r = c_ + i * ldc_;
    // Every 64-byte line the row's `cols` floats touch: one per 16 floats, and the last (a row that starts
    // mid-line straddles one more).
#pragma GCC unroll 4
    for (int f = 0; f < NR - 1; f += 16) __builtin_prefetch(r + f, 1, 3);
    __builtin_prefetch(r + cols_ - 1, 1, 3);
  }
  float* c_;
  index_t ldc_;
  int rows_, cols_;
  index_t first_step_;
};

/// C[0:rows, 0:cols] <- merge(acc), acc holding an MR x (NV vectors) tile in registers: full tiles store straight
/// from registers, edge tiles go through a small buffer with the same merge rule (so both round alike).
template <class Batch, int MR, int NV>
inline void store_tile(const Batch (&acc)[MR][NV], float* c, index_t ldc, int rows, int cols,
                       const TileUpdate& update) noexcept {
  constexpr int L = static_cast<int>(Batch::size), NR = NV * L;
  const bool overwrite = update.first && update.beta == 0.0f;  // C is not read
  if (rows == MR && cols == NR) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      float* row = c + i * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const Batch old = overwrite ? Batch(0.0f) : Batch::load_unaligned(row + v * L);
        merge_vector(acc[i][v], old, update).store_unaligned(row + v * L);
      }
    }
    return;
  }
  alignas(64) float tile[MR * NR];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v].store_aligned(tile + i * NR + v * L);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      float& out = c[i * ldc + j];
      out = merge_scalar(tile[i * NR + j], overwrite ? 0.0f : out, update);
    }
}

/// The B micro-panel a tile reads, one k step (NR floats) at a time: a packed panel (`b`: kc steps of NR floats,
/// 64-byte aligned). `next` (may be null) is the B micro-panel the driver runs next, prefetched one step per step
/// (one 64-byte line with AVX2, two with AVX-512): the whole panel is in L1 by the time the driver moves to it,
/// instead of each first-use load missing to L3.
template <int NR>
struct PackedBPanel {
  const float* b;
  const float* next = nullptr;

  template <class Batch>
  [[gnu::always_inline]] Batch load(index_t k, int v) const noexcept {
    return Batch::load_aligned(b + k * NR + v * static_cast<int>(Batch::size));
  }
  [[gnu::always_inline]] void prefetch(index_t k) const noexcept {
    if (next)
#pragma GCC unroll 4
      for (int f = 0; f < NR; f += 16) __builtin_prefetch(next + k * NR + f, 0, 3);
  }
};

/// A B micro-panel read straight from the rows of a row-major B (`rows`: step k at rows + k * ldb, NR consecutive
/// floats) and copied into its packed panel (`packed`) on the way, for the tiles after this one. The driver runs
/// the first tile of each micro-panel in a K slice this way: B's stream from memory then overlaps that tile's FMAs
/// instead of taking a packing phase of its own. The rows `distance` steps ahead are prefetched; past the slice's
/// last step, the first rows of the next micro-panel (`next`, may be null). Whole tiles only: every vector of a
/// step is loaded, so every vector is copied.
template <int NR>
struct CopiedBPanel {
  static constexpr index_t distance = 32;  // steps (~14 cycles of FMAs each): 24-48 measured alike
  const float* rows;
  index_t ldb;
  float* packed;
  const float* next;
  index_t kc;

  template <class Batch>
  [[gnu::always_inline]] Batch load(index_t k, int v) const noexcept {
    constexpr int L = static_cast<int>(Batch::size);
    const Batch x = Batch::load_unaligned(rows + k * ldb + v * L);
    x.store_aligned(packed + k * NR + v * L);
    return x;
  }
  [[gnu::always_inline]] void prefetch(index_t k) const noexcept {
    const index_t ahead = k + distance;
    const float* row = ahead < kc ? rows + ahead * ldb : next ? next + (ahead - kc) * ldb : nullptr;
    if (row) {  // every line the step's NR floats touch: one per 16 floats, and one more when B is not aligned
#pragma GCC unroll 4
      for (int f = 0; f < NR; f += 16) __builtin_prefetch(row + f, 0, 3);
      __builtin_prefetch(row + NR - 1, 0, 3);
    }
  }
};

/// C[0:rows, 0:cols] (row stride ldc, unit column stride) <- merge(A_panel * B_panel).
/// `b` is the B micro-panel (PackedBPanel or CopiedBPanel); rows <= Rows, cols <= Vectors x lanes.
/// A packed panel (DirectA = false) holds kc steps of MR floats: a[k * MR + i]. With DirectA, `a` points into a
/// row-major float matrix with row stride `lda` (a[i * lda + k]) and all Rows rows must exist: skinny products
/// (small N) then skip packing A, whose cost is no longer amortised over many B panels.
/// Rows and Vectors size the tile in registers: MR x NR for whole tiles, smaller for the last panel of M or N
/// (edge_tile), whose padding would otherwise cost FMAs. Panels keep their MR and NR strides either way.
/// `a_next` (may be null) is the next packed A panel of the sweep, prefetched one step per step: when A comes from
/// memory (pre-packed weights used by only one or two B panels, as in a convolution of an 8 x 8 image) this hides
/// its latency (+25% there on Zen 5).
/// The result is merged into C by store_tile.
template <class Arch, bool DirectA = false, int Rows = GemmBlocking<Arch>::mr,
          int Vectors = GemmBlocking<Arch>::nr_vectors, class BPanel>
inline void micro_kernel(index_t kc, const float* __restrict a, [[maybe_unused]] index_t lda, const BPanel& b,
                         float* c, index_t ldc, int rows, int cols, const TileUpdate& update,
                         const float* a_next = nullptr) noexcept {
  using blocking = GemmBlocking<Arch>;
  using batch = typename blocking::batch;
  constexpr int MR = blocking::mr, L = blocking::lanes;
  static_assert(Rows <= MR && Vectors <= blocking::nr_vectors);

  const CTilePrefetch<Vectors * L> c_prefetch(c, ldc, rows, cols, kc, Rows);
  batch acc[Rows][Vectors];
#pragma GCC unroll 32
  for (int i = 0; i < Rows; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < Vectors; ++v) acc[i][v] = batch(0.0f);

  for (index_t k = 0; k < kc; ++k) {
    c_prefetch.at(k);
    batch bv[Vectors];
#pragma GCC unroll 4
    for (int v = 0; v < Vectors; ++v) bv[v] = b.template load<batch>(k, v);
#pragma GCC unroll 32
    for (int i = 0; i < Rows; ++i) {
      const batch ai(DirectA ? a[i * lda + k] : a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < Vectors; ++v) acc[i][v] = simd::fma(ai, bv[v], acc[i][v]);
    }
    b.prefetch(k);
    if (a_next) __builtin_prefetch(a_next + k * MR, 0, 3);
    if constexpr (!DirectA) a += MR;
  }

  store_tile(acc, c, ldc, rows, cols, update);
}

/// The tile of a packed A panel and a packed B panel, run by the smallest register tile that covers it: the last
/// panel of M (rows < MR) or of N (cols <= lanes) would otherwise spend FMAs on padding, up to 4% of a product
/// with M = 256 (18 whole panels and one of 4 rows). Row tiles come in thirds of MR (4, 9, 14 with AVX-512, the
/// one architecture F32Kernel uses them for). Each element is summed in the same order whichever tile computes
/// it: same rounding.
template <class Arch>
inline void edge_tile(index_t kc, const float* a, const PackedBPanel<GemmBlocking<Arch>::nr>& b, float* c,
                      index_t ldc, int rows, int cols, const TileUpdate& update, const float* a_next) noexcept {
  using blocking = GemmBlocking<Arch>;
  constexpr int MR = blocking::mr, L = blocking::lanes, small = MR / 3, medium = 2 * MR / 3;
  const auto run = [&]<int Rows>() {
    if (cols <= L)
      micro_kernel<Arch, false, Rows, 1>(kc, a, 0, b, c, ldc, rows, cols, update, a_next);
    else
      micro_kernel<Arch, false, Rows>(kc, a, 0, b, c, ldc, rows, cols, update, a_next);
  };
  if (rows <= small)
    run.template operator()<small>();
  else if (rows <= medium)
    run.template operator()<medium>();
  else
    run.template operator()<MR>();
}

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
