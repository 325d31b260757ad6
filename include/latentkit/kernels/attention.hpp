// Fused scaled-dot-product attention on the CPU (flash-attention style): softmax(scale * Q K^T + mask) V without
// ever forming the Lq x Lk score matrix.
//
// Layout. Q [B, H, Lq, d], K [B, H, Lk, d], V [B, H, Lk, dv], out [B, H, Lq, dv], all float, any element strides.
// The [B, L, H*d] layout of a fused projection is viewed, without copying, as
//   x.reshape({B, L, H, d}).permute({0, 2, 1, 3})
// and the output can be written straight into a [B, Lq, H*dv] buffer the same way.
//
// Algorithm. One task = (batch, head, block of `query_block` queries); tasks are independent and split over threads,
// so every output is computed by one thread with the same instruction sequence: results are bit-identical for any
// thread count. In a task, Q is packed once, transposed and pre-scaled (Q^T: d x Mq). Keys are visited in blocks of
// `key_block`:
//   1. S^T = K_blk Q^T (keys as rows, queries as columns): a register-tiled microkernel broadcasts K elements straight
//      from the input (any strides, no packing) against vectors of Q^T columns.
//   2. The additive mask and the causal mask (key j > query i gets -inf, torch's top-left `is_causal`) are applied.
//   3. Online softmax, vectorised across queries: running max m and sum l per query; p = exp(s - m_new); the factor
//      alpha = exp(m_old - m_new) rescales the accumulator.
//   4. O^T = alpha * O^T + V_blk^T P^T with the same microkernel (V elements broadcast, P^T rows as vectors).
// At the end out = O / l. A query whose keys are all masked (-inf) gets zeros instead of NaN. Key blocks that a
// causal mask hides entirely are skipped. Working memory per thread is O(tile): see attention_workspace_bytes().
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/kernel_library/table.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/backend/simd/fma.hpp"
#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct AttentionOptions {
  /// Multiplies Q K^T; default 1/sqrt(d).
  std::optional<float> scale;
  /// Key j is hidden from query i when j > i (CLIP's text encoder; torch is_causal, top-left aligned).
  bool causal = false;
  /// Optional additive mask broadcastable to [B, H, Lq, Lk] (e.g. [Lq, Lk] or [B, 1, 1, Lk]); -inf hides a key.
  TensorView<const float> mask{};
};

namespace attention_detail {

/// Queries per task (columns of the S^T tile) and keys per step (its rows). 128 x 64 floats = 32 KiB score tile;
/// with Q^T and O^T (d x 128 each) it stays in L2 while K and V stream. Measured on a 2-core AVX2 EPYC: 128 x 64
/// beats 64 x 64 by ~10% (Q packing and the per-task epilogue amortise over twice the keys x queries).
inline constexpr index_t query_block = 128;
inline constexpr index_t key_block = 64;

/// Floats of one thread's workspace: Q^T [d x Mq], S^T [Nk x Mq], O^T [dv x Mq], and m, l, alpha [Mq].
constexpr index_t workspace_floats(index_t head_dim, index_t value_dim) noexcept {
  return (head_dim + key_block + value_dim + 3) * query_block;
}

/// C[r, :ncols] = (col_scale ? C[r, :] * col_scale : 0) + sum_t A(r, t) * Bm[t, :ncols] for r < R.
/// A(r, t) = a[r * a_rs + t * a_cs] is broadcast (any strides); Bm rows are aligned vectors (leading dim ldb);
/// ncols is a multiple of two vectors. R rows x 2 vectors of accumulators stay in registers over all of `depth`.
template <int R, class Arch>
inline void tile_rows(const float* a, index_t a_rs, index_t a_cs, index_t depth, const float* bm, index_t ldb,
                      float* c, index_t ldc, index_t ncols, const float* col_scale) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(B::size);
  for (index_t col = 0; col < ncols; col += 2 * W) {
    B acc[R][2];
    if (col_scale) {
      const B s0 = B::load_aligned(col_scale + col), s1 = B::load_aligned(col_scale + col + W);
      for (int r = 0; r < R; ++r) {
        acc[r][0] = B::load_aligned(c + r * ldc + col) * s0;
        acc[r][1] = B::load_aligned(c + r * ldc + col + W) * s1;
      }
    } else {
      for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = B(0.0f);
    }
    const float* ap[R];
    for (int r = 0; r < R; ++r) ap[r] = a + r * a_rs;
    const float* bp = bm + col;
    for (index_t t = 0; t < depth; ++t) {
      const B b0 = B::load_aligned(bp), b1 = B::load_aligned(bp + W);
      for (int r = 0; r < R; ++r) {
        const B av(*ap[r]);
        acc[r][0] = simd::fma(av, b0, acc[r][0]);
        acc[r][1] = simd::fma(av, b1, acc[r][1]);
        ap[r] += a_cs;
      }
      bp += ldb;
    }
    for (int r = 0; r < R; ++r) {
      acc[r][0].store_aligned(c + r * ldc + col);
      acc[r][1].store_aligned(c + r * ldc + col + W);
    }
  }
}

