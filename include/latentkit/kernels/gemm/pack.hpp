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

#if defined(__F16C__) || defined(__AVX__)
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

#if defined(__AVX__)
/// In-register transpose of the 8 x 8 tile r[0..7] (row i becomes column i): unpack pairs, shuffle quads, swap
/// 128-bit halves.
inline void transpose_8x8(__m256 r[8]) noexcept {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    __m256 *th = t + 4 * h, *sh = s + 4 * h;
    sh[0] = _mm256_shuffle_ps(th[0], th[2], _MM_SHUFFLE(1, 0, 1, 0));
    sh[1] = _mm256_shuffle_ps(th[0], th[2], _MM_SHUFFLE(3, 2, 3, 2));
    sh[2] = _mm256_shuffle_ps(th[1], th[3], _MM_SHUFFLE(1, 0, 1, 0));
    sh[3] = _mm256_shuffle_ps(th[1], th[3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}

/// Stores the first `count` (1..8) floats of v.
inline void store_first(float* dst, __m256 v, int count) noexcept {
  if (count == 8) return _mm256_storeu_ps(dst, v);
  __m128 part = _mm256_castps256_ps128(v);
  if (count >= 4) {
    _mm_storeu_ps(dst, part);
    dst += 4, count -= 4;
    part = _mm256_extractf128_ps(v, 1);
  }
  if (count >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(dst), part);
    dst += 2, count -= 2;
    part = _mm_movehl_ps(part, part);
  }
  if (count == 1) _mm_store_ss(dst, part);
}
#endif

/// dst[k * Width + i] = float(src[i * stride + k]) for k < kc: `count` rows, each contiguous along k, interleaved
/// into one panel (rows count..Width-1 are zero). Packing a row-major A or a column-major B (weights W used as
/// W^T) is this transpose; with AVX it moves 8 x 8 tiles through registers instead of one element at a time.
template <int Width, GemmOperand T>
inline void interleave_rows(float* __restrict dst, const T* src, index_t stride, int count, index_t kc) noexcept {
  index_t k = 0;
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    for (; k + 8 <= kc; k += 8)
      for (int g = 0; g < Width; g += 8) {  // a group of up to 8 rows: one 8 x 8 tile
        const int in_group = std::min(Width - g, 8), valid = std::clamp(count - g, 0, in_group);
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = i < valid ? _mm256_loadu_ps(src + (g + i) * stride + k) : _mm256_setzero_ps();
        transpose_8x8(r);
        for (int kk = 0; kk < 8; ++kk) store_first(dst + (k + kk) * Width + g, r[kk], in_group);
      }
  }
#endif
  for (; k < kc; ++k) {
    for (int i = 0; i < count; ++i) dst[k * Width + i] = to_float(src[i * stride + k]);
    for (int i = count; i < Width; ++i) dst[k * Width + i] = 0.0f;
  }
}

/// Packs rows [i0, i0 + rows) x columns [p0, p0 + kc) of A into one MR-row panel (dst[k * MR + i]).
template <int MR, GemmOperand T>
inline void pack_a_panel(float* __restrict dst, const StridedMatrix<T>& a, index_t i0, int rows, index_t p0,
                         index_t kc) noexcept {
  if (a.col_stride == 1) return interleave_rows<MR>(dst, &a(i0, p0), a.row_stride, rows, kc);  // row-major
  if (rows < MR) std::fill(dst, dst + kc * MR, 0.0f);
  if (a.row_stride == 1) {  // column-major (a transposed operand): each step k reads MR consecutive values
    for (index_t k = 0; k < kc; ++k) {
      const T* column = &a(i0, p0 + k);
      for (int i = 0; i < rows; ++i) dst[k * MR + i] = to_float(column[i]);
    }
    return;
  }
  for (int i = 0; i < rows; ++i) {  // general strides: read each row along k, write with stride MR
    const T* row = &a(i0 + i, p0);
    const index_t cs = a.col_stride;
    for (index_t k = 0; k < kc; ++k) dst[k * MR + i] = to_float(row[k * cs]);
  }
}

