// Implicit im2col: B panels of a convolution's GEMM, packed straight from the image.
//
// A convolution NCHW is C[o, p] = sum_k W[o, k] * X[k, p] with k = (c, dy, dx) and p = (y, x) an output pixel:
// X is the im2col matrix, never built in full. The GEMM driver asks for one KC x NR panel at a time and this
// source fills it from the image, so the extra memory is one packed block, and the panel it writes is the same
// one the micro-kernel would get from a materialised im2col matrix.
#pragma once
#include <algorithm>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "latentkit/config/config.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/kernels/conv/geometry.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

/// dst[j] = src[2 j] for j < n: the input row of a stride-2 convolution tap. Reads src[0 .. 2n - 2] only.
inline void gather_even(float* __restrict dst, const float* __restrict src, index_t n) noexcept {
  index_t j = 0;
#if defined(__AVX2__)
  // 8 outputs from 16 inputs: keep the even lanes of each 128-bit half, then put the four 64-bit pairs in order.
  // A block reads src[2j .. 2j + 15], so it runs only while the last input it touches is still needed (j + 8 < n).
  for (; j + 8 < n; j += 8) {
    const __m256 lo = _mm256_loadu_ps(src + 2 * j), hi = _mm256_loadu_ps(src + 2 * j + 8);
    const __m256 even = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // s0 s2 s8 s10 | s4 s6 s12 s14
    _mm256_storeu_ps(dst + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), _MM_SHUFFLE(3, 1, 2, 0))));
  }
#endif
  for (; j < n; ++j) dst[j] = src[2 * j];
}

template <int NR>
struct Im2colSource {
  static constexpr bool prepacked = false;
  const float* image;                 // one batch item: element (c, y, x) at c * sc + y * sy + x * sx
  index_t height, width, sc, sy, sx;
  index_t kernel_h, kernel_w;
  Conv2dGeometry geometry;
  index_t out_width;

  /// Packs columns (output pixels) [j0, j0 + cols) of the K slice [p0, p0 + kc) into dst[k * NR + j].
  void pack_panel(float* __restrict dst, index_t j0, int cols, index_t p0, index_t kc) const noexcept {
    // The panel's pixels split into runs that lie in one output row; each run reads one input row per k.
    struct Run { int first, count; index_t y0, x0; };  // y0, x0: input coords of (dy, dx) = (0, 0)
    Run runs[NR];
    int n_runs = 0;
    for (int j = 0; j < cols;) {
      const index_t p = j0 + j, oy = p / out_width, ox = p % out_width;
      const int count = static_cast<int>(std::min<index_t>(cols - j, out_width - ox));
      runs[n_runs++] = {j, count, oy * geometry.stride_h - geometry.pad_top, ox * geometry.stride_w - geometry.pad_left};
      j += count;
    }
    const index_t taps = kernel_h * kernel_w, step = geometry.stride_w;
    index_t c = p0 / taps, dy = (p0 % taps) / kernel_w, dx = p0 % kernel_w;
    for (index_t k = 0; k < kc; ++k, dst += NR) {
      if (cols < NR) std::fill(dst + cols, dst + NR, 0.0f);
      for (int r = 0; r < n_runs; ++r) {
        const Run& run = runs[r];
        float* out = dst + run.first;
        const index_t y = run.y0 + dy;
        if (y < 0 || y >= height) {
          std::fill(out, out + run.count, 0.0f);
          continue;
        }
        const float* row = image + c * sc + y * sy;
        const index_t x0 = run.x0 + dx;
        // Columns whose input x falls inside [0, width): [lo, hi); the others read the zero padding.
        const index_t lo = std::clamp<index_t>(x0 >= 0 ? 0 : (-x0 + step - 1) / step, 0, run.count);
        const index_t hi = std::clamp<index_t>(x0 >= width ? 0 : (width - 1 - x0) / step + 1, lo, run.count);
        std::fill(out, out + lo, 0.0f);
        // Pointers are formed from the first in-range column only: row + x0 with x0 < 0 would point before the
        // image, which is undefined behaviour even if never dereferenced.
        if (lo < hi) {
          const float* src = row + (x0 + lo * step) * sx;  // input x of column lo, inside [0, width)
          if (step == 1 && sx == 1) {
            for (index_t j = lo; j < hi; ++j) out[j] = src[j - lo];
          } else if (step == 2 && sx == 1) {
            gather_even(out + lo, src, hi - lo);
          } else {
            const index_t stride = step * sx;
            for (index_t j = lo; j < hi; ++j) out[j] = src[(j - lo) * stride];
          }
        }
        std::fill(out + hi, out + run.count, 0.0f);
      }
      if (++dx == kernel_w) {
        dx = 0;
        if (++dy == kernel_h) dy = 0, ++c;
      }
    }
  }
};

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
