// The Stable Diffusion VAE (CompVis ldm AutoencoderKL, the "first stage"):
//
//   encode:  moments = quant_conv(Encoder(image))       image [B, 3, H, W] in [-1, 1]
//            mean = moments[:, :z], logvar = clamp(moments[:, z:], -30, 20)   (DiagonalGaussianDistribution)
//   decode:  image = Decoder(post_quant_conv(z))         z [B, z, H/8, W/8] -> [B, 3, H, W], unclamped
//
//   Encoder: conv_in; per level: num_res_blocks ResnetBlocks (+ attention at attn_resolutions), a (0,1,0,1)-padded
//            stride-2 Downsample between levels; mid: block_1, attn_1, block_2; SiLU(norm_out); conv_out
//   Decoder: conv_in; mid; per level, deepest first: num_res_blocks + 1 ResnetBlocks, an Upsample closing every
//            level but the first; SiLU(norm_out); conv_out
//
// The latent a UNet works on is scale_factor() * z (0.18215 for SD1/SD2); encode and decode work on z itself, so a
// pipeline multiplies after encoding and divides before decoding. Tiled forms bound memory for large images
// (models/tiling.hpp).
#pragma once
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/elementwise.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/models/config_json.hpp"
#include "latentkit/models/tiling.hpp"
#include "latentkit/nn/conv2d.hpp"
#include "latentkit/nn/group_norm.hpp"
#include "latentkit/nn/resampling.hpp"
#include "latentkit/nn/resblock.hpp"
#include "latentkit/nn/vae_attention.hpp"
#include "latentkit/samplers/noise.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct AutoencoderKLConfig {
  index_t in_channels = 3, out_ch = 3, ch = 128, num_res_blocks = 2, resolution = 256, z_channels = 4, embed_dim = 4;
  std::vector<index_t> ch_mult{1, 2, 4, 4};
  std::vector<index_t> attn_resolutions{};  ///< resolutions (from `resolution`, halved per level) with attention
  bool double_z = true;
  double scale_factor = 0.18215;

  /// The SD1.x / SD2.x VAE (v1-inference.yaml, v2-inference-v.yaml: the same first stage).
  static AutoencoderKLConfig sd() { return AutoencoderKLConfig{}; }

  /// Reads {"ddconfig": {...}, "embed_dim": n} (a CompVis first_stage_config's params) or a bare ddconfig.
  AutoencoderKLConfig with_json(const nlohmann::json& j, const std::string& where) const {
    AutoencoderKLConfig c = *this;
    const ConfigFields outer(j, where, "VAE");
    outer.integer("embed_dim", c.embed_dim);
    outer.number("scale_factor", c.scale_factor);
    const nlohmann::json& dd = j.contains("ddconfig") ? j.at("ddconfig") : j;
    const ConfigFields f(dd, where, "VAE ddconfig");
    f.integer("in_channels", c.in_channels);
    f.integer("out_ch", c.out_ch);
    f.integer("ch", c.ch);
    f.integer("num_res_blocks", c.num_res_blocks);
    f.integer("resolution", c.resolution);
    f.integer("z_channels", c.z_channels);
    f.integers("ch_mult", c.ch_mult);
    f.integers("attn_resolutions", c.attn_resolutions, true);
    f.boolean("double_z", c.double_z);
    c.validate(where);
    return c;
  }

  void validate(const std::string& where) const {
    const auto bad = [&](const std::string& what) { config_error(where, "VAE", what); };
    if (in_channels < 1 || out_ch < 1 || z_channels < 1 || embed_dim < 1) bad("channel counts must be >= 1");
    if (ch < 32 || ch % 32 != 0) bad("ch must be a positive multiple of 32 (GroupNorm(32))");
    if (num_res_blocks < 1) bad("num_res_blocks must be >= 1");
    if (ch_mult.empty()) bad("ch_mult is empty");
    for (index_t m : ch_mult)
      if (m < 1) bad("ch_mult entries must be >= 1");
    if (!(scale_factor > 0) || !std::isfinite(scale_factor)) bad("scale_factor must be a positive number");
  }

  index_t levels() const { return static_cast<index_t>(ch_mult.size()); }
  /// Image pixels per latent pixel along each axis (8 for SD).
  index_t downsampling_factor() const { return index_t{1} << (levels() - 1); }
  bool attends_at(index_t res) const {
    for (index_t r : attn_resolutions)
      if (r == res) return true;
    return false;
  }
};

