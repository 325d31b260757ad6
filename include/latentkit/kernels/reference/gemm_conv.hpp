// Scalar float64 references for GEMM and conv2d: the plain definitions, summed in double, used by tests to
// check the optimised kernels. Slow by design; never used on a hot path.
#pragma once
#include <type_traits>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/shape.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace reference {

/// C[i,j] = alpha * sum_k A(i,k) B(k,j) + beta * C[i,j]; a(i, k) and b(k, j) are callables returning the
/// (already rounded) operand values, c(i, j) returns a reference to the output.
template <class A, class B, class C>
void gemm(index_t m, index_t n, index_t k, double alpha, A&& a, B&& b, double beta, C&& c) {
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (index_t p = 0; p < k; ++p) sum += static_cast<double>(a(i, p)) * static_cast<double>(b(p, j));
      auto& out = c(i, j);
      out = static_cast<std::remove_reference_t<decltype(out)>>(alpha * sum + (beta == 0.0 ? 0.0 : beta * static_cast<double>(out)));
    }
}

/// Geometry of a 2-D convolution: stride and (possibly asymmetric) zero padding.
struct ConvGeometry {
  index_t stride_h = 1, stride_w = 1;
  index_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};

/// NCHW convolution in double: out[b,o,y,x] = bias[o] + sum_{c,dy,dx} w[o,c,dy,dx] * in[b,c,y*s+dy-pt,x*s+dx-pl].
/// input(b, c, y, x), weight(o, c, dy, dx) and bias(o) are callables; returns the output [B,O,Ho,Wo] contiguous.
template <class In, class W, class Bias>
std::vector<double> conv2d(index_t batch, index_t channels, index_t height, index_t width, index_t out_channels,
                           index_t kh, index_t kw, const ConvGeometry& g, In&& input, W&& weight, Bias&& bias,
                           index_t& out_height, index_t& out_width) {
  out_height = (height + g.pad_top + g.pad_bottom - kh) / g.stride_h + 1;
  out_width = (width + g.pad_left + g.pad_right - kw) / g.stride_w + 1;
  std::vector<double> out(static_cast<std::size_t>(batch * out_channels * out_height * out_width));
  std::size_t idx = 0;
  for (index_t b = 0; b < batch; ++b)
    for (index_t o = 0; o < out_channels; ++o)
      for (index_t y = 0; y < out_height; ++y)
        for (index_t x = 0; x < out_width; ++x) {
          double sum = static_cast<double>(bias(o));
          for (index_t c = 0; c < channels; ++c)
            for (index_t dy = 0; dy < kh; ++dy)
              for (index_t dx = 0; dx < kw; ++dx) {
                const index_t iy = y * g.stride_h + dy - g.pad_top, ix = x * g.stride_w + dx - g.pad_left;
                if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
                sum += static_cast<double>(weight(o, c, dy, dx)) * static_cast<double>(input(b, c, iy, ix));
              }
          out[idx++] = sum;
        }
  return out;
}

}  // namespace reference
LATENTKIT_NAMESPACE_END
