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

/// The C tile is read and written once per K slice, usually from L3: its loads are started before the K loop so
/// they overlap the FMAs instead of stalling the store phase (each row of the tile may straddle two cache lines;
/// a store-only first slice still needs the lines, or its stores would wait for them).
inline void prefetch_c_tile(float* c, index_t ldc, int rows, int cols) noexcept {
#pragma GCC unroll 32
  for (int i = 0; i < rows; ++i) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + cols - 1, 1, 3);
  }
}

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

/// C[0:rows, 0:cols] (row stride ldc, unit column stride) <- merge(A_panel * B_panel).
/// `b` holds kc steps of NR floats (64-byte aligned); rows <= MR, cols <= NR.
/// A packed panel (DirectA = false) holds kc steps of MR floats: a[k * MR + i]. With DirectA, `a` points into a
/// row-major float matrix with row stride `lda` (a[i * lda + k]) and all MR rows must exist: skinny products
/// (small N) then skip packing A, whose cost is no longer amortised over many B panels.
/// `b_next` (may be null) is the B micro-panel the driver runs next (packed like `b`, at least kc steps): it is
/// prefetched during this tile so its first use does not stall on L3. `a_next` (may be null) is the next packed A
/// panel of the sweep, prefetched one step per step: when A comes from memory (pre-packed weights used by only one
/// or two B panels, as in a convolution of an 8 x 8 image) this hides its latency (+25% there on Zen 5).
/// The result is merged into C by store_tile.
template <class Arch, bool DirectA = false>
inline void micro_kernel(index_t kc, const float* __restrict a, [[maybe_unused]] index_t lda,
                         const float* __restrict b, float* c, index_t ldc, int rows, int cols,
                         const TileUpdate& update, const float* b_next = nullptr,
                         const float* a_next = nullptr) noexcept {
  using blocking = GemmBlocking<Arch>;
  using batch = typename blocking::batch;
  constexpr int MR = blocking::mr, NV = blocking::nr_vectors, L = blocking::lanes, NR = blocking::nr;

  prefetch_c_tile(c, ldc, rows, cols);

  batch acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = batch(0.0f);

  for (index_t k = 0; k < kc; ++k) {
    batch bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = batch::load_aligned(b + v * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const batch ai(DirectA ? a[i * lda + k] : a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = simd::fma(ai, bv[v], acc[i][v]);
    }
    // One cache line of the next B micro-panel per k step (NR floats = 64 bytes with AVX2): the whole panel is
    // in L1 by the time the driver moves to it, instead of each of its first-use loads missing to L3.
    if (b_next) __builtin_prefetch(b_next + k * NR, 0, 3);
    if (a_next) __builtin_prefetch(a_next + k * MR, 0, 3);
    if constexpr (!DirectA) a += MR;
    b += NR;
  }

  store_tile(acc, c, ldc, rows, cols, update);
}

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
