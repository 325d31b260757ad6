// Resampling and joining kernels of the UNet decoder path: nearest 2x upsampling (NCHW), concatenation along
// channels (skip connections) and residual addition. All are exact (copies or one rounding per element), threaded
// over independent rows, and accept strided views (through dense copies).
#pragma once
#include <algorithm>
#include <cstring>
#include <string>

#include "latentkit/core/elementwise.hpp"
#include "latentkit/kernels/activation.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace ops_detail {

inline void require_rank4(const char* op, const char* name, const Dims& shape) {
  if (shape.rank() != 4)
    throw ShapeError(std::string(op) + ": " + name + " has shape " + shape.str() + ", expected [N, C, H, W]");
}

}  // namespace ops_detail

/// y [N, C, 2H, 2W] = nearest-neighbour 2x upsampling of x [N, C, H, W] (torch interpolate mode="nearest").
inline void upsample_nearest2x(TensorView<const float> x, TensorView<float> y) {
  ops_detail::require_rank4("upsample_nearest2x", "input", x.shape());
  const Dims expected{x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)};
  if (!(y.shape() == expected))
    throw ShapeError("upsample_nearest2x: output " + y.shape().str() + " should be " + expected.str());
  const Tensor<float> dense = contiguous(x);
  Tensor<float> out_dense;
  float* out = y.data();
  if (!y.is_contiguous()) {
    out_dense = Tensor<float>(expected);
    out = out_dense.data();
  }
  const float* in = dense.data();
  const index_t rows = x.size(0) * x.size(1) * x.size(2), w = x.size(3);
  LATENTKIT_OMP(parallel for schedule(static))
  for (index_t r = 0; r < rows; ++r) {
    const float* src = in + r * w;
    float* dst = out + r * 4 * w;  // output rows 2r and 2r+1, each 2w wide
    for (index_t j = 0; j < w; ++j) dst[2 * j] = dst[2 * j + 1] = src[j];
    std::memcpy(dst + 2 * w, dst, static_cast<std::size_t>(2 * w) * sizeof(float));
  }
  if (out != y.data()) copy(out_dense.view(), y);
}

/// y [N, Ca + Cb, spatial...] = cat(a, b) along channels (axis 1); a and b agree on every other axis.
inline void concat_channels(TensorView<const float> a, TensorView<const float> b, TensorView<float> y) {
  if (a.rank() < 2 || a.rank() != b.rank() || a.rank() != y.rank())
    throw ShapeError("concat_channels: shapes " + a.shape().str() + ", " + b.shape().str() + " -> " + y.shape().str() +
                     " need equal ranks >= 2");
  Dims expected = a.shape();
  for (int i = 0; i < a.rank(); ++i)
    if (i != 1 && a.size(i) != b.size(i))
      throw ShapeError("concat_channels: " + a.shape().str() + " and " + b.shape().str() + " differ outside axis 1");
  expected[1] = a.size(1) + b.size(1);
  if (!(y.shape() == expected))
    throw ShapeError("concat_channels: output " + y.shape().str() + " should be " + expected.str());
  // Copy through views: each half of y is a channel slice, and copy() handles any strides.
  copy(a, y.slice(1, 0, a.size(1)));
  copy(b, y.slice(1, a.size(1), expected[1]));
}

/// y = a + b (same shapes; y may be a or b: the residual connection).
inline void residual_add(TensorView<const float> a, TensorView<const float> b, TensorView<float> y) {
  if (!(a.shape() == b.shape()) || !(a.shape() == y.shape()))
    throw ShapeError("residual_add: shapes " + a.shape().str() + " + " + b.shape().str() + " -> " + y.shape().str() +
                     " must be equal");
  latentkit::add(a, b, y);  // core's element-wise add: strides, threading, in place (y == a or b) included
}

/// Allocating forms.
inline Tensor<float> upsample_nearest2x(TensorView<const float> x) {
  ops_detail::require_rank4("upsample_nearest2x", "input", x.shape());
  Tensor<float> y(Dims{x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)});
  upsample_nearest2x(x, y.view());
  return y;
}
inline Tensor<float> concat_channels(TensorView<const float> a, TensorView<const float> b) {
  if (a.rank() < 2) throw ShapeError("concat_channels: rank must be >= 2, got " + a.shape().str());
  Dims shape = a.shape();
  shape[1] = a.size(1) + (b.rank() >= 2 ? b.size(1) : 0);
  Tensor<float> y(shape);
  concat_channels(a, b, y.view());
  return y;
}
inline Tensor<float> residual_add(TensorView<const float> a, TensorView<const float> b) {
  Tensor<float> y(a.shape());
  residual_add(a, b, y.view());
  return y;
}

LATENTKIT_NAMESPACE_END
