// Implicit im2col: B panels of a convolution's GEMM, packed straight from the image.
//
// A convolution NCHW is C[o, p] = sum_k W[o, k] * X[k, p] with k = (c, dy, dx) and p = (y, x) an output pixel:
// X is the im2col matrix, never built in full. The GEMM driver asks for one packed KC x NC block at a time and
// this source fills it from the image, so the extra memory is one packed block (plus one L1-sized row buffer),
// and the panels it writes are the ones the micro-kernel would get from a materialised im2col matrix.
#pragma once
#include <algorithm>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "latentkit/config/config.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/kernels/conv/geometry.hpp"
#include "latentkit/kernels/gemm/pack.hpp"

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

  /// Packs the panels of output pixels [j0, j0 + nc) of the K slice [p0, p0 + kc) (panel q at dst + q * NR * kc,
  /// element (k, j) at k * NR + j, zeros past nc). Each im2col row is first built contiguously for a chunk of
  /// pixels (one run per output row it crosses, instead of one or two short runs per panel), then cut into panels.
  void pack_block(float* __restrict dst, index_t j0, index_t nc, index_t p0, index_t kc) const noexcept {
    constexpr index_t chunk = 16 * NR;  // pixels per pass: the row buffer stays in L1
    alignas(64) float row[chunk];
    const index_t taps = kernel_h * kernel_w;
    for (index_t first = 0; first < nc; first += chunk) {
      const index_t len = std::min(chunk, nc - first);
      const index_t oy = (j0 + first) / out_width, ox = (j0 + first) % out_width;  // the chunk's first pixel
      float* panels = dst + first * kc;  // `first` is a multiple of NR: panel first / NR
      index_t c = p0 / taps, dy = (p0 % taps) / kernel_w, dx = p0 % kernel_w;
      for (index_t k = 0; k < kc; ++k) {
        fill_row(row, oy, ox, len, c, dy, dx);
        split_row_into_panels<NR>(panels + k * NR, row, len, kc);
        if (++dx == kernel_w) {
          dx = 0;
          if (++dy == kernel_h) dy = 0, ++c;
        }
      }
    }
  }

 private:
  /// out[0:len] = im2col row k = (c, dy, dx) at the `len` output pixels from (oy, ox) on, in raster order: one
  /// run per output row they cross.
  void fill_row(float* __restrict out, index_t oy, index_t ox, index_t len, index_t c, index_t dy,
                index_t dx) const noexcept {
    const index_t step = geometry.stride_w;
    for (index_t done = 0; done < len; ++oy, ox = 0) {
      const index_t count = std::min(len - done, out_width - ox);
      float* run = out + done;
      done += count;
      const index_t y = oy * geometry.stride_h - geometry.pad_top + dy;
      if (y < 0 || y >= height) {
        std::fill(run, run + count, 0.0f);
        continue;
      }
      const index_t x0 = ox * step - geometry.pad_left + dx;  // input x of the run's first pixel
      // Pixels whose input x falls inside [0, width): [lo, hi); the others read the zero padding.
      const index_t lo = std::clamp<index_t>(x0 >= 0 ? 0 : (-x0 + step - 1) / step, 0, count);
      const index_t hi = std::clamp<index_t>(x0 >= width ? 0 : (width - 1 - x0) / step + 1, lo, count);
      std::fill(run, run + lo, 0.0f);
      // Pointers are formed from the first in-range pixel only: row + x0 with x0 < 0 would point before the
      // image, which is undefined behaviour even if never dereferenced.
      if (lo < hi) {
        const float* src = image + c * sc + y * sy + (x0 + lo * step) * sx;  // inside the image
        if (step == 1 && sx == 1) {
          std::copy(src, src + (hi - lo), run + lo);
        } else if (step == 2 && sx == 1) {
          gather_even(run + lo, src, hi - lo);
        } else {
          const index_t stride = step * sx;
          for (index_t j = lo; j < hi; ++j) run[j] = src[(j - lo) * stride];
        }
      }
      std::fill(run + hi, run + count, 0.0f);
    }
  }
};

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