/// One step k of a B block from a contiguous row: row[0:len] (len consecutive columns) goes into consecutive
/// NR-column panels, panel q at dst + q * NR * kc (dst points at step k of panel 0), zeros past len.
template <int NR, GemmOperand T>
inline void split_row_into_panels(float* __restrict dst, const T* row, index_t len, index_t kc) noexcept {
  const index_t full = len / NR, tail = len - full * NR;
  for (index_t q = 0; q < full; ++q) widen_contiguous(row + q * NR, dst + q * NR * kc, NR);  // constant length
  if (tail) {
    float* last = dst + full * NR * kc;
    widen_contiguous(row + full * NR, last, tail);
    std::fill(last + tail, last + NR, 0.0f);
  }
}

/// Packs rows [p0, p0 + kc) x columns [j0, j0 + cols) of B into one NR-column panel (dst[k * NR + j]).
template <int NR, GemmOperand T>
inline void pack_b_panel(float* __restrict dst, const StridedMatrix<T>& b, index_t j0, int cols, index_t p0,
                         index_t kc) noexcept {
  if (b.col_stride == 1) {  // row-major: each step k is a contiguous run of NR values
    for (index_t k = 0; k < kc; ++k) split_row_into_panels<NR>(dst + k * NR, &b(p0 + k, j0), cols, kc);
    return;
  }
  // column-major (weights [N, K] used as B = W^T): each column is contiguous along k
  if (b.row_stride == 1) return interleave_rows<NR>(dst, &b(p0, j0), b.col_stride, cols, kc);
  if (cols < NR) std::fill(dst, dst + kc * NR, 0.0f);
  for (int j = 0; j < cols; ++j) {  // general strides
    const T* column = &b(p0, j0 + j);
    const index_t rs = b.row_stride;
    for (index_t k = 0; k < kc; ++k) dst[k * NR + j] = to_float(column[k * rs]);
  }
}

/// Packs the KC x nc block of B at (p0, j0) into consecutive NR-column panels (panel q at dst + q * NR * kc).
/// A row-major B is read row by row, each row once and in order (a panel at a time would read NR floats from
/// each of kc rows, a strided walk the hardware prefetchers follow poorly when B comes from DRAM).
template <int NR, GemmOperand T>
inline void pack_b_block(float* __restrict dst, const StridedMatrix<T>& b, index_t j0, index_t nc, index_t p0,
                         index_t kc) noexcept {
  const index_t panels = (nc + NR - 1) / NR;
  if (b.col_stride != 1) {
    for (index_t q = 0; q < panels; ++q)
      pack_b_panel<NR>(dst + q * NR * kc, b, j0 + q * NR, static_cast<int>(std::min<index_t>(NR, nc - q * NR)), p0, kc);
    return;
  }
  for (index_t k = 0; k < kc; ++k) split_row_into_panels<NR>(dst + k * NR, &b(p0 + k, j0), nc, kc);
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

/// Operand sources the blocked driver pulls panels from. A source either packs on demand (`prepacked == false`)
/// or already holds every panel (`prepacked == true`: panel(start, p0, kc)).
///
/// An A source: pack_panel(dst, i0, rows, p0, kc) packs rows [i0, i0+rows) of the K slice [p0, p0+kc).
/// A B source: pack_block(dst, j0, nc, p0, kc) packs columns [j0, j0+nc) of that slice, panel q at
/// dst + q * NR * kc (a whole block, so the source can read its memory in the best order).
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
  /// Whether a tile may read B's rows in place (float with unit column stride): see CopiedBPanel.
  bool readable_in_place() const noexcept { return std::is_same_v<T, float> && matrix.col_stride == 1; }
  const float* in_place(index_t p0, index_t j0) const noexcept {
    if constexpr (std::is_same_v<T, float>) return &matrix(p0, j0);
    return nullptr;
  }
  /// Packs the panels of columns [j0, j0 + nc) of the slice [p0, p0 + kc), panel q at dst + q * NR * kc.
  void pack_block(float* dst, index_t j0, index_t nc, index_t p0, index_t kc) const noexcept {
    pack_b_block<NR>(dst, matrix, j0, nc, p0, kc);
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
