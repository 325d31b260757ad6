// Activations on float tensors: SiLU, GELU (erf and tanh forms), QuickGELU, ReLU, the 3 tanh(x/3) clamp, GEGLU,
// softmax over the last axis.
//
// Every function is vectorised with xsimd math (exp, erf, tanh; about 1-2 ulp in xsimd 8.1) and threaded over
// fixed chunks. The element-wise activations run on core/elementwise.hpp's machinery: the tail of an array goes
// through the same batch code (padded), so every element is computed by exactly the same instructions whatever the
// thread count or strides. Softmax and GEGLU copy strided inputs to a dense buffer; `y` may be the same view as `x`.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/kernel_library/table.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/backend/simd/fma.hpp"
#include "latentkit/core/elementwise.hpp"
#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace activation {

/// The batch formulas, also usable by fused kernels (norm + SiLU). B is an xsimd batch of float.
struct Silu {
  template <class B>
  B operator()(B x) const noexcept { return x / (B(1.0f) + xsimd::exp(-x)); }  // exp overflow gives x/inf = -0
};
struct GeluErf {  // 0.5 x (1 + erf(x / sqrt 2)): torch's default GELU, CLIP (HF "gelu"), ldm GEGLU
  template <class B>
  B operator()(B x) const noexcept { return B(0.5f) * x * (B(1.0f) + xsimd::erf(x * B(0.70710678118654752f))); }
};
struct GeluTanh {  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): torch's approximate="tanh"
  template <class B>
  B operator()(B x) const noexcept {
    const B inner = B(0.79788456080286536f) * simd::fma(B(0.044715f) * x * x, x, x);
    return B(0.5f) * x * (B(1.0f) + xsimd::tanh(inner));
  }
};
struct Relu {
  template <class B>
  B operator()(B x) const noexcept { return xsimd::max(x, B(0.0f)); }
};
struct SoftClamp3 {  // tanh(x / 3) * 3: TAESD's decoder input clamp
  template <class B>
  B operator()(B x) const noexcept { return xsimd::tanh(x / B(3.0f)) * B(3.0f); }
};
struct QuickGelu {  // x * sigmoid(1.702 x): openai CLIP
  template <class B>
  B operator()(B x) const noexcept { return x / (B(1.0f) + xsimd::exp(B(-1.702f) * x)); }
};

}  // namespace activation

namespace ops_detail {

/// Runs a row kernel (softmax, norms) on dense float buffers for any views: strided inputs/outputs go through dense
/// copies. Element-wise activations need no such copies: core/elementwise.hpp reads strided views directly.
template <class F>
void with_dense(TensorView<const float> x, TensorView<float> y, F&& dense_fn) {
  if (x.is_contiguous() && y.is_contiguous()) {
    dense_fn(x.data(), y.data());
    return;
  }
  Tensor<float> xin = contiguous(x);
  Tensor<float> yout(y.shape());
  dense_fn(xin.data(), yout.data());
  copy(yout.view(), y);
}

template <class Op>
void apply_unary(const char* name, TensorView<const float> x, TensorView<float> y) {
  if (!(x.shape() == y.shape()))
    throw ShapeError(std::string(name) + ": input " + x.shape().str() + " and output " + y.shape().str() + " differ");
  // The activation functors have core's per-element op interface (batch -> batch), so core's runner does the
  // chunking, threading, strides and padded tail: every element goes through the same batch code.
  latentkit::detail::elementwise(name, Op{}, y, x);
}

struct SoftmaxKernel {
  template <class Arch>
  void operator()(Arch, const float* x, float* y, index_t rows, index_t cols) const {
    using B = xsimd::batch<float, Arch>;
    constexpr index_t W = static_cast<index_t>(B::size);
    constexpr float neg_inf = -std::numeric_limits<float>::infinity();
    LATENTKIT_OMP(parallel for schedule(static))
    for (index_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      // Subtracting the row max keeps exp in range; a row of -inf (fully masked) gives zeros, not NaN.
      B mx(neg_inf);
      index_t j = 0;
      for (; j + W <= cols; j += W) mx = xsimd::max(mx, B::load_unaligned(xr + j));
      alignas(64) float lanes[W];
      mx.store_aligned(lanes);
      float m = *std::max_element(lanes, lanes + W);
      for (index_t t = j; t < cols; ++t) m = std::max(m, xr[t]);
      if (m == neg_inf) {
        std::fill(yr, yr + cols, 0.0f);
        continue;
      }
      const B mb(m);
      B acc(0.0f);
      for (j = 0; j + W <= cols; j += W) {
        const B e = xsimd::exp(B::load_unaligned(xr + j) - mb);
        e.store_unaligned(yr + j);
        acc += e;
      }
      float sum = xsimd::hadd(acc);
      if (j < cols) {
        alignas(64) float buf[W];
        std::fill(buf, buf + W, neg_inf);
        std::copy(xr + j, xr + cols, buf);
        xsimd::exp(B::load_aligned(buf) - mb).store_aligned(buf);
        for (index_t t = j; t < cols; ++t) sum += buf[t - j];
        std::copy(buf, buf + (cols - j), yr + j);
      }
      const B inv(1.0f / sum);
      for (j = 0; j + W <= cols; j += W) (B::load_unaligned(yr + j) * inv).store_unaligned(yr + j);
      for (; j < cols; ++j) yr[j] *= 1.0f / sum;
    }
  }
};

struct GegluKernel {
  template <class Arch>
  void operator()(Arch, const float* x, float* y, index_t rows, index_t half) const {
    using B = xsimd::batch<float, Arch>;
    constexpr index_t W = static_cast<index_t>(B::size);
    const activation::GeluErf gelu{};
    LATENTKIT_OMP(parallel for schedule(static))
    for (index_t r = 0; r < rows; ++r) {
      const float* value = x + r * 2 * half;
      const float* gate = value + half;
      float* yr = y + r * half;
      index_t j = 0;
      for (; j + W <= half; j += W)
        (B::load_unaligned(value + j) * gelu(B::load_unaligned(gate + j))).store_unaligned(yr + j);
      if (j < half) {
        alignas(64) float a[W] = {}, g[W] = {};
        std::copy(value + j, value + half, a);
        std::copy(gate + j, gate + half, g);
        (B::load_aligned(a) * gelu(B::load_aligned(g))).store_aligned(a);
        std::copy(a, a + (half - j), yr + j);
      }
    }
  }
};

}  // namespace ops_detail

