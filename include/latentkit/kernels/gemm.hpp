// General matrix multiply on the CPU: C = alpha * op(A) * op(B) + beta * C in float32.
//
// Operands may be strided or transposed; A and B may also be stored as bf16 or f16 (weights), widened to float
// while they are packed. Entry points:
//   gemm(...)            BLAS-style row-major interface (Transpose flags, leading dimensions)
//   gemm_batched(...)    the same over a strided batch
//   matmul(a, b, c)      TensorView interface: [M,K] x [K,N] or [B,M,K] x [B,K,N] (batch 1 broadcasts)
//   pack_weights_b(...)  pre-packs a right operand (the weights of a linear layer) for reuse: gemm(a, packed, ...)
// Structure (packing, micro-kernel, blocking, threading, determinism): kernels/gemm/*.hpp, docs/kernels-gemm.md.
#pragma once
#include <string>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/core/tensor_view.hpp"
#include "latentkit/kernels/gemm/blocking.hpp"
#include "latentkit/kernels/gemm/driver.hpp"
#include "latentkit/kernels/gemm/pack.hpp"
#include "latentkit/kernels/gemm/prepacked.hpp"
#include "latentkit/kernels/gemm/table_operands.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Whether a BLAS-style operand is used as stored or transposed.
enum class Transpose : bool { no = false, yes = true };

namespace gemm_kernel {
namespace detail {

struct StridedGemm {
  template <class Arch, class TA, class TB>
  void operator()(Arch arch, float alpha, const StridedMatrix<TA>& a, const StridedMatrix<TB>& b, float beta,
                  float* c, index_t ldc) const noexcept {
    using blocking = GemmBlocking<Arch>;
    run_blocked(arch, a.rows, b.cols, a.cols, alpha, StridedASource<blocking::mr, TA>{a},
                StridedBSource<blocking::nr, TB>{b}, beta, c, ldc, ws);
  }
  const Workspace& ws;
};

/// Runs the blocked kernel on strided operands, C with unit column stride.
template <class TA, class TB>
void run_strided(float alpha, const StridedMatrix<TA>& a, const StridedMatrix<TB>& b, float beta, float* c, index_t ldc) {
  if (const kernel_library::Table* library = simd::library_kernels())
    return library->gemm(alpha, to_table(a), to_table(b), beta, c, ldc);
  const Workspace ws(a.rows, b.cols, a.cols, true, true);
  simd::dispatch(StridedGemm{ws})(alpha, a, b, beta, c, ldc);
}

inline void check_extents(index_t m, index_t n, index_t k, const char* where) {
  if (m < 0 || n < 0 || k < 0)
    throw ShapeError(std::string(where) + ": negative extent (M=" + std::to_string(m) + ", N=" + std::to_string(n) +
                     ", K=" + std::to_string(k) + ")");
}

inline void check_leading(const char* where, const char* name, index_t ld, index_t minimum) {
  if (ld < std::max<index_t>(minimum, 1))
    throw ShapeError(std::string(where) + ": leading dimension " + name + "=" + std::to_string(ld) +
                     " is smaller than the row length " + std::to_string(minimum));
}

}  // namespace detail

/// C (element (i, j) at c[i * c_row_stride + j * c_col_stride]) = alpha * A * B + beta * C, with A [M x K] and
/// B [K x N] strided matrices. C needs a unit stride along one axis (otherwise it goes through a contiguous
/// copy); a column-major C is computed as C^T = B^T A^T. C must not overlap A or B.
template <GemmOperand TA, GemmOperand TB>
void gemm_strided(const StridedMatrix<TA>& a, const StridedMatrix<TB>& b, float alpha, float beta, float* c,
                  index_t c_row_stride, index_t c_col_stride) {
  if (a.cols != b.rows)
    throw ShapeError("gemm: inner extents differ: A is " + std::to_string(a.rows) + "x" + std::to_string(a.cols) +
                     ", B is " + std::to_string(b.rows) + "x" + std::to_string(b.cols));
  detail::check_extents(a.rows, b.cols, a.cols, "gemm");
  if (a.rows == 0 || b.cols == 0) return;
  if (c_col_stride == 1 || b.cols == 1) {
    detail::run_strided(alpha, a, b, beta, c, c_row_stride);
    return;
  }
  if (c_row_stride == 1 || a.rows == 1) {
    detail::run_strided(alpha, b.transposed(), a.transposed(), beta, c, c_col_stride);
    return;
  }
  Tensor<float> dense({a.rows, b.cols});
  if (beta != 0.0f)
    for (index_t i = 0; i < a.rows; ++i)
      for (index_t j = 0; j < b.cols; ++j) dense(i, j) = c[i * c_row_stride + j * c_col_stride];
  detail::run_strided(alpha, a, b, beta, dense.data(), b.cols);
  for (index_t i = 0; i < a.rows; ++i)
    for (index_t j = 0; j < b.cols; ++j) c[i * c_row_stride + j * c_col_stride] = dense(i, j);
}

}  // namespace gemm_kernel

