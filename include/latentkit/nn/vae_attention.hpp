// The VAE's single-head self-attention over pixels (ldm model.AttnBlock): q, k, v and proj_out are 1x1 convs of
// C channels, scale C^-1/2:
//   y = x + proj_out(softmax(q^T k / sqrt(C)) v)   over the H*W pixels of each item
// q|k|v are one GEMM straight from NCHW to token rows; proj_out writes back into NCHW onto the residual.
#pragma once
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/nn/cross_attention.hpp"
#include "latentkit/nn/group_norm.hpp"
#include "latentkit/nn/projections.hpp"

LATENTKIT_NAMESPACE_BEGIN

class VaeAttention {
 public:
  VaeAttention() = default;
  explicit VaeAttention(index_t channels, float eps = 1e-6f)
      : norm(channels, 32, eps),
        qkv(channels, {ProjectionPart{"q.", channels}, ProjectionPart{"k.", channels}, ProjectionPart{"v.", channels}}, true),
        proj_out(channels, channels, true) {}

  GroupNorm norm;
  TokenProjection qkv;
  ChannelProjection proj_out;

  index_t channels() const { return norm.channels(); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    norm.visit_parameters(visit, prefix + "norm.");
    qkv.visit_parameters(visit, prefix);
    proj_out.visit_parameters(visit, prefix + "proj_out.");
  }
  void prepare(const WeightOptions& options = {}) {
    qkv.prepare(options);
    proj_out.prepare(options);
  }

  /// x [B, C, H, W] += attention (in place).
  void forward(TensorView<float> x, Profile* profile = nullptr) const {
    const index_t batch = x.size(0), pixels = x.size(2) * x.size(3), c = channels();
    Tensor<float> proj({batch * pixels, 3 * c});
    {
      const Tensor<float> h = norm.forward(x, false, profile);
      qkv.forward(h.view(), proj.view(), profile);
    }
    Tensor<float> out({batch * pixels, c});
    attention_over_rows(proj.data(), 3 * c, proj.data() + c, proj.data() + 2 * c, 3 * c, out.data(), batch, 1, pixels,
                        pixels, c, profile);
    proj_out.forward_add(out.view(), x, profile);
  }
};

LATENTKIT_NAMESPACE_END