/// The encoder's output distribution: a diagonal Gaussian per latent element.
struct DiagonalGaussian {
  Tensor<float> mean, logvar;  ///< [B, z, h, w]; logvar clamped to [-30, 20]

  /// mean + exp(logvar / 2) * noise, noise a standard normal tensor of mean's shape.
  Tensor<float> sample(TensorView<const float> noise) const {
    if (!(noise.shape() == mean.shape()))
      throw ShapeError("DiagonalGaussian::sample: noise " + noise.shape().str() + " is not " + mean.shape().str());
    const Tensor<float> n = contiguous(noise);
    Tensor<float> out(mean.shape());
    for (index_t i = 0; i < out.numel(); ++i)
      out.data()[i] = mean.data()[i] + std::exp(0.5f * logvar.data()[i]) * n.data()[i];
    return out;
  }
  /// A seeded sample (latentkit's counter-based GaussianNoise: the same for every thread count).
  Tensor<float> sample(std::uint64_t seed) const {
    Tensor<float> noise(mean.shape());
    GaussianNoise(seed).fill(noise.data(), static_cast<std::size_t>(noise.numel()), 0);
    return sample(noise.view());
  }
};

/// One resolution level of the encoder or decoder: residual blocks (each optionally followed by attention) and the
/// resolution change that closes it.
struct VaeLevel {
  std::vector<ResBlock> blocks;
  std::vector<VaeAttention> attentions;  ///< empty, or one per block
  std::optional<Downsample> down;
  std::optional<Upsample> up;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix) {
    for (std::size_t i = 0; i < blocks.size(); ++i) blocks[i].visit_parameters(visit, prefix + "block." + std::to_string(i) + ".");
    for (std::size_t i = 0; i < attentions.size(); ++i)
      attentions[i].visit_parameters(visit, prefix + "attn." + std::to_string(i) + ".");
    if (down) down->visit_parameters(visit, prefix + "downsample.");
    if (up) up->visit_parameters(visit, prefix + "upsample.");
  }
  void prepare(const WeightOptions& options) {
    for (auto& b : blocks) b.prepare(options);
    for (auto& a : attentions) a.prepare(options);
    if (down) down->prepare(options);
    if (up) up->prepare(options);
  }
  Tensor<float> forward(Tensor<float> h, Profile* profile) const {
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      h = blocks[i].forward(h.view(), {}, profile);
      if (!attentions.empty()) attentions[i].forward(h.view(), profile);
    }
    if (down) h = down->forward(h.view(), profile);
    if (up) h = up->forward(h.view(), profile);
    return h;
  }
};

/// mid: block_1, attn_1, block_2 (the same in the encoder and the decoder).
struct VaeMiddle {
  ResBlock block_1;
  VaeAttention attn_1;
  ResBlock block_2;

  VaeMiddle() = default;
  explicit VaeMiddle(index_t channels)
      : block_1(channels, channels, 0, 1e-6f, vae_resblock_names), attn_1(channels),
        block_2(channels, channels, 0, 1e-6f, vae_resblock_names) {}

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix) {
    block_1.visit_parameters(visit, prefix + "block_1.");
    attn_1.visit_parameters(visit, prefix + "attn_1.");
    block_2.visit_parameters(visit, prefix + "block_2.");
  }
  void prepare(const WeightOptions& options) {
    block_1.prepare(options);
    attn_1.prepare(options);
    block_2.prepare(options);
  }
  Tensor<float> forward(TensorView<const float> x, Profile* profile) const {
    Tensor<float> h = block_1.forward(x, {}, profile);
    attn_1.forward(h.view(), profile);
    return block_2.forward(h.view(), {}, profile);
  }
};

class VaeEncoder {
 public:
  VaeEncoder() = default;
  explicit VaeEncoder(const AutoencoderKLConfig& c) {
    conv_in = Conv2d(c.in_channels, c.ch, 3, Conv2dGeometry::padded(1));
    index_t block_in = c.ch, res = c.resolution;
    for (index_t level = 0; level < c.levels(); ++level) {
      VaeLevel l;
      const index_t block_out = c.ch * c.ch_mult[level];
      for (index_t i = 0; i < c.num_res_blocks; ++i) {
        l.blocks.emplace_back(block_in, block_out, 0, 1e-6f, vae_resblock_names);
        block_in = block_out;
        if (c.attends_at(res)) l.attentions.emplace_back(block_in);
      }
      if (level + 1 != c.levels()) {
        l.down.emplace(block_in, block_in, DownsamplePadding::bottom_right, "conv.");
        res /= 2;
      }
      down.push_back(std::move(l));
    }
    mid = VaeMiddle(block_in);
    norm_out = GroupNorm(block_in, 32, 1e-6f);
    conv_out = Conv2d(block_in, c.double_z ? 2 * c.z_channels : c.z_channels, 3, Conv2dGeometry::padded(1));
  }