/// Row-major BLAS-style GEMM: C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C.
/// op(A) = A (element (i, k) at a[i * lda + k]) or A^T (at a[k * lda + i]); likewise B with ldb.
/// A and B may be float, bf16 or f16. C is not read when beta == 0 (it may hold NaN).
template <gemm_kernel::GemmOperand TA = float, gemm_kernel::GemmOperand TB = float>
void gemm(Transpose trans_a, Transpose trans_b, index_t m, index_t n, index_t k, float alpha, const TA* a,
              index_t lda, const TB* b, index_t ldb, float beta, float* c, index_t ldc) {
  gemm_kernel::detail::check_extents(m, n, k, "gemm");
  if (m == 0 || n == 0) return;
  const bool ta = trans_a == Transpose::yes, tb = trans_b == Transpose::yes;
  if (k > 0) {
    gemm_kernel::detail::check_leading("gemm", "lda", lda, ta ? m : k);
    gemm_kernel::detail::check_leading("gemm", "ldb", ldb, tb ? k : n);
  }
  gemm_kernel::detail::check_leading("gemm", "ldc", ldc, n);
  const gemm_kernel::StridedMatrix<TA> am{a, m, k, ta ? 1 : lda, ta ? lda : 1};
  const gemm_kernel::StridedMatrix<TB> bm{b, k, n, tb ? 1 : ldb, tb ? ldb : 1};
  gemm_kernel::gemm_strided(am, bm, alpha, beta, c, ldc, 1);
}

/// gemm_f32 over `batch` independent products; operand p of item i starts at p + i * stride_p.
/// A stride of 0 shares that operand (the same weights for every item).
template <gemm_kernel::GemmOperand TA = float, gemm_kernel::GemmOperand TB = float>
void gemm_batched(Transpose trans_a, Transpose trans_b, index_t m, index_t n, index_t k, float alpha, const TA* a,
                  index_t lda, index_t stride_a, const TB* b, index_t ldb, index_t stride_b, float beta, float* c,
                  index_t ldc, index_t stride_c, index_t batch) {
  if (batch < 0) throw ShapeError("gemm_batched: negative batch count " + std::to_string(batch));
  for (index_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta, c + i * stride_c,
             ldc);
}

namespace gemm_kernel::detail {
template <class T>
StridedMatrix<T> matrix_of(const TensorView<const T>& v, index_t item) {
  const int r = v.rank();
  const T* base = v.data() + (r == 3 && v.size(0) > 1 ? item * v.stride(0) : 0);
  return {base, v.size(r - 2), v.size(r - 1), v.stride(r - 2), v.stride(r - 1)};
}
}  // namespace gemm_kernel::detail

/// c = alpha * a @ b + beta * c for views of rank 2 ([M,K] x [K,N] -> [M,N]) or 3 (a leading batch axis; an
/// operand whose batch extent is 1, or of rank 2, is shared by every item). Any strides: use transpose() views
/// for transposed operands.
template <gemm_kernel::GemmOperand TA, gemm_kernel::GemmOperand TB>
void matmul(TensorView<const TA> a, TensorView<const TB> b, TensorView<float> c, float alpha = 1.0f, float beta = 0.0f) {
  const auto describe = [&] { return " (a " + a.shape().str() + ", b " + b.shape().str() + ", c " + c.shape().str() + ")"; };
  for (int r : {a.rank(), b.rank(), c.rank()})
    if (r != 2 && r != 3) throw ShapeError("matmul: operands must have rank 2 or 3" + describe());
  const index_t batch = c.rank() == 3 ? c.size(0) : 1;
  for (const index_t nb : {a.rank() == 3 ? a.size(0) : 1, b.rank() == 3 ? b.size(0) : 1})
    if (nb != 1 && nb != batch) throw ShapeError("matmul: batch extents do not match" + describe());
  const index_t m = c.size(c.rank() - 2), n = c.size(c.rank() - 1);
  if (a.size(a.rank() - 2) != m || b.size(b.rank() - 1) != n || a.size(a.rank() - 1) != b.size(b.rank() - 2))
    throw ShapeError("matmul: extents do not chain as [M,K] x [K,N] -> [M,N]" + describe());
  for (index_t i = 0; i < batch; ++i) {
    float* ci = c.data() + (c.rank() == 3 ? i * c.stride(0) : 0);
    gemm_kernel::gemm_strided(gemm_kernel::detail::matrix_of(a, i), gemm_kernel::detail::matrix_of(b, i), alpha, beta, ci,
                       c.stride(c.rank() - 2), c.stride(c.rank() - 1));
  }
}

/// a @ b as a new contiguous tensor ([M,N], or [B,M,N] when either operand has a batch axis).
template <gemm_kernel::GemmOperand TA, gemm_kernel::GemmOperand TB>
Tensor<float> matmul(TensorView<const TA> a, TensorView<const TB> b) {
  if (a.rank() < 2 || b.rank() < 2 || a.rank() > 3 || b.rank() > 3)
    throw ShapeError("matmul: operands must have rank 2 or 3 (a " + a.shape().str() + ", b " + b.shape().str() + ")");
  const index_t batch = std::max(a.rank() == 3 ? a.size(0) : 1, b.rank() == 3 ? b.size(0) : 1);
  const index_t m = a.size(a.rank() - 2), n = b.size(b.rank() - 1);
  Tensor<float> c = (a.rank() == 3 || b.rank() == 3) ? Tensor<float>::zeros({batch, m, n}) : Tensor<float>::zeros({m, n});
  matmul(a, b, c.view(), 1.0f, 0.0f);
  return c;
}