/// tile_rows over `rows` rows: blocks of 6 (12 accumulators + 2 operands + 1 broadcast = 15 of 16 AVX registers).
template <class Arch>
inline void tile(index_t rows, const float* a, index_t a_rs, index_t a_cs, index_t depth, const float* bm, index_t ldb,
                 float* c, index_t ldc, index_t ncols, const float* col_scale) noexcept {
  index_t r = 0;
  for (; r + 6 <= rows; r += 6) tile_rows<6, Arch>(a + r * a_rs, a_rs, a_cs, depth, bm, ldb, c + r * ldc, ldc, ncols, col_scale);
  const float* ar = a + r * a_rs;
  float* cr = c + r * ldc;
  switch (rows - r) {
    case 5: tile_rows<5, Arch>(ar, a_rs, a_cs, depth, bm, ldb, cr, ldc, ncols, col_scale); break;
    case 4: tile_rows<4, Arch>(ar, a_rs, a_cs, depth, bm, ldb, cr, ldc, ncols, col_scale); break;
    case 3: tile_rows<3, Arch>(ar, a_rs, a_cs, depth, bm, ldb, cr, ldc, ncols, col_scale); break;
    case 2: tile_rows<2, Arch>(ar, a_rs, a_cs, depth, bm, ldb, cr, ldc, ncols, col_scale); break;
    case 1: tile_rows<1, Arch>(ar, a_rs, a_cs, depth, bm, ldb, cr, ldc, ncols, col_scale); break;
    default: break;
  }
}

struct Problem {
  TensorView<const float> q, k, v, mask;  // mask already broadcast to [B, H, Lq, Lk] (or empty)
  TensorView<float> out;
  float scale;
  bool causal;
  // One workspace_floats(d, dv) block per thread, allocated before dispatch: the kernel runs inside
  // xsimd::dispatch (noexcept) and an OpenMP region, where a bad_alloc would call std::terminate.
  float* workspace;
  int threads;
};

