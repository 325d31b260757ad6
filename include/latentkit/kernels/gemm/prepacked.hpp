// Pre-packed GEMM operands: a weight matrix packed once into micro-kernel panels and reused by every call.
//
// A layer multiplies the same weights by a new activation on every step; packing them once removes the packing
// (and the bf16/f16 widening) from the per-call cost. The packed layout depends on the micro-kernel (MR or NR,
// and KC), so a PackedMatrix records the blocking it was made for and is checked against the running kernel.
#pragma once
#include <algorithm>
#include <string>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/kernels/gemm/blocking.hpp"
#include "latentkit/kernels/gemm/driver.hpp"
#include "latentkit/kernels/gemm/pack.hpp"
#include "latentkit/kernels/gemm/table_operands.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

/// Which operand of C = A * B a packed matrix is (A: MR-row panels, B: NR-column panels).
enum class Operand { a, b };

/// A whole matrix in micro-kernel panels, float32 (widened from its stored type), for the running CPU.
class PackedMatrix {
 public:
  PackedMatrix() = default;
  Operand operand() const noexcept { return operand_; }
  /// Extents of the logical matrix (M x K for an A operand, K x N for a B operand).
  index_t rows() const noexcept { return operand_ == Operand::a ? layout_.extent : layout_.depth; }
  index_t cols() const noexcept { return operand_ == Operand::a ? layout_.depth : layout_.extent; }
  const PrepackedLayout& layout() const noexcept { return layout_; }
  PrepackedSource source() const noexcept { return {storage_.get(), layout_}; }
  bool empty() const noexcept { return storage_.size == 0 && layout_.extent == 0; }

  /// Throws unless this matrix is the `expected` operand and was packed for the kernel this CPU runs.
  void check_for(Operand expected, const BlockingInfo& running) const {
    const int width = expected == Operand::a ? running.mr : running.nr;
    if (operand_ != expected)
      throw ShapeError(std::string("gemm: a packed ") + (operand_ == Operand::a ? "A" : "B") +
                       " operand was passed where the " + (expected == Operand::a ? "A" : "B") + " operand is expected");
    if (layout_.panel_width != width || layout_.kc != running.kc)
      throw Error("gemm: packed matrix was made for another micro-kernel (panel width " +
                  std::to_string(layout_.panel_width) + ", KC " + std::to_string(layout_.kc) + "; running kernel " +
                  std::to_string(width) + ", " + std::to_string(running.kc) + ")");
  }

  /// Packs `m` (M x K for Operand::a, K x N for Operand::b) for the kernel this CPU runs.
  template <GemmOperand T>
  static PackedMatrix pack(Operand operand, const StridedMatrix<T>& m) {
    const BlockingInfo bi = running_blocking();
    PackedMatrix p;
    p.operand_ = operand;
    const StridedMatrix<T> oriented = operand == Operand::a ? m : m.transposed();  // panels run along rows
    p.layout_ = {oriented.rows, oriented.cols, operand == Operand::a ? bi.mr : bi.nr, bi.kc};
    p.storage_ = AlignedFloats(p.layout_.padded_extent() * p.layout_.depth);
    if (const kernel_library::Table* library = simd::library_kernels())
      library->pack(operand == Operand::a, to_table(m), to_table(p.source()), p.storage_.get());
    else
      simd::dispatch(Packer{})(operand, m, p.layout_, p.storage_.get());
    return p;
  }

  /// Packs for the kernels of `Arch` (what pack() dispatches to).
  struct Packer {
    template <class Arch, class T>
    void operator()(Arch, Operand operand, const StridedMatrix<T>& m, const PrepackedLayout& layout,
                    float* out) const noexcept {
      using blocking = GemmBlocking<Arch>;
      const index_t width = layout.panel_width, panels = ceil_div(layout.extent, width);
      for (index_t p0 = 0; p0 < layout.depth; p0 += blocking::kc) {
        const index_t kc = std::min(blocking::kc, layout.depth - p0);
        LATENTKIT_OMP(parallel for schedule(static))
        for (index_t q = 0; q < panels; ++q) {
          const int count = static_cast<int>(std::min(width, layout.extent - q * width));
          float* dst = out + layout.offset(q * width, p0, kc);
          if (operand == Operand::a)
            pack_a_panel<blocking::mr>(dst, m, q * width, count, p0, kc);
          else
            pack_b_panel<blocking::nr>(dst, m, q * width, count, p0, kc);
        }
      }
    }
  };

 private:
  Operand operand_ = Operand::b;
  PrepackedLayout layout_{};
  AlignedFloats storage_;
};

namespace detail {

/// C = alpha * A * packed(B) + beta * C.
struct GemmPackedB {
  template <class Arch, class T>
  void operator()(Arch arch, float alpha, const StridedMatrix<T>& a, const PrepackedSource& b, float beta, float* c,
                  index_t ldc, const Workspace& ws) const noexcept {
    run_blocked(arch, a.rows, b.layout.extent, a.cols, alpha, StridedASource<GemmBlocking<Arch>::mr, T>{a}, b, beta,
                c, ldc, ws);
  }
};

/// C = alpha * packed(A) * B + beta * C, B from any panel source (a strided matrix, an image's im2col).
struct GemmPackedA {
  template <class Arch, class T>
  void operator()(Arch arch, float alpha, const PrepackedSource& a, const StridedMatrix<T>& b, float beta, float* c,
                  index_t ldc, const Workspace& ws) const noexcept {
    run_blocked(arch, a.layout.extent, b.cols, a.layout.depth, alpha, a, StridedBSource<GemmBlocking<Arch>::nr, T>{b},
                beta, c, ldc, ws);
  }
};

}  // namespace detail

/// Packs a matrix for the kernel the running CPU dispatches to.
template <GemmOperand T>
PackedMatrix pack_matrix(Operand operand, const StridedMatrix<T>& m) {
  if (m.rows < 0 || m.cols < 0) throw ShapeError("gemm: cannot pack a matrix with a negative extent");
  return PackedMatrix::pack(operand, m);
}

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
