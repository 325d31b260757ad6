// TAESD, the tiny autoencoder (madebyollin/taesd): a cheap stand-in for the VAE, for previews during sampling or a
// fast final decode. Keys are the nn.Sequential state dicts of taesd.py, as in taesd_encoder.pth / _decoder.pth:
//
//   Block(c):  ReLU(conv.4(ReLU(conv.2(ReLU(conv.0(x))))) + x)        3x3 convs ("skip" is a 1x1 conv when the
//                                                                      channel count changes; not in SD's TAESD)
//   Encoder:   0 conv(3, 64), 1 Block, then 3 x [stride-2 conv without bias, 3 Blocks] (indices 2-13), 14 conv(64, z)
//   Decoder:   0 3 tanh(x/3), 1 conv(z, 64), 2 ReLU, then 3 x [3 Blocks, nearest 2x, conv without bias] (3-17),
//              18 Block, 19 conv(64, 3)
//
// TAESD works on UNet-space latents (already times the VAE's scale factor) and images in [0, 1].
#pragma once
#include <string>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/io/safetensors.hpp"
#include "latentkit/kernels/activation.hpp"
#include "latentkit/kernels/resample.hpp"
#include "latentkit/nn/conv2d.hpp"
#include "latentkit/models/tiling.hpp"
#include "latentkit/nn/parameters.hpp"

LATENTKIT_NAMESPACE_BEGIN

class TaesdBlock {
 public:
  TaesdBlock() = default;
  TaesdBlock(index_t in_channels, index_t out_channels)
      : conv0(in_channels, out_channels, 3, Conv2dGeometry::padded(1)),
        conv2(out_channels, out_channels, 3, Conv2dGeometry::padded(1)),
        conv4(out_channels, out_channels, 3, Conv2dGeometry::padded(1)), has_skip_(in_channels != out_channels) {
    if (has_skip_) skip = Conv2d(in_channels, out_channels, 1, Conv2dGeometry::padded(0), false);
  }

  Conv2d conv0, conv2, conv4, skip;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    conv0.visit_parameters(visit, prefix + "conv.0.");
    conv2.visit_parameters(visit, prefix + "conv.2.");
    conv4.visit_parameters(visit, prefix + "conv.4.");
    if (has_skip_) skip.visit_parameters(visit, prefix + "skip.");
  }
  void prepare(const WeightOptions& options) {
    conv0.prepare(options);
    conv2.prepare(options);
    conv4.prepare(options);
    if (has_skip_) skip.prepare(options);
  }
  Tensor<float> forward(TensorView<const float> x, Profile* profile) const {
    Tensor<float> h = conv0.forward(x, profile);
    relu_in_place(h, profile);
    Tensor<float> h2 = conv2.forward(h.view(), profile);
    relu_in_place(h2, profile);
    conv4.forward(h2.view(), h.view(), profile);
    const Tensor<float> s = has_skip_ ? skip.forward(x, profile) : Tensor<float>();
    const ProfileScope scope(profile, LayerKind::other);
    residual_add(h.view(), has_skip_ ? s.view() : x, h.view());
    relu(h.view(), h.view());
    return h;
  }

  static void relu_in_place(Tensor<float>& t, Profile* profile) {
    const ProfileScope scope(profile, LayerKind::other);
    relu(t.view(), t.view());
  }

 private:
  bool has_skip_ = false;
};

/// One entry of the Sequential: a conv (optionally followed by ReLU or preceded by a nearest 2x), or a Block.
struct TaesdStage {
  enum class Kind { conv, block } kind = Kind::conv;
  index_t index = 0;  ///< position in the Sequential (the key prefix "<index>.")
  Conv2d conv;
  TaesdBlock block;
  bool upsample_before = false, relu_after = false;
};

/// The encoder or the decoder: a list of stages run in order.
class TaesdNetwork {
 public:
  TaesdNetwork() = default;

  /// taesd.py Encoder(latent_channels).
  static TaesdNetwork encoder(index_t latent_channels, index_t width = 64) {
    TaesdNetwork n;
    n.in_channels_ = 3, n.out_channels_ = latent_channels, n.scale_ = {1, 8};
    n.add_conv(0, 3, width, Conv2dGeometry::padded(1), true);
    n.add_block(1, width, width);
    index_t i = 2;
    for (int group = 0; group < 3; ++group) {
      n.add_conv(i++, width, width, Conv2dGeometry::padded(1, 2), false);
      for (int b = 0; b < 3; ++b) n.add_block(i++, width, width);
    }
    n.add_conv(i, width, latent_channels, Conv2dGeometry::padded(1), true);
    return n;
  }
  /// taesd.py Decoder(latent_channels).
  static TaesdNetwork decoder(index_t latent_channels, index_t width = 64) {
    TaesdNetwork n;
    n.in_channels_ = latent_channels, n.out_channels_ = 3, n.scale_ = {8, 1}, n.clamp_input_ = true;
    n.add_conv(1, latent_channels, width, Conv2dGeometry::padded(1), true).relu_after = true;
    index_t i = 3;
    for (int group = 0; group < 3; ++group) {
      for (int b = 0; b < 3; ++b) n.add_block(i++, width, width);
      ++i;  // nn.Upsample
      n.add_conv(i++, width, width, Conv2dGeometry::padded(1), false).upsample_before = true;
    }
    n.add_block(i++, width, width);
    n.add_conv(i, width, 3, Conv2dGeometry::padded(1), true);
    return n;
  }

