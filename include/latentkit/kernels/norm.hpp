// Normalisation kernels: GroupNorm over NCHW (optionally fused with SiLU, as in every SD ResBlock) and LayerNorm
// over the last axis.
//
// Statistics are two-pass (mean, then the mean of squared deviations), which avoids the cancellation of
// E[x^2] - E[x]^2 when |mean| >> std. Each pass sums float lanes over fixed blocks of 64 vectors and adds the block
// totals in double: the float part sees at most 64 terms per lane (relative error ~64 u), the rest is double, and the
// order is fixed, so results are deterministic and independent of the thread count (threads split over independent
// groups / rows only). Variance is the biased one (divide by n), as torch does.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/kernel_library/table.hpp"
#include "latentkit/backend/simd/fma.hpp"
#include "latentkit/kernels/activation.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace ops_detail {

/// Sums of x and of (x - shift)^2 over n contiguous floats, float lanes within blocks, double across blocks.
template <class Arch>
struct BlockSums {
  using B = xsimd::batch<float, Arch>;
  static constexpr index_t W = static_cast<index_t>(B::size);
  static constexpr index_t block = 64 * W;

  static double sum(const float* x, index_t n) noexcept {
    double total = 0.0;
    index_t i = 0;
    while (i + W <= n) {
      B acc(0.0f);
      const index_t end = std::min(n - (n - i) % W, i + block);
      for (; i < end; i += W) acc += B::load_unaligned(x + i);
      total += static_cast<double>(xsimd::hadd(acc));
    }
    for (; i < n; ++i) total += static_cast<double>(x[i]);
    return total;
  }
  static double sum_sq_dev(const float* x, index_t n, float shift) noexcept {
    double total = 0.0;
    const B s(shift);
    index_t i = 0;
    while (i + W <= n) {
      B acc(0.0f);
      const index_t end = std::min(n - (n - i) % W, i + block);
      for (; i < end; i += W) {
        const B d = B::load_unaligned(x + i) - s;
        acc = simd::fma(d, d, acc);
      }
      total += static_cast<double>(xsimd::hadd(acc));
    }
    for (; i < n; ++i) {
      const double d = static_cast<double>(x[i]) - static_cast<double>(shift);
      total += d * d;
    }
    return total;
  }
};

/// y = post((x - mean) * a + b) over n contiguous floats; the tail goes through a padded batch.
template <class Arch, bool Silu>
inline void normalize_run(const float* x, float* y, index_t n, float mean, float a, float b) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(B::size);
  const B mb(mean), ab(a), bb(b);
  const auto f = [&](B v) {
    const B out = simd::fma(v - mb, ab, bb);
    if constexpr (Silu) return activation::Silu{}(out);
    else return out;
  };
  index_t i = 0;
  for (; i + W <= n; i += W) f(B::load_unaligned(x + i)).store_unaligned(y + i);
  if (i < n) {
    alignas(64) float buf[W] = {};
    std::copy(x + i, x + n, buf);
    f(B::load_aligned(buf)).store_aligned(buf);
    std::copy(buf, buf + (n - i), y + i);
  }
}

template <bool Silu>
struct GroupNormKernel {
  template <class Arch>
  void operator()(Arch, const float* x, float* y, index_t batch, index_t channels, index_t spatial, index_t groups,
                  float eps, const float* gamma, const float* beta) const {
    const index_t per_group = channels / groups;
    const index_t tasks = batch * groups;
    LATENTKIT_OMP(parallel for schedule(static))
    for (index_t t = 0; t < tasks; ++t) {
      const index_t n = t / groups, g = t % groups;
      const index_t first = (n * channels + g * per_group) * spatial, count = per_group * spatial;
      const double mean = BlockSums<Arch>::sum(x + first, count) / static_cast<double>(count);
      const float mean_f = static_cast<float>(mean);
      // Deviations from the float mean the normalisation subtracts; its rounding is negligible next to std.
      const double var = BlockSums<Arch>::sum_sq_dev(x + first, count, mean_f) / static_cast<double>(count);
      const double rstd = 1.0 / std::sqrt(var + static_cast<double>(eps));
      for (index_t c = 0; c < per_group; ++c) {
        const index_t ch = g * per_group + c;
        const float a = static_cast<float>(rstd * (gamma ? gamma[ch] : 1.0f));
        const float b = beta ? beta[ch] : 0.0f;
        const index_t off = first + c * spatial;
        normalize_run<Arch, Silu>(x + off, y + off, spatial, mean_f, a, b);
      }
    }
  }
};

struct LayerNormKernel {
  template <class Arch>
  void operator()(Arch, const float* x, float* y, index_t rows, index_t cols, float eps, const float* gamma,
                  const float* beta) const {
    using B = xsimd::batch<float, Arch>;
    constexpr index_t W = static_cast<index_t>(B::size);
    LATENTKIT_OMP(parallel for schedule(static))
    for (index_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      const float mean = static_cast<float>(BlockSums<Arch>::sum(xr, cols) / static_cast<double>(cols));
      const double var = BlockSums<Arch>::sum_sq_dev(xr, cols, mean) / static_cast<double>(cols);
      const float rstd = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
      const B mb(mean), sb(rstd);
      // gamma/beta vary along the row, so they are loaded as vectors; the tail uses padded buffers.
      index_t j = 0;
      for (; j + W <= cols; j += W) {
        B v = (B::load_unaligned(xr + j) - mb) * sb;
        if (gamma) v = v * B::load_unaligned(gamma + j);
        if (beta) v = v + B::load_unaligned(beta + j);
        v.store_unaligned(yr + j);
      }
      if (j < cols) {
        alignas(64) float xv[W] = {}, gv[W], bv[W] = {};
        std::fill(gv, gv + W, 1.0f);
        std::copy(xr + j, xr + cols, xv);
        if (gamma) std::copy(gamma + j, gamma + cols, gv);
        if (beta) std::copy(beta + j, beta + cols, bv);
        B v = (B::load_aligned(xv) - mb) * sb;
        if (gamma) v = v * B::load_aligned(gv);
        if (beta) v = v + B::load_aligned(bv);
        v.store_aligned(xv);
        std::copy(xv, xv + (cols - j), yr + j);
      }
    }
  }
};