/// A matrix packed once into the running micro-kernel's panels (see gemm/prepacked.hpp).
using gemm_kernel::PackedMatrix;

/// Packs the right operand op(B) [K x N] of later gemm() calls: the weights of a linear layer y = x W^T are
/// pack_weights_b(Transpose::yes, in_features, out_features, W, in_features). bf16/f16 are widened here, once.
template <gemm_kernel::GemmOperand T>
PackedMatrix pack_weights_b(Transpose trans_b, index_t k, index_t n, const T* b, index_t ldb) {
  gemm_kernel::detail::check_extents(0, n, k, "pack_weights_b");
  const bool tb = trans_b == Transpose::yes;
  if (k > 0 && n > 0) gemm_kernel::detail::check_leading("pack_weights_b", "ldb", ldb, tb ? k : n);
  return gemm_kernel::pack_matrix(gemm_kernel::Operand::b, gemm_kernel::StridedMatrix<T>{b, k, n, tb ? 1 : ldb, tb ? ldb : 1});
}

/// Packs the left operand op(A) [M x K] of later gemm() calls (the weights of a convolution, [O, C*kh*kw]).
template <gemm_kernel::GemmOperand T>
PackedMatrix pack_weights_a(Transpose trans_a, index_t m, index_t k, const T* a, index_t lda) {
  gemm_kernel::detail::check_extents(m, 0, k, "pack_weights_a");
  const bool ta = trans_a == Transpose::yes;
  if (k > 0 && m > 0) gemm_kernel::detail::check_leading("pack_weights_a", "lda", lda, ta ? m : k);
  return gemm_kernel::pack_matrix(gemm_kernel::Operand::a, gemm_kernel::StridedMatrix<T>{a, m, k, ta ? 1 : lda, ta ? lda : 1});
}

/// C[M x N] = alpha * op(A) * B + beta * C with B pre-packed by pack_weights_b (N and K are B's).
template <gemm_kernel::GemmOperand TA = float>
void gemm(Transpose trans_a, index_t m, float alpha, const TA* a, index_t lda, const PackedMatrix& b, float beta,
          float* c, index_t ldc) {
  const index_t n = b.cols(), k = b.rows();
  gemm_kernel::detail::check_extents(m, n, k, "gemm");
  if (m == 0 || n == 0) return;
  const bool ta = trans_a == Transpose::yes;
  if (k > 0) gemm_kernel::detail::check_leading("gemm", "lda", lda, ta ? m : k);
  gemm_kernel::detail::check_leading("gemm", "ldc", ldc, n);
  const gemm_kernel::StridedMatrix<TA> am{a, m, k, ta ? 1 : lda, ta ? lda : 1};
  b.check_for(gemm_kernel::Operand::b, gemm_kernel::running_blocking());
  if (const kernel_library::Table* library = simd::library_kernels())
    return library->gemm_packed_b(alpha, gemm_kernel::to_table(am), gemm_kernel::to_table(b.source()), beta, c, ldc);
  const gemm_kernel::Workspace ws(m, n, k, true, false);
  simd::dispatch(gemm_kernel::detail::GemmPackedB{})(alpha, am, b.source(), beta, c, ldc, ws);
}

/// C[M x N] = alpha * A * op(B) + beta * C with A pre-packed by pack_weights_a (M and K are A's).
template <gemm_kernel::GemmOperand TB = float>
void gemm(const PackedMatrix& a, Transpose trans_b, index_t n, float alpha, const TB* b, index_t ldb, float beta,
          float* c, index_t ldc) {
  const index_t m = a.rows(), k = a.cols();
  gemm_kernel::detail::check_extents(m, n, k, "gemm");
  if (m == 0 || n == 0) return;
  const bool tb = trans_b == Transpose::yes;
  if (k > 0) gemm_kernel::detail::check_leading("gemm", "ldb", ldb, tb ? k : n);
  gemm_kernel::detail::check_leading("gemm", "ldc", ldc, n);
  const gemm_kernel::StridedMatrix<TB> bm{b, k, n, tb ? 1 : ldb, tb ? ldb : 1};
  a.check_for(gemm_kernel::Operand::a, gemm_kernel::running_blocking());
  if (const kernel_library::Table* library = simd::library_kernels())
    return library->gemm_packed_a(alpha, gemm_kernel::to_table(a.source()), gemm_kernel::to_table(bm), beta, c, ldc);
  const gemm_kernel::Workspace ws(m, n, k, false, true);
  simd::dispatch(gemm_kernel::detail::GemmPackedA{})(alpha, a.source(), bm, beta, c, ldc, ws);
}

LATENTKIT_NAMESPACE_END
