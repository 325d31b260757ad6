// LayerNorm over the last axis with affine weight/bias (torch nn.LayerNorm names).
#pragma once
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/norm.hpp"

LATENTKIT_NAMESPACE_BEGIN

class LayerNorm {
 public:
  LayerNorm() = default;
  explicit LayerNorm(index_t features, float eps = 1e-5f)
      : weight(Tensor<float>::full({features}, 1.0f)), bias(Tensor<float>::zeros({features})), eps(eps) {}

  Tensor<float> weight;  ///< [features], gamma
  Tensor<float> bias;    ///< [features], beta
  float eps = 1e-5f;

  index_t features() const { return weight.size(0); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    visit(prefix + "weight", weight.view());
    visit(prefix + "bias", bias.view());
  }

  /// y = LayerNorm(x) over the last axis; y may be x.
  void forward(TensorView<const float> x, TensorView<float> y) const { layer_norm(x, y, eps, weight.view(), bias.view()); }
  Tensor<float> forward(TensorView<const float> x) const { return layer_norm(x, eps, weight.view(), bias.view()); }
};

LATENTKIT_NAMESPACE_END
