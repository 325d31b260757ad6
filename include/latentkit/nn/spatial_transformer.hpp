// The SD UNet's attention stage (ldm attention.SpatialTransformer and BasicTransformerBlock):
//   t = proj_in(norm(x)) as tokens [B, HW, I]            GroupNorm(32, eps 1e-6); proj_in a 1x1 conv (SD1) or a
//   for each block:                                      Linear (SD2 use_linear_in_transformer): the same GEMM
//     t += attn1(norm1(t))                 self-attention
//     t += attn2(norm2(t), context)        cross-attention over the text conditioning
//     t += ff(norm3(t))                    GEGLU: net.0.proj [2F, I] -> value * GELU(gate) -> net.2 [I, F]
//   y = x + proj_out(t)                                  written straight into NCHW
#pragma once
#include <string>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/activation.hpp"
#include "latentkit/nn/cross_attention.hpp"
#include "latentkit/nn/group_norm.hpp"
#include "latentkit/nn/layer_norm.hpp"
#include "latentkit/nn/linear.hpp"
#include "latentkit/nn/projections.hpp"

LATENTKIT_NAMESPACE_BEGIN

class BasicTransformerBlock {
 public:
  BasicTransformerBlock() = default;
  BasicTransformerBlock(index_t dim, index_t heads, index_t dim_head, index_t context_dim)
      : norm1(dim), attn1(dim, 0, heads, dim_head), norm2(dim), attn2(dim, context_dim, heads, dim_head), norm3(dim),
        ff_proj(dim, 8 * dim), ff_out(4 * dim, dim) {}

  LayerNorm norm1;
  CrossAttention attn1;
  LayerNorm norm2;
  CrossAttention attn2;
  LayerNorm norm3;
  Linear ff_proj;  ///< ff.net.0.proj [2F, D], F = 4D: value rows then gate rows
  Linear ff_out;   ///< ff.net.2 [D, F]

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    attn1.visit_parameters(visit, prefix + "attn1.");
    ff_proj.visit_parameters(visit, prefix + "ff.net.0.proj.");
    ff_out.visit_parameters(visit, prefix + "ff.net.2.");
    attn2.visit_parameters(visit, prefix + "attn2.");
    norm1.visit_parameters(visit, prefix + "norm1.");
    norm2.visit_parameters(visit, prefix + "norm2.");
    norm3.visit_parameters(visit, prefix + "norm3.");
  }
  void prepare(const WeightOptions& options = {}) {
    attn1.prepare(options);
    attn2.prepare(options);
    ff_proj.prepare(options);
    ff_out.prepare(options);
  }

  /// tokens [B*L, D] updated in place; context [B, Lc, Dc].
  void forward(TensorView<float> tokens, index_t batch, TensorView<const float> context, Profile* profile = nullptr) const {
    const index_t rows = tokens.size(0);
    Tensor<float> t(tokens.shape());
    norm(norm1, tokens, t.view(), profile);
    attn1.forward_add(t.view(), batch, {}, tokens, profile);
    norm(norm2, tokens, t.view(), profile);
    attn2.forward_add(t.view(), batch, context, tokens, profile);
    norm(norm3, tokens, t.view(), profile);
    Tensor<float> h({rows, ff_proj.out_features()});
    ff_proj.forward(t.view(), h.view(), profile);
    t = Tensor<float>();
    Tensor<float> g({rows, ff_out.in_features()});
    {
      const ProfileScope scope(profile, LayerKind::other);
      geglu(h.view(), g.view());
    }
    h = Tensor<float>();
    ff_out.apply(Transpose::no, rows, g.data(), ff_out.in_features(), tokens.data(), tokens.stride(0), true, profile);
  }

 private:
  static void norm(const LayerNorm& n, TensorView<const float> x, TensorView<float> y, Profile* profile) {
    const ProfileScope scope(profile, LayerKind::norm);
    n.forward(x, y);
  }
};

class SpatialTransformer {
 public:
  SpatialTransformer() = default;
  SpatialTransformer(index_t channels, index_t heads, index_t dim_head, index_t depth, index_t context_dim,
                     bool use_linear)
      : norm(channels, 32, 1e-6f),
        proj_in(channels, {ProjectionPart{"", heads * dim_head}}, !use_linear),
        proj_out(heads * dim_head, channels, !use_linear) {
    for (index_t d = 0; d < depth; ++d) blocks.emplace_back(heads * dim_head, heads, dim_head, context_dim);
  }

  GroupNorm norm;
  TokenProjection proj_in;
  std::vector<BasicTransformerBlock> blocks;
  ChannelProjection proj_out;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    norm.visit_parameters(visit, prefix + "norm.");
    proj_in.visit_parameters(visit, prefix + "proj_in.");
    for (std::size_t d = 0; d < blocks.size(); ++d)
      blocks[d].visit_parameters(visit, prefix + "transformer_blocks." + std::to_string(d) + ".");
    proj_out.visit_parameters(visit, prefix + "proj_out.");
  }
  void prepare(const WeightOptions& options = {}) {
    proj_in.prepare(options);
    for (auto& b : blocks) b.prepare(options);
    proj_out.prepare(options);
  }

  /// x [B, C, H, W] += the transformer's output (in place: x is the residual stream).
  void forward(TensorView<float> x, TensorView<const float> context, Profile* profile = nullptr) const {
    const index_t batch = x.size(0), pixels = x.size(2) * x.size(3);
    Tensor<float> tokens({batch * pixels, proj_in.out_features()});
    {
      const Tensor<float> h = norm.forward(x, false, profile);
      proj_in.forward(h.view(), tokens.view(), profile);
    }
    for (const auto& b : blocks) b.forward(tokens.view(), batch, context, profile);
    proj_out.forward_add(tokens.view(), x, profile);
  }
};

LATENTKIT_NAMESPACE_END