/// A dense copy of an optional 1-D affine parameter of length n (empty view = absent).
inline Tensor<float> affine_param(const char* op, const char* name, TensorView<const float> p, index_t n) {
  if (p.data() == nullptr) return Tensor<float>();
  if (p.rank() != 1 || p.size(0) != n)
    throw ShapeError(std::string(op) + ": " + name + " has shape " + p.shape().str() + ", expected [" + std::to_string(n) + "]");
  return contiguous(p);
}

template <bool Silu>
void group_norm_impl(const char* op, TensorView<const float> x, TensorView<float> y, index_t groups, float eps,
                     TensorView<const float> gamma, TensorView<const float> beta) {
  if (x.rank() < 2 || !(x.shape() == y.shape()))
    throw ShapeError(std::string(op) + ": input " + x.shape().str() + " and output " + y.shape().str() +
                     " must match, layout [N, C, spatial...]");
  const index_t channels = x.size(1);
  if (groups <= 0 || channels % groups != 0)
    throw ShapeError(std::string(op) + ": " + std::to_string(channels) + " channels do not split into " +
                     std::to_string(groups) + " groups");
  if (!(eps >= 0.0f)) throw ShapeError(std::string(op) + ": eps must be >= 0, got " + std::to_string(eps));
  const Tensor<float> g = affine_param(op, "gamma", gamma, channels), b = affine_param(op, "beta", beta, channels);
  const index_t batch = x.size(0);
  const index_t spatial = channels == 0 || batch == 0 ? 0 : x.numel() / (batch * channels);
  with_dense(x, y, [&](const float* in, float* out) {
    if (const kernel_library::Table* library = simd::library_kernels())
      return library->group_norm(Silu, in, out, batch, channels, spatial, groups, eps, g.data(), b.data());
    simd::dispatch(GroupNormKernel<Silu>{})(in, out, batch, channels, spatial, groups, eps, g.data(), b.data());
  });
}

}  // namespace ops_detail

/// GroupNorm: x [N, C, spatial...] (NCHW), `groups` dividing C, per-channel affine gamma/beta [C] (empty views:
/// none). SD: 32 groups, eps 1e-5 (UNet) or 1e-6 (VAE). y may be x (in place).
inline void group_norm(TensorView<const float> x, TensorView<float> y, index_t groups, float eps,
                       TensorView<const float> gamma = {}, TensorView<const float> beta = {}) {
  ops_detail::group_norm_impl<false>("group_norm", x, y, groups, eps, gamma, beta);
}
/// SiLU(GroupNorm(x)) in one pass over the output (the ResBlock's norm + nonlinearity).
inline void group_norm_silu(TensorView<const float> x, TensorView<float> y, index_t groups, float eps,
                            TensorView<const float> gamma = {}, TensorView<const float> beta = {}) {
  ops_detail::group_norm_impl<true>("group_norm_silu", x, y, groups, eps, gamma, beta);
}

/// LayerNorm over the last axis (size D), affine gamma/beta [D] (empty views: none). y may be x.
inline void layer_norm(TensorView<const float> x, TensorView<float> y, float eps, TensorView<const float> gamma = {},
                       TensorView<const float> beta = {}) {
  if (x.rank() < 1 || !(x.shape() == y.shape()))
    throw ShapeError("layer_norm: input " + x.shape().str() + " and output " + y.shape().str() + " must match");
  if (!(eps >= 0.0f)) throw ShapeError("layer_norm: eps must be >= 0, got " + std::to_string(eps));
  const index_t cols = x.size(-1);
  const Tensor<float> g = ops_detail::affine_param("layer_norm", "gamma", gamma, cols);
  const Tensor<float> b = ops_detail::affine_param("layer_norm", "beta", beta, cols);
  const index_t rows = cols == 0 ? 0 : x.numel() / cols;
  ops_detail::with_dense(x, y, [&](const float* in, float* out) {
    if (const kernel_library::Table* library = simd::library_kernels())
      return library->layer_norm(in, out, rows, cols, eps, g.data(), b.data());
    simd::dispatch(ops_detail::LayerNormKernel{})(in, out, rows, cols, eps, g.data(), b.data());
  });
}

/// Allocating forms.
inline Tensor<float> group_norm(TensorView<const float> x, index_t groups, float eps, TensorView<const float> gamma = {},
                                TensorView<const float> beta = {}) {
  Tensor<float> y(x.shape());
  group_norm(x, y.view(), groups, eps, gamma, beta);
  return y;
}
inline Tensor<float> group_norm_silu(TensorView<const float> x, index_t groups, float eps,
                                     TensorView<const float> gamma = {}, TensorView<const float> beta = {}) {
  Tensor<float> y(x.shape());
  group_norm_silu(x, y.view(), groups, eps, gamma, beta);
  return y;
}
inline Tensor<float> layer_norm(TensorView<const float> x, float eps, TensorView<const float> gamma = {},
                                TensorView<const float> beta = {}) {
  Tensor<float> y(x.shape());
  layer_norm(x, y.view(), eps, gamma, beta);
  return y;
}

LATENTKIT_NAMESPACE_END