  Conv2d conv_in;
  std::vector<VaeLevel> down;
  VaeMiddle mid;
  GroupNorm norm_out;
  Conv2d conv_out;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    conv_in.visit_parameters(visit, prefix + "conv_in.");
    for (std::size_t i = 0; i < down.size(); ++i) down[i].visit_parameters(visit, prefix + "down." + std::to_string(i) + ".");
    mid.visit_parameters(visit, prefix + "mid.");
    norm_out.visit_parameters(visit, prefix + "norm_out.");
    conv_out.visit_parameters(visit, prefix + "conv_out.");
  }
  void prepare(const WeightOptions& options) {
    conv_in.prepare(options);
    for (auto& l : down) l.prepare(options);
    mid.prepare(options);
    conv_out.prepare(options);
  }
  Tensor<float> forward(TensorView<const float> x, Profile* profile = nullptr) const {
    Tensor<float> h = conv_in.forward(x, profile);
    for (const auto& l : down) h = l.forward(std::move(h), profile);
    h = mid.forward(h.view(), profile);
    norm_out.forward(h.view(), h.view(), true, profile);
    return conv_out.forward(h.view(), profile);
  }
};

class VaeDecoder {
 public:
  VaeDecoder() = default;
  explicit VaeDecoder(const AutoencoderKLConfig& c) {
    index_t block_in = c.ch * c.ch_mult.back(), res = c.resolution / c.downsampling_factor();
    conv_in = Conv2d(c.z_channels, block_in, 3, Conv2dGeometry::padded(1));
    mid = VaeMiddle(block_in);
    up.resize(static_cast<std::size_t>(c.levels()));
    for (index_t level = c.levels() - 1; level >= 0; --level) {
      VaeLevel& l = up[static_cast<std::size_t>(level)];
      const index_t block_out = c.ch * c.ch_mult[level];
      for (index_t i = 0; i <= c.num_res_blocks; ++i) {
        l.blocks.emplace_back(block_in, block_out, 0, 1e-6f, vae_resblock_names);
        block_in = block_out;
        if (c.attends_at(res)) l.attentions.emplace_back(block_in);
      }
      if (level != 0) {
        l.up.emplace(block_in, block_in);
        res *= 2;
      }
    }
    norm_out = GroupNorm(block_in, 32, 1e-6f);
    conv_out = Conv2d(block_in, c.out_ch, 3, Conv2dGeometry::padded(1));
  }

  Conv2d conv_in;
  VaeMiddle mid;
  std::vector<VaeLevel> up;  ///< up.0 is the full-resolution level; forward runs them deepest first
  GroupNorm norm_out;
  Conv2d conv_out;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    conv_in.visit_parameters(visit, prefix + "conv_in.");
    mid.visit_parameters(visit, prefix + "mid.");
    for (std::size_t i = 0; i < up.size(); ++i) up[i].visit_parameters(visit, prefix + "up." + std::to_string(i) + ".");
    norm_out.visit_parameters(visit, prefix + "norm_out.");
    conv_out.visit_parameters(visit, prefix + "conv_out.");
  }
  void prepare(const WeightOptions& options) {
    conv_in.prepare(options);
    mid.prepare(options);
    for (auto& l : up) l.prepare(options);
    conv_out.prepare(options);
  }
  Tensor<float> forward(TensorView<const float> z, Profile* profile = nullptr) const {
    Tensor<float> h = conv_in.forward(z, profile);
    h = mid.forward(h.view(), profile);
    for (auto l = up.rbegin(); l != up.rend(); ++l) h = l->forward(std::move(h), profile);
    norm_out.forward(h.view(), h.view(), true, profile);
    return conv_out.forward(h.view(), profile);
  }
};

class AutoencoderKL {
 public:
  AutoencoderKL() = default;
  explicit AutoencoderKL(const AutoencoderKLConfig& config)
      : encoder(config), decoder(config),
        quant_conv(config.double_z ? 2 * config.z_channels : config.z_channels, 2 * config.embed_dim, 1, Conv2dGeometry::padded(0)),
        post_quant_conv(config.embed_dim, config.z_channels, 1, Conv2dGeometry::padded(0)), config_(config) {
    config.validate("AutoencoderKL");
  }

