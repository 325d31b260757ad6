// GEMM packing: copies of A and B rearranged into the order the micro-kernel reads them, converted to float.
//
// An A panel holds MR rows of a KC slice, step k first: a[k * MR + i]. A B panel holds NR columns of a KC slice:
// b[k * NR + j]. Rows/columns past the matrix edge are zero, so edge tiles run the same code as full ones and sum
// their valid elements in the same order. bf16 and f16 operands (weights) are widened to float here, once per
// panel, so the micro-kernel only ever sees float.
#pragma once
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "latentkit/config/config.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/core/shape.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

/// Element types an operand may be stored in.
template <class T>
concept GemmOperand = std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

/// A read-only strided matrix: element (r, c) is data[r * row_stride + c * col_stride].
/// Transposition is a swap of the strides, so every operand layout goes through one packing path.
template <GemmOperand T>
struct StridedMatrix {
  const T* data = nullptr;
  index_t rows = 0, cols = 0;
  index_t row_stride = 0, col_stride = 1;

  StridedMatrix transposed() const noexcept { return {data, cols, rows, col_stride, row_stride}; }
  const T& operator()(index_t r, index_t c) const noexcept { return data[r * row_stride + c * col_stride]; }
};

/// Widening to float: exact for every source type.
inline float to_float(float x) noexcept { return x; }
inline float to_float(bf16 x) noexcept { return std::bit_cast<float>(static_cast<std::uint32_t>(x.bits) << 16); }
inline float to_float(f16 x) noexcept { return static_cast<float>(x); }

/// dst[0:n] = float(src[0:n]) for contiguous src: the widening loops vectorise (bf16 is a shift; f16 uses F16C
/// when the target has it, exact like the scalar conversion).
template <GemmOperand T>
inline void widen_contiguous(const T* __restrict src, float* __restrict dst, index_t n) noexcept {
  index_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    return;
  } else if constexpr (std::is_same_v<T, bf16>) {
    for (; i < n; ++i) {
      std::uint16_t bits;
      std::memcpy(&bits, src + i, sizeof bits);
      dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
    }
  } else {
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
    for (; i < n; ++i) dst[i] = to_float(src[i]);
  }
}

/// Packs rows [i0, i0 + rows) x columns [p0, p0 + kc) of A into one MR-row panel (dst[k * MR + i]).
template <int MR, GemmOperand T>
inline void pack_a_panel(float* __restrict dst, const StridedMatrix<T>& a, index_t i0, int rows, index_t p0,
                         index_t kc) noexcept {
  if (rows < MR) std::fill(dst, dst + kc * MR, 0.0f);
  if (a.row_stride == 1) {  // column-major (a transposed operand): each step k reads MR consecutive values
    for (index_t k = 0; k < kc; ++k) {
      const T* column = &a(i0, p0 + k);
      for (int i = 0; i < rows; ++i) dst[k * MR + i] = to_float(column[i]);
    }
    return;
  }
  for (int i = 0; i < rows; ++i) {  // row-major: read each row along k, write with stride MR
    const T* row = &a(i0 + i, p0);
    const index_t cs = a.col_stride;
    for (index_t k = 0; k < kc; ++k) dst[k * MR + i] = to_float(row[k * cs]);
  }
}

/// Packs rows [p0, p0 + kc) x columns [j0, j0 + cols) of B into one NR-column panel (dst[k * NR + j]).
template <int NR, GemmOperand T>
inline void pack_b_panel(float* __restrict dst, const StridedMatrix<T>& b, index_t j0, int cols, index_t p0,
                         index_t kc) noexcept {
  if (b.col_stride == 1) {  // row-major: each step k is a contiguous run of NR values
    if (cols == NR) {
      for (index_t k = 0; k < kc; ++k) widen_contiguous(&b(p0 + k, j0), dst + k * NR, NR);
    } else {
      for (index_t k = 0; k < kc; ++k) {
        widen_contiguous(&b(p0 + k, j0), dst + k * NR, cols);
        std::fill(dst + k * NR + cols, dst + (k + 1) * NR, 0.0f);
      }
    }
    return;
  }
  if (cols < NR) std::fill(dst, dst + kc * NR, 0.0f);
  for (int j = 0; j < cols; ++j) {  // column-major (weights [N, K] used as B = W^T): read along k
    const T* column = &b(p0, j0 + j);
    const index_t rs = b.row_stride;
    for (index_t k = 0; k < kc; ++k) dst[k * NR + j] = to_float(column[k * rs]);
  }
}

/// 64-byte aligned float scratch (packed panels are read with aligned loads).
struct AlignedFloats {
  struct Free {
    void operator()(float* p) const noexcept { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<float[], Free> data;
  index_t size = 0;

  AlignedFloats() = default;
  explicit AlignedFloats(index_t n)
      : data(static_cast<float*>(::operator new[](static_cast<std::size_t>(std::max<index_t>(n, 1)) * sizeof(float),
                                                  std::align_val_t{64}))),
        size(n) {}
  float* get() const noexcept { return data.get(); }
};

/// Operand sources the blocked driver pulls panels from. A source either packs a panel on demand
/// (`prepacked == false`: pack_panel) or already holds every panel (`prepacked == true`: panel).
///
/// An A source: pack_panel(dst, i0, rows, p0, kc) packs rows [i0, i0+rows) of the K slice [p0, p0+kc).
/// A B source: pack_panel(dst, j0, cols, p0, kc) packs columns [j0, j0+cols) of that slice.
template <int MR, GemmOperand T>
struct StridedASource {
  static constexpr bool prepacked = false;
  StridedMatrix<T> matrix;
  /// Whether the micro-kernel may read A in place (float with unit k stride): see micro_kernel's DirectA.
  bool readable_in_place() const noexcept { return std::is_same_v<T, float> && matrix.col_stride == 1; }
  const float* in_place(index_t i0, index_t p0) const noexcept {
    if constexpr (std::is_same_v<T, float>) return &matrix(i0, p0);
    return nullptr;
  }
  void pack_panel(float* dst, index_t i0, int rows, index_t p0, index_t kc) const noexcept {
    pack_a_panel<MR>(dst, matrix, i0, rows, p0, kc);
  }
};

template <int NR, GemmOperand T>
struct StridedBSource {
  static constexpr bool prepacked = false;
  StridedMatrix<T> matrix;
  void pack_panel(float* dst, index_t j0, int cols, index_t p0, index_t kc) const noexcept {
    pack_b_panel<NR>(dst, matrix, j0, cols, p0, kc);
  }
};

/// Layout of a fully packed operand (every K slice, every panel): slice p0 starts at p0 * padded_extent, and
/// within it panel q (covering rows/columns [q * width, (q+1) * width)) starts at q * width * kc. A block of
/// panels is therefore laid out exactly as the driver's own packing buffer would be.
struct PrepackedLayout {
  index_t extent = 0;         // M (for A) or N (for B)
  index_t depth = 0;          // K
  int panel_width = 0;        // MR or NR
  index_t kc = 0;             // the K slice length it was packed for
  index_t padded_extent() const noexcept { return (extent + panel_width - 1) / panel_width * panel_width; }
  index_t offset(index_t start, index_t p0, index_t slice_kc) const noexcept {
    return p0 * padded_extent() + start * slice_kc;
  }
};

/// A source backed by fully packed panels (PackedOperand in gemm.hpp).
struct PrepackedSource {
  static constexpr bool prepacked = true;
  const float* data;
  PrepackedLayout layout;
  const float* panel(index_t start, index_t p0, index_t kc) const noexcept {
    return data + layout.offset(start, p0, kc);
  }
};

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
