// Conv2d layer (torch nn.Conv2d names: weight [O, C, kh, kw], optional bias [O]) over NCHW float32 activations.
// prepare() packs the weights once as the implicit GEMM's A operand (kernels/conv2d.hpp).
#pragma once
#include <string>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/core/convert.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/conv2d.hpp"
#include "latentkit/nn/profile.hpp"
#include "latentkit/nn/weights.hpp"

LATENTKIT_NAMESPACE_BEGIN

class Conv2d {
 public:
  Conv2d() = default;
  /// A kernel x kernel convolution; `geometry` holds stride and padding (3x3 "same": Conv2dGeometry::padded(1)).
  /// Taken by reference: GCC 12.2 at -O3 -march=x86-64-v4 built a by-value geometry argument wrongly (padding 1 for
  /// padded(0)) in the VAE's 1x1 quant_conv; the VAE tests catch it.
  Conv2d(index_t in_channels, index_t out_channels, index_t kernel, const Conv2dGeometry& geometry, bool has_bias = true)
      : weight(Dims{out_channels, in_channels, kernel, kernel}), bias(Dims{has_bias ? out_channels : 0}),
        geometry(geometry), has_bias_(has_bias) {}

  Tensor<float> weight;  ///< [O, C, kh, kw]
  Tensor<float> bias;    ///< [O], or [0] without bias
  Conv2dGeometry geometry;

  index_t in_channels() const { return weight.size(1); }
  index_t out_channels() const { return weight.size(0); }
  index_t kernel_h() const { return weight.size(2); }
  index_t kernel_w() const { return weight.size(3); }
  bool has_bias() const noexcept { return has_bias_; }
  bool prepared() const noexcept { return !packed_.matrix.empty(); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    visit(prefix + "weight", weight.view());
    if (has_bias_) visit(prefix + "bias", bias.view());
  }

  void prepare() { prepare(WeightOptions{}); }
  void prepare(const WeightOptions& options) {
    if (options.type == WeightType::bf16) {
      const Tensor<bf16> rounded = round_to_bf16(weight);
      packed_ = pack_conv2d_weights(std::as_const(rounded).view());
    } else {
      packed_ = pack_conv2d_weights(std::as_const(weight).view());
    }
    if (options.release_unpacked) weight = Tensor<float>(weight.shape());
  }

  /// [B, O, Ho, Wo] for an input [B, C, H, W].
  Dims output_shape(const Dims& input) const {
    if (input.rank() != 4 || input[1] != in_channels())
      throw ShapeError("Conv2d [" + std::to_string(out_channels()) + ", " + std::to_string(in_channels()) + ", " +
                       std::to_string(kernel_h()) + ", " + std::to_string(kernel_w()) + "]: input " + input.str() +
                       " is not [batch, " + std::to_string(in_channels()) + ", height, width]");
    return {input[0], out_channels(), geometry.output_extent(input[2], kernel_h(), true),
            geometry.output_extent(input[3], kernel_w(), false)};
  }
  double flops(const Dims& input) const {
    const Dims out = output_shape(input);
    return 2.0 * static_cast<double>(out.numel()) * static_cast<double>(in_channels() * kernel_h() * kernel_w());
  }

  /// y = conv(x) + bias. `bias_override` [O] (when given) replaces the layer's bias: the ResBlock folds its
  /// per-item time embedding into it. Unprepared layers pack on every call.
  void forward(TensorView<const float> x, TensorView<float> y, Profile* profile = nullptr,
               TensorView<const float> bias_override = {}) const {
    const ProfileScope scope(profile, LayerKind::conv, flops(x.shape()));
    const TensorView<const float> b = bias_override.data() ? bias_override : bias.view();
    if (prepared()) return conv2d(x, packed_, b, geometry, y);
    conv2d(x, pack_conv2d_weights(std::as_const(weight).view()), b, geometry, y);
  }
  Tensor<float> forward(TensorView<const float> x, Profile* profile = nullptr) const {
    Tensor<float> y(output_shape(x.shape()));
    forward(x, y.view(), profile);
    return y;
  }

 private:
  bool has_bias_ = true;
  PackedConv2dWeights packed_;
};

LATENTKIT_NAMESPACE_END
