// Linear layer y = x W^T + b in the torch convention (weight [out, in], optional bias [out]). prepare() packs W
// once into the GEMM micro-kernel's panels so that every later call skips the packing of the weights.
#pragma once
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/gemm.hpp"

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
  bool prepared() const noexcept { return !packed_.empty(); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    visit(prefix + "weight", weight.view());
    if (has_bias_) visit(prefix + "bias", bias.view());
  }

  /// Packs the weights for the GEMM (after loading; call again if `weight` changes). Unprepared layers still
  /// work, packing W on every call.
  void prepare() { packed_ = pack_weights_b(Transpose::yes, in_features(), out_features(), weight.data(), in_features()); }

  /// y [rows, out] = x [rows, in] W^T + b. Rows of x and y may be strided; elements within a row must be
  /// contiguous (a strided x goes through a dense copy).
  void forward(TensorView<const float> x, TensorView<float> y) const {
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
    if (rows == 0 || out == 0) return;
    // Start from the bias and accumulate (beta = 1): no separate pass over y.
    for (index_t r = 0; r < rows; ++r) {
      float* yr = y.data() + r * y.stride(0);
      for (index_t c = 0; c < out; ++c) yr[c] = has_bias_ ? bias.data()[c] : 0.0f;
    }
    const index_t lda = rows > 1 ? x.stride(0) : in, ldc = rows > 1 ? y.stride(0) : out;
    if (prepared())
      gemm(Transpose::no, rows, 1.0f, x.data(), lda, packed_, 1.0f, y.data(), ldc);
    else
      gemm(Transpose::no, Transpose::yes, rows, out, in, 1.0f, x.data(), lda, weight.data(), in, 1.0f, y.data(), ldc);
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
  PackedMatrix packed_;
};

LATENTKIT_NAMESPACE_END
