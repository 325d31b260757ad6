// Linear layer y = x W^T + b in the torch convention (weight [out, in], optional bias [out]). prepare() packs W
// once into the GEMM micro-kernel's panels so that every later call skips the packing of the weights; with
// WeightType::bf16 it packs bf16 pair panels for the vdpbf16ps GEMM instead (nn/weights.hpp).
#pragma once
#include <algorithm>
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/core/convert.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/kernels/gemm/bf16_dot.hpp"
#include "latentkit/nn/profile.hpp"
#include "latentkit/nn/weights.hpp"

LATENTKIT_NAMESPACE_BEGIN

class Linear {
 public:
  Linear() = default;
  Linear(index_t in_features, index_t out_features, bool has_bias = true)
      : weight(Tensor<float>::zeros({out_features, in_features})),
        bias(Tensor<float>::zeros({has_bias ? out_features : 0})),
        has_bias_(has_bias) {}

  Tensor<float> weight;  ///< [out, in]
  Tensor<float> bias;    ///< [out], or [0] without bias

  index_t in_features() const { return weight.size(1); }
  index_t out_features() const { return weight.size(0); }
  bool has_bias() const noexcept { return has_bias_; }
  bool prepared() const noexcept { return !packed_.empty() || bf16_dot_; }
  /// Whether prepare() chose the vdpbf16ps GEMM (WeightType::bf16 on a CPU that has it).
  bool runs_bf16_dot() const noexcept { return bf16_dot_; }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    visit(prefix + "weight", weight.view());
    if (has_bias_) visit(prefix + "bias", bias.view());
  }

  /// Packs the weights for the GEMM (after loading; call again if `weight` changes). Unprepared layers still
  /// work, packing W on every call.
  void prepare() { prepare(WeightOptions{}); }
  void prepare(const WeightOptions& options) {
    const index_t in = in_features(), out = out_features();
    packed_ = PackedMatrix();
    packed_bf16_ = PackedBf16Weights();
    bf16_dot_ = false;
    if (options.type == WeightType::bf16) {
      const Tensor<bf16> rounded = round_to_bf16(weight);
      if (bf16_dot_available()) {
        packed_bf16_ = pack_weights_b_bf16_dot(Transpose::yes, in, out, rounded.data(), in);
        bf16_dot_ = true;
      } else {
        packed_ = pack_weights_b(Transpose::yes, in, out, rounded.data(), in);  // the bf16 values, widened
      }
    } else {
      packed_ = pack_weights_b(Transpose::yes, in, out, weight.data(), in);
    }
    if (options.release_unpacked) weight = Tensor<float>(weight.shape());  // address space only, no pages
  }

  /// 2 * rows * in * out: the multiply-adds of one forward over `rows` rows.
  double flops(index_t rows) const noexcept {
    return 2.0 * static_cast<double>(rows) * static_cast<double>(in_features()) * static_cast<double>(out_features());
  }

  /// y [rows, out] = x [rows, in] W^T + b. Rows of x and y may be strided; elements within a row must be
  /// contiguous (a strided x goes through a dense copy).
  void forward(TensorView<const float> x, TensorView<float> y, Profile* profile = nullptr) const {
    const index_t in = in_features(), out = out_features();
    if (x.rank() != 2 || x.size(1) != in || y.rank() != 2 || y.size(0) != x.size(0) || y.size(1) != out)
      throw ShapeError("Linear [" + std::to_string(out) + " x " + std::to_string(in) + "]: input " + x.shape().str() +
                       ", output " + y.shape().str() + "; expected [rows, " + std::to_string(in) + "] -> [rows, " +
                       std::to_string(out) + "]");
    if (y.stride(1) != 1 && out > 1) throw ShapeError("Linear: output rows must be contiguous, got strides " + y.strides().str());
    Tensor<float> dense;
    if (x.stride(1) != 1 && in > 1) {
      dense = contiguous(x);
      x = dense.view();
    }
    const index_t rows = x.size(0);
    apply(Transpose::no, rows, x.data(), rows > 1 ? x.stride(0) : in, y.data(), rows > 1 ? y.stride(0) : out, false,
          profile);
  }

  /// y (+)= op(a) W^T + b over `rows` rows, the GEMM form every forward uses. op(a) is [rows, in]: a itself
  /// (leading dimension lda), or with trans_a the transpose of an [in, rows] matrix, i.e. the columns of an NCHW
  /// item as tokens (a 1x1 convolution that outputs tokens). `accumulate` adds onto y (a fused residual).
  void apply(Transpose trans_a, index_t rows, const float* a, index_t lda, float* y, index_t ldc, bool accumulate,
             Profile* profile = nullptr) const {
    const ProfileScope scope(profile, LayerKind::linear, flops(rows));
    const index_t in = in_features(), out = out_features();
    if (rows == 0 || out == 0) return;
    // Start from the bias (or add it to y) and accumulate (beta = 1): no separate pass over y. The pass is
    // memory-bound, so it runs on every thread for large outputs (each row is written by one thread).
    const float* b = bias.data();
    const bool parallel = rows * out >= (index_t{1} << 16);
    (void)parallel;  // unused without OpenMP
    LATENTKIT_OMP(parallel for schedule(static) if(parallel))
    for (index_t r = 0; r < rows; ++r) {
      float* yr = y + r * ldc;
      if (!accumulate && has_bias_) std::copy(b, b + out, yr);
      else if (!accumulate) std::fill(yr, yr + out, 0.0f);
      else if (has_bias_)
        for (index_t c = 0; c < out; ++c) yr[c] += b[c];
    }
    if (rows == 1) ldc = out;
    if (bf16_dot_)
      gemm_bf16_dot(trans_a, rows, 1.0f, a, lda, packed_bf16_, 1.0f, y, ldc);
    else if (!packed_.empty())
      gemm(trans_a, rows, 1.0f, a, lda, packed_, 1.0f, y, ldc);
    else
      gemm(trans_a, Transpose::yes, rows, out, in, 1.0f, a, lda, weight.data(), in, 1.0f, y, ldc);
  }

  /// Allocating form for x [..., in] (contiguous): returns [..., out].
  Tensor<float> forward(TensorView<const float> x) const {
    if (x.rank() < 1 || x.size(x.rank() - 1) != in_features())
      throw ShapeError("Linear: input " + x.shape().str() + " does not end in " + std::to_string(in_features()));
    Dims out_shape = x.shape();
    out_shape[out_shape.rank() - 1] = out_features();
    Tensor<float> y(out_shape);
    const index_t rows = x.numel() / std::max<index_t>(in_features(), 1);
    const Tensor<float> dense = x.is_contiguous() ? Tensor<float>() : contiguous(x);
    const float* xd = x.is_contiguous() ? x.data() : dense.data();
    forward(TensorView<const float>(xd, Dims{rows, in_features()}), y.view().reshape({rows, out_features()}));
    return y;
  }

 private:
  bool has_bias_ = true;
  bool bf16_dot_ = false;
  PackedMatrix packed_;
  PackedBf16Weights packed_bf16_;
};

LATENTKIT_NAMESPACE_END