  VaeEncoder encoder;
  VaeDecoder decoder;
  Conv2d quant_conv, post_quant_conv;

  const AutoencoderKLConfig& config() const noexcept { return config_; }
  double scale_factor() const noexcept { return config_.scale_factor; }
  index_t downsampling_factor() const { return config_.downsampling_factor(); }
  index_t latent_channels() const noexcept { return config_.embed_dim; }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    encoder.visit_parameters(visit, prefix + "encoder.");
    decoder.visit_parameters(visit, prefix + "decoder.");
    quant_conv.visit_parameters(visit, prefix + "quant_conv.");
    post_quant_conv.visit_parameters(visit, prefix + "post_quant_conv.");
  }
  void prepare() { prepare(WeightOptions{}); }
  void prepare(const WeightOptions& options) {
    encoder.prepare(options);
    decoder.prepare(options);
    quant_conv.prepare(options);
    post_quant_conv.prepare(options);
  }

  /// quant_conv(Encoder(image)) [B, 2 * embed_dim, H/8, W/8] for image [B, in_channels, H, W] in [-1, 1].
  Tensor<float> moments(TensorView<const float> image, Profile* profile = nullptr) const {
    check_image(image);
    const Tensor<float> h = encoder.forward(image, profile);
    return quant_conv.forward(h.view(), profile);
  }
  Tensor<float> moments_tiled(TensorView<const float> image, const TileOptions& tiles, Profile* profile = nullptr) const {
    check_image(image);
    const index_t f = downsampling_factor();
    return run_tiled(image, 2 * config_.embed_dim, {1, f}, f, tiles,
                     [&](TensorView<const float> tile) { return moments(tile, profile); });
  }
  /// The posterior of image: mean and clamped log-variance.
  DiagonalGaussian encode(TensorView<const float> image, Profile* profile = nullptr) const {
    return distribution(moments(image, profile));
  }
  /// Tiles of `tiles.tile` image pixels (a multiple of 8) overlapping by `tiles.overlap`.
  DiagonalGaussian encode_tiled(TensorView<const float> image, const TileOptions& tiles, Profile* profile = nullptr) const {
    return distribution(moments_tiled(image, tiles, profile));
  }

  /// Decoder(post_quant_conv(z)) [B, out_ch, 8h, 8w], unclamped (about [-1, 1]).
  Tensor<float> decode(TensorView<const float> z, Profile* profile = nullptr) const {
    check_latent(z);
    const Tensor<float> h = post_quant_conv.forward(z, profile);
    return decoder.forward(h.view(), profile);
  }
  /// Tiles of `tiles.tile` latent pixels overlapping by `tiles.overlap`.
  Tensor<float> decode_tiled(TensorView<const float> z, const TileOptions& tiles, Profile* profile = nullptr) const {
    check_latent(z);
    return run_tiled(z, config_.out_ch, {downsampling_factor(), 1}, 1, tiles,
                     [&](TensorView<const float> tile) { return decode(tile, profile); });
  }

 private:
  DiagonalGaussian distribution(const Tensor<float>& m) const {
    const index_t z = config_.embed_dim;
    DiagonalGaussian d{contiguous(m.view().slice(1, 0, z)), contiguous(m.view().slice(1, z, 2 * z))};
    clamp_inplace(d.logvar, -30.0, 20.0);
    return d;
  }
  void check_image(TensorView<const float> image) const {
    const index_t f = downsampling_factor();
    if (image.rank() != 4 || image.size(1) != config_.in_channels || image.size(2) == 0 || image.size(3) == 0 ||
        image.size(2) % f != 0 || image.size(3) % f != 0)
      throw ShapeError("AutoencoderKL: image " + image.shape().str() + " is not [batch, " +
                       std::to_string(config_.in_channels) + ", H, W] with H and W positive multiples of " +
                       std::to_string(f));
  }
  void check_latent(TensorView<const float> z) const {
    if (z.rank() != 4 || z.size(1) != config_.embed_dim || z.size(2) == 0 || z.size(3) == 0)
      throw ShapeError("AutoencoderKL: latent " + z.shape().str() + " is not [batch, " + std::to_string(config_.embed_dim) +
                       ", h, w]");
  }

  AutoencoderKLConfig config_;
};

LATENTKIT_NAMESPACE_END