  std::vector<TaesdStage> stages;

  index_t in_channels() const noexcept { return in_channels_; }
  index_t out_channels() const noexcept { return out_channels_; }
  /// Output pixels per input pixel (8/1 for the decoder, 1/8 for the encoder).
  ScaleRatio scale() const noexcept { return scale_; }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    for (auto& s : stages) {
      const std::string p = prefix + std::to_string(s.index) + ".";
      if (s.kind == TaesdStage::Kind::conv) s.conv.visit_parameters(visit, p);
      else s.block.visit_parameters(visit, p);
    }
  }
  void prepare() { prepare(WeightOptions{}); }
  void prepare(const WeightOptions& options) {
    for (auto& s : stages) {
      if (s.kind == TaesdStage::Kind::conv) s.conv.prepare(options);
      else s.block.prepare(options);
    }
  }

  Tensor<float> forward(TensorView<const float> x, Profile* profile = nullptr) const {
    const index_t f = scale_.den;
    if (x.rank() != 4 || x.size(1) != in_channels_ || x.size(2) == 0 || x.size(3) == 0 || x.size(2) % f != 0 ||
        x.size(3) % f != 0)
      throw ShapeError("TAESD " + std::string(clamp_input_ ? "decoder" : "encoder") + ": input " + x.shape().str() +
                       " is not [batch, " + std::to_string(in_channels_) + ", H, W]" +
                       (f > 1 ? " with H and W positive multiples of " + std::to_string(f) : std::string()));
    Tensor<float> h = contiguous(x);
    if (clamp_input_) {
      const ProfileScope scope(profile, LayerKind::other);
      soft_clamp3(h.view(), h.view());
    }
    for (const auto& s : stages) {
      if (s.kind == TaesdStage::Kind::block) {
        h = s.block.forward(h.view(), profile);
        continue;
      }
      if (s.upsample_before) {
        const ProfileScope scope(profile, LayerKind::other);
        h = upsample_nearest2x(h.view());
      }
      h = s.conv.forward(h.view(), profile);
      if (s.relu_after) TaesdBlock::relu_in_place(h, profile);
    }
    return h;
  }

 private:
  TaesdStage& add_conv(index_t index, index_t in, index_t out, const Conv2dGeometry& geometry, bool bias) {
    TaesdStage s;
    s.kind = TaesdStage::Kind::conv, s.index = index;
    s.conv = Conv2d(in, out, 3, geometry, bias);
    stages.push_back(std::move(s));
    return stages.back();
  }
  void add_block(index_t index, index_t in, index_t out) {
    TaesdStage s;
    s.kind = TaesdStage::Kind::block, s.index = index;
    s.block = TaesdBlock(in, out);
    stages.push_back(std::move(s));
  }

  index_t in_channels_ = 0, out_channels_ = 0;
  ScaleRatio scale_{1, 1};
  bool clamp_input_ = false;
};

/// A TAESD encoder or decoder file (taesd_encoder / taesd_decoder as safetensors, keys at `prefix`): which one it is and
/// its latent channels come from the keys and shapes; weights packed as `options` says.
inline TaesdNetwork load_taesd(const SafetensorsFile& file, const std::string& prefix = "", const WeightOptions& options = {}) {
  const std::string where = file.path().string();
  const auto shape_of = [&](const std::string& key) {
    if (!file.contains(prefix + key)) return Dims{};
    return file.info(prefix + key).shape;
  };
  const Dims dec_in = shape_of("1.weight"), enc_in = shape_of("0.weight");
  TaesdNetwork net;
  if (dec_in.rank() == 4) {
    net = TaesdNetwork::decoder(dec_in[1], dec_in[0]);
  } else if (enc_in.rank() == 4) {
    const Dims out = shape_of("14.weight");
    if (out.rank() != 4)
      throw FormatError(where + ": a TAESD encoder needs '" + prefix + "14.weight' [latent_channels, 64, 3, 3]");
    net = TaesdNetwork::encoder(out[0], enc_in[0]);
  } else {
    throw FormatError(where + ": not a TAESD encoder or decoder (neither '" + prefix + "0.weight' nor '" + prefix +
                      "1.weight' is a conv weight)");
  }
  load_parameters(net, file, prefix, options);
  return net;
}

LATENTKIT_NAMESPACE_END
