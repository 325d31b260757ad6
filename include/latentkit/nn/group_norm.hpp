// GroupNorm layer (torch nn.GroupNorm names: weight/bias [C]), optionally fused with the SiLU that follows it in
// every SD ResBlock. SD uses 32 groups; eps 1e-5 in the UNet's ResBlocks, 1e-6 in the VAE and the spatial
// transformers' input norm.
#pragma once
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/norm.hpp"
#include "latentkit/nn/profile.hpp"

LATENTKIT_NAMESPACE_BEGIN

class GroupNorm {
 public:
  GroupNorm() = default;
  GroupNorm(index_t channels, index_t groups, float eps)
      : weight(Tensor<float>::full({channels}, 1.0f)), bias(Tensor<float>::zeros({channels})), groups(groups), eps(eps) {}

  Tensor<float> weight;  ///< [C], gamma
  Tensor<float> bias;    ///< [C], beta
  index_t groups = 32;
  float eps = 1e-5f;

  index_t channels() const { return weight.size(0); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    visit(prefix + "weight", weight.view());
    visit(prefix + "bias", bias.view());
  }

  /// y = GroupNorm(x), or SiLU(GroupNorm(x)) with `silu`; x [N, C, ...]; y may be x.
  void forward(TensorView<const float> x, TensorView<float> y, bool silu, Profile* profile = nullptr) const {
    const ProfileScope scope(profile, LayerKind::norm);
    if (silu) group_norm_silu(x, y, groups, eps, weight.view(), bias.view());
    else group_norm(x, y, groups, eps, weight.view(), bias.view());
  }
  Tensor<float> forward(TensorView<const float> x, bool silu, Profile* profile = nullptr) const {
    Tensor<float> y(x.shape());
    forward(x, y.view(), silu, profile);
    return y;
  }
};

LATENTKIT_NAMESPACE_END