struct AttentionKernel {
  template <class Arch>
  void operator()(Arch, const Problem& p) const noexcept {
    using B = xsimd::batch<float, Arch>;
    constexpr index_t W = static_cast<index_t>(B::size);
    static_assert(query_block % (2 * W) == 0, "query block must hold whole pairs of vectors");
    constexpr float neg_inf = -std::numeric_limits<float>::infinity();
    constexpr index_t Mq = query_block;

    const index_t batch = p.q.size(0), heads = p.q.size(1), lq = p.q.size(2), d = p.q.size(3);
    const index_t lk = p.k.size(2), dv = p.v.size(3);
    const index_t qblocks = (lq + Mq - 1) / Mq;
    const index_t tasks = batch * heads * qblocks;
    const bool has_mask = p.mask.data() != nullptr;

    LATENTKIT_OMP(parallel num_threads(p.threads))
    {
      int thread = 0;
#if LATENTKIT_HAS_OPENMP
      thread = omp_get_thread_num();
#endif
      float* qt = p.workspace + static_cast<index_t>(thread) * workspace_floats(d, dv);  // [d][Mq]
      float* st = qt + d * Mq;         // [key_block][Mq]
      float* ot = st + key_block * Mq; // [dv][Mq]
      float* m = ot + dv * Mq;
      float* l = m + Mq;
      float* alpha = l + Mq;

      LATENTKIT_OMP(for schedule(dynamic))
      for (index_t task = 0; task < tasks; ++task) {
        const index_t qb = task % qblocks, bh = task / qblocks;
        const index_t b = bh / heads, h = bh % heads;
        const index_t i0 = qb * Mq, mq = std::min(Mq, lq - i0);
        const index_t ncols = (mq + 2 * W - 1) / (2 * W) * (2 * W);
        const TensorView<const float> q = p.q.select(0, b).select(0, h);
        const TensorView<const float> k = p.k.select(0, b).select(0, h);
        const TensorView<const float> v = p.v.select(0, b).select(0, h);

        // Q^T, pre-scaled; padding columns are zero (finite scores, results ignored).
        for (index_t c = 0; c < d; ++c) {
          float* row = qt + c * Mq;
          const float* qcol = &q(i0, c);
          for (index_t i = 0; i < mq; ++i) row[i] = qcol[i * q.stride(0)] * p.scale;
          std::fill(row + mq, row + ncols, 0.0f);
        }
        std::fill(m, m + ncols, neg_inf);
        std::fill(l, l + ncols, 0.0f);
        for (index_t c = 0; c < dv; ++c) std::fill(ot + c * Mq, ot + c * Mq + ncols, 0.0f);

        const index_t key_end = p.causal ? std::min(lk, i0 + mq) : lk;
        for (index_t j0 = 0; j0 < key_end; j0 += key_block) {
          const index_t nk = std::min(key_block, key_end - j0);
          const float* kblk = k.data() + j0 * k.stride(0);
          tile<Arch>(nk, kblk, k.stride(0), k.stride(1), d, qt, Mq, st, Mq, ncols, nullptr);

          if (has_mask) {
            const TensorView<const float> mk = p.mask.select(0, b).select(0, h);
            for (index_t j = 0; j < nk; ++j)
              for (index_t i = 0; i < mq; ++i) st[j * Mq + i] += mk(i0 + i, j0 + j);
          }
          if (p.causal && j0 + nk - 1 > i0) {
            for (index_t j = 0; j < nk; ++j)
              for (index_t i = 0; i < ncols; ++i)
                if (j0 + j > i0 + i) st[j * Mq + i] = neg_inf;
          }

          // Online softmax across this key block, one vector of queries at a time.
          for (index_t col = 0; col < ncols; col += W) {
            const B m_old = B::load_aligned(m + col);
            B m_blk = B::load_aligned(st + col);
            for (index_t j = 1; j < nk; ++j) m_blk = xsimd::max(m_blk, B::load_aligned(st + j * Mq + col));
            const B m_new = xsimd::max(m_old, m_blk);
            // All keys so far masked: subtract 0 instead of -inf so that exp gives 0, never NaN.
            const B m_sub = xsimd::select(m_new == B(neg_inf), B(0.0f), m_new);
            const B a = xsimd::exp(m_old - m_sub);
            B sum(0.0f);
            for (index_t j = 0; j < nk; ++j) {
              const B e = xsimd::exp(B::load_aligned(st + j * Mq + col) - m_sub);
              e.store_aligned(st + j * Mq + col);
              sum += e;
            }
            simd::fma(B::load_aligned(l + col), a, sum).store_aligned(l + col);
            m_new.store_aligned(m + col);
            a.store_aligned(alpha + col);
          }

          const float* vblk = v.data() + j0 * v.stride(0);
          tile<Arch>(dv, vblk, v.stride(1), v.stride(0), nk, st, Mq, ot, Mq, ncols, alpha);
        }

        // One reciprocal per query instead of dv divisions (divisions would dominate short cross-attention).
        const TensorView<float> o = p.out.select(0, b).select(0, h);
        for (index_t i = 0; i < mq; ++i) {
          const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
          float* orow = &o(i0 + i, index_t{0});
          for (index_t c = 0; c < dv; ++c) orow[c * o.stride(1)] = ot[c * Mq + i] * inv;
        }
      }
    }
  }
};

/// The problem as the kernel library's plain description, and back (backend/kernel_library/table.hpp).
inline kernel_library::View4 to_table(const TensorView<const float>& v) noexcept {
  kernel_library::View4 t{v.data(), {}, {}};
  if (v.data() && v.rank() == 4)
    for (int i = 0; i < 4; ++i) t.shape[i] = v.size(i), t.strides[i] = v.stride(i);
  return t;
}
inline TensorView<const float> from_table(const kernel_library::View4& t) {
  if (!t.data) return {};
  return {t.data, Dims{t.shape[0], t.shape[1], t.shape[2], t.shape[3]},
          Dims{t.strides[0], t.strides[1], t.strides[2], t.strides[3]}};
}
inline kernel_library::AttentionCall to_table(const Problem& p) noexcept {
  kernel_library::AttentionCall call{to_table(p.q), to_table(p.k), to_table(p.v), to_table(p.mask), p.out.data(),
                                     {}, {}, p.scale, p.causal, p.workspace, p.threads};
  for (int i = 0; i < 4; ++i) call.out_shape[i] = p.out.size(i), call.out_strides[i] = p.out.stride(i);
  return call;
}
inline Problem from_table(const kernel_library::AttentionCall& c) {
  const TensorView<float> out{c.out, Dims{c.out_shape[0], c.out_shape[1], c.out_shape[2], c.out_shape[3]},
                              Dims{c.out_strides[0], c.out_strides[1], c.out_strides[2], c.out_strides[3]}};
  return {from_table(c.q), from_table(c.k), from_table(c.v), from_table(c.mask), out, c.scale, c.causal, c.workspace,
          c.threads};
}

