// The residual block of the SD UNet (openaimodel.ResBlock) and of the VAE (model.ResnetBlock): one computation,
// two sets of state-dict names.
//   h = conv1(SiLU(norm1(x))) + emb_proj(SiLU(emb))[:, :, None, None]     (UNet only: the time embedding)
//   h = conv2(SiLU(norm2(h)))                                             (dropout is the identity at inference)
//   y = shortcut(x) + h    shortcut: the identity, or a 1x1 conv when the channel count changes
// The time embedding is folded into conv1's bias per batch item, so it costs no pass over the activations.
#pragma once
#include <string>
#include <string_view>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/resample.hpp"
#include "latentkit/nn/conv2d.hpp"
#include "latentkit/nn/group_norm.hpp"
#include "latentkit/nn/linear.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// State-dict names of one residual block layout, relative to the block's prefix.
struct ResBlockNames {
  std::string_view norm1, conv1, emb_proj, norm2, conv2, skip;
};
inline constexpr ResBlockNames unet_resblock_names{"in_layers.0.", "in_layers.2.", "emb_layers.1.",
                                                   "out_layers.0.", "out_layers.3.", "skip_connection."};
inline constexpr ResBlockNames vae_resblock_names{"norm1.", "conv1.", "temb_proj.", "norm2.", "conv2.", "nin_shortcut."};

class ResBlock {
 public:
  ResBlock() = default;
  /// `emb_channels` 0: no time embedding (the VAE).
  ResBlock(index_t in_channels, index_t out_channels, index_t emb_channels, float eps, const ResBlockNames& names)
      : norm1(in_channels, 32, eps), conv1(in_channels, out_channels, 3, Conv2dGeometry::padded(1)),
        norm2(out_channels, 32, eps), conv2(out_channels, out_channels, 3, Conv2dGeometry::padded(1)),
        names_(names), has_emb_(emb_channels > 0), has_skip_(in_channels != out_channels) {
    if (has_emb_) emb_proj = Linear(emb_channels, out_channels);
    if (has_skip_) skip = Conv2d(in_channels, out_channels, 1, Conv2dGeometry::padded(0));
  }

  GroupNorm norm1;
  Conv2d conv1;
  Linear emb_proj;
  GroupNorm norm2;
  Conv2d conv2;
  Conv2d skip;

  index_t in_channels() const { return conv1.in_channels(); }
  index_t out_channels() const { return conv1.out_channels(); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    norm1.visit_parameters(visit, prefix + std::string(names_.norm1));
    conv1.visit_parameters(visit, prefix + std::string(names_.conv1));
    if (has_emb_) emb_proj.visit_parameters(visit, prefix + std::string(names_.emb_proj));
    norm2.visit_parameters(visit, prefix + std::string(names_.norm2));
    conv2.visit_parameters(visit, prefix + std::string(names_.conv2));
    if (has_skip_) skip.visit_parameters(visit, prefix + std::string(names_.skip));
  }
  void prepare(const WeightOptions& options = {}) {
    conv1.prepare(options);
    if (has_emb_) emb_proj.prepare(options);
    conv2.prepare(options);
    if (has_skip_) skip.prepare(options);
  }

  /// y [B, O, H, W] from x [B, C, H, W]; `silu_emb` [B, E] is SiLU(time embedding), shared by every block (UNet).
  Tensor<float> forward(TensorView<const float> x, TensorView<const float> silu_emb, Profile* profile = nullptr) const {
    const index_t batch = x.size(0);
    Tensor<float> h = norm1.forward(x, true, profile);
    Tensor<float> mid(conv1.output_shape(h.shape()));
    if (has_emb_) {
      if (silu_emb.rank() != 2 || silu_emb.size(0) != batch)
        throw ShapeError("ResBlock: time embedding " + silu_emb.shape().str() + " does not match the batch of " +
                         x.shape().str());
      Tensor<float> bias({batch, out_channels()});
      emb_proj.forward(silu_emb, bias.view(), profile);
      for (index_t b = 0; b < batch; ++b) {
        for (index_t o = 0; o < out_channels(); ++o) bias(b, o) += conv1.bias(o);
        conv1.forward(h.view().slice(0, b, b + 1), mid.view().slice(0, b, b + 1), profile,
                      bias.view().slice(0, b, b + 1).reshape({out_channels()}));
      }
    } else {
      conv1.forward(h.view(), mid.view(), profile);
    }
    h = Tensor<float>();
    norm2.forward(mid.view(), mid.view(), true, profile);
    Tensor<float> y = conv2.forward(mid.view(), profile);
    mid = Tensor<float>();
    const Tensor<float> s = has_skip_ ? skip.forward(x, profile) : Tensor<float>();
    const ProfileScope scope(profile, LayerKind::other);
    residual_add(y.view(), has_skip_ ? s.view() : x, y.view());
    return y;
  }

 private:
  ResBlockNames names_{unet_resblock_names};
  bool has_emb_ = false, has_skip_ = false;
};

LATENTKIT_NAMESPACE_END