/// y = x * sigmoid(x).
inline void silu(TensorView<const float> x, TensorView<float> y) { ops_detail::apply_unary<activation::Silu>("silu", x, y); }
/// y = GELU(x), exact erf form.
inline void gelu(TensorView<const float> x, TensorView<float> y) { ops_detail::apply_unary<activation::GeluErf>("gelu", x, y); }
/// y = GELU(x), tanh approximation.
inline void gelu_tanh(TensorView<const float> x, TensorView<float> y) {
  ops_detail::apply_unary<activation::GeluTanh>("gelu_tanh", x, y);
}
/// y = x * sigmoid(1.702 x).
inline void quick_gelu(TensorView<const float> x, TensorView<float> y) {
  ops_detail::apply_unary<activation::QuickGelu>("quick_gelu", x, y);
}

/// Softmax over the last axis (numerically stable; a row that is all -inf gives zeros).
inline void softmax(TensorView<const float> x, TensorView<float> y) {
  if (x.rank() < 1 || !(x.shape() == y.shape()))
    throw ShapeError("softmax: input " + x.shape().str() + " and output " + y.shape().str() + " must match, rank >= 1");
  const index_t cols = x.size(-1);
  const index_t rows = cols == 0 ? 0 : x.numel() / cols;
  ops_detail::with_dense(x, y, [&](const float* in, float* out) {
    if (const kernel_library::Table* library = simd::library_kernels()) return library->softmax(in, out, rows, cols);
    simd::dispatch(ops_detail::SoftmaxKernel{})(in, out, rows, cols);
  });
}

/// GEGLU (ldm / diffusers order): x [..., 2F] splits into value = x[..., :F] and gate = x[..., F:];
/// y [..., F] = value * GELU_erf(gate).
inline void geglu(TensorView<const float> x, TensorView<float> y) {
  if (x.rank() < 1 || x.size(-1) % 2 != 0)
    throw ShapeError("geglu: input " + x.shape().str() + " needs an even last axis (value and gate halves)");
  Dims expected = x.shape();
  expected[expected.rank() - 1] /= 2;
  if (!(y.shape() == expected))
    throw ShapeError("geglu: output " + y.shape().str() + " should be " + expected.str() + " for input " + x.shape().str());
  const index_t half = expected[expected.rank() - 1];
  const index_t rows = half == 0 ? 0 : y.numel() / half;
  const auto run = [&](const float* in, float* out) {
    if (const kernel_library::Table* library = simd::library_kernels()) return library->geglu(in, out, rows, half);
    simd::dispatch(ops_detail::GegluKernel{})(in, out, rows, half);
  };
  if (x.is_contiguous() && y.is_contiguous() && x.data() != y.data()) return run(x.data(), y.data());
  Tensor<float> xin = contiguous(x);
  Tensor<float> yout(y.shape());
  run(xin.data(), yout.data());
  copy(yout.view(), y);
}

/// Allocating forms.
/// y = max(x, 0).
inline void relu(TensorView<const float> x, TensorView<float> y) { ops_detail::apply_unary<activation::Relu>("relu", x, y); }
/// y = 3 tanh(x / 3): a smooth clamp to (-3, 3).
inline void soft_clamp3(TensorView<const float> x, TensorView<float> y) {
  ops_detail::apply_unary<activation::SoftClamp3>("soft_clamp3", x, y);
}

inline Tensor<float> silu(TensorView<const float> x) { Tensor<float> y(x.shape()); silu(x, y.view()); return y; }
inline Tensor<float> gelu(TensorView<const float> x) { Tensor<float> y(x.shape()); gelu(x, y.view()); return y; }
inline Tensor<float> gelu_tanh(TensorView<const float> x) { Tensor<float> y(x.shape()); gelu_tanh(x, y.view()); return y; }
inline Tensor<float> quick_gelu(TensorView<const float> x) { Tensor<float> y(x.shape()); quick_gelu(x, y.view()); return y; }
inline Tensor<float> softmax(TensorView<const float> x) { Tensor<float> y(x.shape()); softmax(x, y.view()); return y; }
inline Tensor<float> geglu(TensorView<const float> x) {
  if (x.rank() < 1) throw ShapeError("geglu: input must have rank >= 1");
  Dims shape = x.shape();
  shape[shape.rank() - 1] /= 2;
  Tensor<float> y(shape);
  geglu(x, y.view());
  return y;
}

LATENTKIT_NAMESPACE_END