inline void check_attention_shapes(const TensorView<const float>& q, const TensorView<const float>& k,
                                   const TensorView<const float>& v, const Dims& out) {
  const auto fail = [&](const std::string& why) {
    throw ShapeError("attention: q " + q.shape().str() + ", k " + k.shape().str() + ", v " + v.shape().str() +
                     ", out " + out.str() + ": " + why);
  };
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4 || out.rank() != 4)
    fail("expected rank 4, [batch, heads, length, head_dim]");
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(1) != q.size(1) || v.size(1) != q.size(1))
    fail("batch and head counts differ");
  if (k.size(3) != q.size(3)) fail("q and k head dims differ");
  if (v.size(2) != k.size(2)) fail("k and v lengths differ");
  if (q.size(3) < 1 || v.size(3) < 1) fail("head dims must be >= 1");
  if (!(out == Dims{q.size(0), q.size(1), q.size(2), v.size(3)})) fail("out must be [B, H, Lq, dv]");
}

}  // namespace attention_detail

/// Bytes of working memory fused attention uses for head dims d (q, k) and dv (v) on `threads` threads:
/// O(tile), independent of the sequence lengths.
inline std::size_t attention_workspace_bytes(index_t head_dim, index_t value_dim, int threads = max_threads()) {
  return static_cast<std::size_t>(attention_detail::workspace_floats(head_dim, value_dim)) * sizeof(float) *
         static_cast<std::size_t>(std::max(threads, 1));
}

/// out = softmax(scale * q k^T + mask) v, fused. See the header comment for layouts and semantics.
inline void attention(TensorView<const float> q, TensorView<const float> k, TensorView<const float> v,
                      TensorView<float> out, const AttentionOptions& options = {}) {
  attention_detail::check_attention_shapes(q, k, v, out.shape());
  attention_detail::Problem p{q, k, v, {}, out, 0.0f, options.causal, nullptr, 1};
  p.scale = options.scale ? *options.scale : 1.0f / std::sqrt(static_cast<float>(q.size(3)));
  if (!std::isfinite(p.scale)) throw ShapeError("attention: scale must be finite, got " + std::to_string(p.scale));
  if (options.mask.data() != nullptr) {
    const Dims full{q.size(0), q.size(1), q.size(2), k.size(2)};
    try {
      p.mask = options.mask.broadcast_to(full);
    } catch (const ShapeError&) {
      throw ShapeError("attention: mask " + options.mask.shape().str() + " does not broadcast to [B, H, Lq, Lk] = " +
                       full.str());
    }
  }
  if (out.numel() == 0) return;
  // Whole multiples of query_block floats per thread, so every thread's block stays 64-byte aligned.
  p.threads = std::max(1, max_threads());
  Tensor<float> workspace(Dims{static_cast<index_t>(p.threads), attention_detail::workspace_floats(q.size(3), v.size(3))});
  p.workspace = workspace.data();
  if (const kernel_library::Table* library = simd::library_kernels()) return library->attention(attention_detail::to_table(p));
  simd::dispatch(attention_detail::AttentionKernel{})(p);
}

/// Allocating form: returns out [B, H, Lq, dv].
inline Tensor<float> attention(TensorView<const float> q, TensorView<const float> k, TensorView<const float> v,
                               const AttentionOptions& options = {}) {
  if (q.rank() != 4 || v.rank() != 4) throw ShapeError("attention: q and v must be [batch, heads, length, head_dim]");
  Tensor<float> out(Dims{q.size(0), q.size(1), q.size(2), v.size(3)});
  attention(q, k, v, out.view(), options);
  return out;
}

LATENTKIT_NAMESPACE_END
