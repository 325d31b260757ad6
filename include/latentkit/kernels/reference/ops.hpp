// Scalar float64 references for the attention, norm, activation and resampling kernels. They follow the textbook
// formulas (attention materialises the full score row in double), are slow, and exist to test the fast kernels.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/attention.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace reference {

/// softmax(scale q k^T + mask) v in double, q [B,H,Lq,d], k [B,H,Lk,d], v [B,H,Lk,dv]; masked-out rows give 0.
inline Tensor<double> attention(TensorView<const float> q, TensorView<const float> k, TensorView<const float> v,
                                const AttentionOptions& options = {}) {
  const index_t nb = q.size(0), nh = q.size(1), lq = q.size(2), d = q.size(3), lk = k.size(2), dv = v.size(3);
  const double scale = options.scale ? static_cast<double>(*options.scale) : 1.0 / std::sqrt(static_cast<double>(d));
  TensorView<const float> mask;
  if (options.mask.data()) mask = options.mask.broadcast_to(Dims{nb, nh, lq, lk});
  Tensor<double> out(Dims{nb, nh, lq, dv});
  std::vector<double> s(static_cast<std::size_t>(lk));
  for (index_t b = 0; b < nb; ++b)
    for (index_t h = 0; h < nh; ++h)
      for (index_t i = 0; i < lq; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        for (index_t j = 0; j < lk; ++j) {
          double dot = 0.0;
          for (index_t c = 0; c < d; ++c) dot += static_cast<double>(q(b, h, i, c)) * static_cast<double>(k(b, h, j, c));
          double x = dot * scale;
          if (mask.data()) x += static_cast<double>(mask(b, h, i, j));
          if (options.causal && j > i) x = -std::numeric_limits<double>::infinity();
          s[static_cast<std::size_t>(j)] = x;
          mx = std::max(mx, x);
        }
        double sum = 0.0;
        for (index_t j = 0; j < lk; ++j) {
          double& e = s[static_cast<std::size_t>(j)];
          e = std::isinf(mx) ? 0.0 : std::exp(e - mx);
          sum += e;
        }
        for (index_t c = 0; c < dv; ++c) {
          double acc = 0.0;
          for (index_t j = 0; j < lk; ++j) acc += s[static_cast<std::size_t>(j)] * static_cast<double>(v(b, h, j, c));
          out(b, h, i, c) = sum > 0.0 ? acc / sum : 0.0;
        }
      }
  return out;
}

/// GroupNorm over [N, C, spatial...] in double, two-pass statistics, biased variance.
inline Tensor<double> group_norm(TensorView<const float> x, index_t groups, double eps, TensorView<const float> gamma = {},
                                 TensorView<const float> beta = {}, bool silu = false) {
  const Tensor<float> xd = contiguous(x);
  const index_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c), cpg = c / groups;
  Tensor<double> y(x.shape());
  for (index_t b = 0; b < n; ++b)
    for (index_t g = 0; g < groups; ++g) {
      const float* base = xd.data() + (b * c + g * cpg) * s;
      double* out = y.data() + (b * c + g * cpg) * s;
      const index_t count = cpg * s;
      double mean = 0.0, var = 0.0;
      for (index_t i = 0; i < count; ++i) mean += base[i];
      mean /= static_cast<double>(count);
      for (index_t i = 0; i < count; ++i) var += (base[i] - mean) * (base[i] - mean);
      var /= static_cast<double>(count);
      const double rstd = 1.0 / std::sqrt(var + eps);
      for (index_t ch = 0; ch < cpg; ++ch) {
        const index_t cc = g * cpg + ch;
        const double ga = gamma.data() ? gamma(cc) : 1.0, be = beta.data() ? beta(cc) : 0.0;
        for (index_t i = 0; i < s; ++i) {
          double val = (base[ch * s + i] - mean) * rstd * ga + be;
          if (silu) val = val / (1.0 + std::exp(-val));
          out[ch * s + i] = val;
        }
      }
    }
  return y;
}

/// LayerNorm over the last axis in double.
inline Tensor<double> layer_norm(TensorView<const float> x, double eps, TensorView<const float> gamma = {},
                                 TensorView<const float> beta = {}) {
  const Tensor<float> xd = contiguous(x);
  const index_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor<double> y(x.shape());
  for (index_t r = 0; r < rows; ++r) {
    const float* xr = xd.data() + r * cols;
    double mean = 0.0, var = 0.0;
    for (index_t j = 0; j < cols; ++j) mean += xr[j];
    mean /= static_cast<double>(cols);
    for (index_t j = 0; j < cols; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= static_cast<double>(cols);
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (index_t j = 0; j < cols; ++j)
      y.data()[r * cols + j] = (xr[j] - mean) * rstd * (gamma.data() ? gamma(j) : 1.0) + (beta.data() ? beta(j) : 0.0);
  }
  return y;
}

inline double silu(double x) { return x / (1.0 + std::exp(-x)); }
inline double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
inline double gelu_tanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}
inline double quick_gelu(double x) { return x / (1.0 + std::exp(-1.702 * x)); }

/// f applied to every element, in double.
template <class F>
Tensor<double> map(TensorView<const float> x, F f) {
  const Tensor<float> xd = contiguous(x);
  Tensor<double> y(x.shape());
  for (index_t i = 0; i < x.numel(); ++i) y.data()[i] = f(static_cast<double>(xd.data()[i]));
  return y;
}

/// Softmax over the last axis in double.
inline Tensor<double> softmax(TensorView<const float> x) {
  const Tensor<float> xd = contiguous(x);
  const index_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor<double> y(x.shape());
  for (index_t r = 0; r < rows; ++r) {
    const float* xr = xd.data() + r * cols;
    double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (index_t j = 0; j < cols; ++j) mx = std::max(mx, static_cast<double>(xr[j]));
    for (index_t j = 0; j < cols; ++j) sum += std::isinf(mx) ? 0.0 : std::exp(xr[j] - mx);
    for (index_t j = 0; j < cols; ++j) y.data()[r * cols + j] = sum > 0.0 ? std::exp(xr[j] - mx) / sum : 0.0;
  }
  return y;
}

/// GEGLU: value = x[..., :F], gate = x[..., F:], y = value * gelu(gate), in double.
inline Tensor<double> geglu(TensorView<const float> x) {
  const Tensor<float> xd = contiguous(x);
  const index_t cols = x.size(-1), half = cols / 2, rows = x.numel() / cols;
  Dims shape = x.shape();
  shape[shape.rank() - 1] = half;
  Tensor<double> y(shape);
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < half; ++j)
      y.data()[r * half + j] = xd.data()[r * cols + j] * gelu(xd.data()[r * cols + half + j]);
  return y;
}

/// Nearest 2x upsampling of [N, C, H, W] in double.
inline Tensor<double> upsample_nearest2x(TensorView<const float> x) {
  Tensor<double> y(Dims{x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)});
  for (index_t n = 0; n < x.size(0); ++n)
    for (index_t c = 0; c < x.size(1); ++c)
      for (index_t h = 0; h < 2 * x.size(2); ++h)
        for (index_t w = 0; w < 2 * x.size(3); ++w) y(n, c, h, w) = x(n, c, h / 2, w / 2);
  return y;
}

}  // namespace reference
LATENTKIT_NAMESPACE_END
