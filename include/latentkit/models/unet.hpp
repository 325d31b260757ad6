// The Stable Diffusion UNet (CompVis / Stability-AI ldm openaimodel.UNetModel), SD1.x and SD2.x, epsilon or v:
//
//   emb = time_embed.2(SiLU(time_embed.0(timestep_embedding(t, model_channels))))
//   input_blocks:  conv_in, then per level: num_res_blocks x [ResBlock (+ SpatialTransformer where ds is listed in
//                  attention_resolutions)], and a stride-2 Downsample between levels; every output is kept (hs)
//   middle_block:  ResBlock, SpatialTransformer, ResBlock
//   output_blocks: per level, deepest first: num_res_blocks + 1 x [ResBlock on cat(h, hs.pop()) (+ transformer)],
//                  an Upsample closing every level but the first
//   out:           SiLU(GroupNorm(h)) -> 3x3 conv
//
// Built from a UNetConfig (CompVis field names; presets sd15() and sd21_v() are the released configs); the state-dict
// names are the single-file checkpoint's, relative to "model.diffusion_model.".
#pragma once
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/denoisers/prediction.hpp"
#include "latentkit/kernels/activation.hpp"
#include "latentkit/kernels/resample.hpp"
#include "latentkit/models/config_json.hpp"
#include "latentkit/nn/conv2d.hpp"
#include "latentkit/nn/group_norm.hpp"
#include "latentkit/nn/linear.hpp"
#include "latentkit/nn/resampling.hpp"
#include "latentkit/nn/resblock.hpp"
#include "latentkit/nn/spatial_transformer.hpp"
#include "latentkit/nn/timestep_embedding.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct UNetConfig {
  index_t in_channels = 4, out_channels = 4, model_channels = 320, num_res_blocks = 2;
  std::vector<index_t> channel_mult{1, 2, 4, 4};
  std::vector<index_t> attention_resolutions{4, 2, 1};  ///< downsampling factors ds that get a transformer
  index_t num_heads = 8;            ///< used when num_head_channels is -1
  index_t num_head_channels = -1;   ///< SD2: 64 channels per head
  index_t transformer_depth = 1;
  index_t context_dim = 768;
  bool use_linear_in_transformer = false;
  bool legacy = false;
  Prediction prediction = Prediction::epsilon;  ///< what the network predicts (not a CompVis UNet field)

  /// runwayml v1-5 (v1-inference.yaml).
  static UNetConfig sd15() { return UNetConfig{}; }
  /// stabilityai 2.1 768-v (v2-inference-v.yaml).
  static UNetConfig sd21_v() {
    UNetConfig c;
    c.num_heads = -1, c.num_head_channels = 64, c.context_dim = 1024, c.use_linear_in_transformer = true;
    c.prediction = Prediction::v_prediction;
    return c;
  }

  /// (heads, dim_head) of a transformer at `channels` channels, as UNetModel.__init__ computes them.
  std::pair<index_t, index_t> heads_at(index_t channels) const {
    index_t heads = num_heads, dim_head = 0;
    if (num_head_channels == -1) {
      if (heads < 1 || channels % heads != 0)
        throw ShapeError("UNetConfig: " + std::to_string(channels) + " channels do not split into num_heads " +
                         std::to_string(heads));
      dim_head = channels / heads;
    } else {
      if (num_head_channels < 1 || channels % num_head_channels != 0)
        throw ShapeError("UNetConfig: " + std::to_string(channels) + " channels are not a multiple of num_head_channels " +
                         std::to_string(num_head_channels));
      heads = channels / num_head_channels;
      dim_head = num_head_channels;
    }
    if (legacy) dim_head = channels / heads;  // use_spatial_transformer and legacy: ch // num_heads
    return {heads, dim_head};
  }

  /// Reads a CompVis UNetModel config (JSON object; unknown fields are ignored, absent ones keep this object's
  /// values). `where` names the source in errors.
  UNetConfig with_json(const nlohmann::json& j, const std::string& where) const {
    UNetConfig c = *this;
    const ConfigFields f(j, where, "UNet");
    f.integer("in_channels", c.in_channels);
    f.integer("out_channels", c.out_channels);
    f.integer("model_channels", c.model_channels);
    f.integer("num_res_blocks", c.num_res_blocks);
    f.integers("channel_mult", c.channel_mult);
    f.integers("attention_resolutions", c.attention_resolutions, true);
    if (f.has("num_heads") || f.has("num_head_channels")) c.num_heads = -1, c.num_head_channels = -1;
    f.integer("num_heads", c.num_heads);
    f.integer("num_head_channels", c.num_head_channels);
    if (const auto it = j.find("transformer_depth"); it != j.end() && it->is_array()) {
      std::vector<index_t> depths;
      f.integers("transformer_depth", depths);
      for (index_t d : depths)
        if (d != depths[0]) f.fail("per-level transformer_depth is not supported yet");
      c.transformer_depth = depths[0];
    } else {
      f.integer("transformer_depth", c.transformer_depth);
    }
    f.integer("context_dim", c.context_dim);
    f.boolean("use_linear_in_transformer", c.use_linear_in_transformer);
    f.boolean("legacy", c.legacy);
    c.validate(where);
    return c;
  }

  void validate(const std::string& where) const {
    const auto bad = [&](const std::string& what) { config_error(where, "UNet", what); };
    if (in_channels < 1 || out_channels < 1 || model_channels < 1) bad("channel counts must be >= 1");
    if (num_res_blocks < 1) bad("num_res_blocks must be >= 1");
    if (channel_mult.empty()) bad("channel_mult is empty");
    for (index_t m : channel_mult)
      if (m < 1) bad("channel_mult entries must be >= 1");
    if (transformer_depth < 1) bad("transformer_depth must be >= 1");
    if (context_dim < 1) bad("context_dim must be >= 1");
    if (model_channels % 32 != 0) bad("model_channels must be a multiple of 32 (GroupNorm(32))");
    if (num_heads == -1 && num_head_channels == -1) bad("either num_heads or num_head_channels must be set");
  }

  index_t levels() const { return static_cast<index_t>(channel_mult.size()); }
  bool attends_at(index_t ds) const {
    for (index_t r : attention_resolutions)
      if (r == ds) return true;
    return false;
  }
};

/// One entry of input_blocks / output_blocks (a TimestepEmbedSequential): its layers in state-dict order.
struct UNetBlock {
  std::optional<ResBlock> res;
  std::optional<SpatialTransformer> attn;
  std::optional<Downsample> down;
  std::optional<Upsample> up;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix) {
    index_t i = 0;
    const auto next = [&] { return prefix + std::to_string(i++) + "."; };
    if (down) down->visit_parameters(visit, next());
    if (res) res->visit_parameters(visit, next());
    if (attn) attn->visit_parameters(visit, next());
    if (up) up->visit_parameters(visit, next());
  }
  void prepare(const WeightOptions& options) {
    if (down) down->prepare(options);
    if (res) res->prepare(options);
    if (attn) attn->prepare(options);
    if (up) up->prepare(options);
  }
  /// A new tensor from x (never written): a block starts with either a Downsample or a ResBlock.
  Tensor<float> forward(TensorView<const float> x, TensorView<const float> silu_emb, TensorView<const float> context,
                        Profile* profile) const {
    Tensor<float> h = down ? down->forward(x, profile) : res->forward(x, silu_emb, profile);
    if (attn) attn->forward(h.view(), context, profile);
    if (up) h = up->forward(h.view(), profile);
    return h;
  }
};

class UNet {
 public:
  UNet() = default;
  explicit UNet(const UNetConfig& config) : config_(config) {
    config.validate("UNet");
    const index_t mc = config.model_channels, ted = 4 * mc;
    time_embed_0 = Linear(mc, ted);
    time_embed_2 = Linear(ted, ted);
    const auto transformer = [&](index_t ch) {
      const auto [heads, dim_head] = config.heads_at(ch);
      return SpatialTransformer(ch, heads, dim_head, config.transformer_depth, config.context_dim,
                                config.use_linear_in_transformer);
    };
    conv_in = Conv2d(config.in_channels, mc, 3, Conv2dGeometry::padded(1));
    std::vector<index_t> skip_channels{mc};
    index_t ch = mc, ds = 1;
    for (index_t level = 0; level < config.levels(); ++level) {
      for (index_t r = 0; r < config.num_res_blocks; ++r) {
        UNetBlock block;
        block.res.emplace(ch, config.channel_mult[level] * mc, ted, 1e-5f, unet_resblock_names);
        ch = config.channel_mult[level] * mc;
        if (config.attends_at(ds)) block.attn.emplace(transformer(ch));
        input_blocks.push_back(std::move(block));
        skip_channels.push_back(ch);
      }
      if (level + 1 != config.levels()) {
        UNetBlock block;
        block.down.emplace(ch, ch, DownsamplePadding::symmetric, "op.");
        input_blocks.push_back(std::move(block));
        skip_channels.push_back(ch);
        ds *= 2;
      }
    }
    middle_res1 = ResBlock(ch, ch, ted, 1e-5f, unet_resblock_names);
    middle_attn = transformer(ch);
    middle_res2 = ResBlock(ch, ch, ted, 1e-5f, unet_resblock_names);
    for (index_t level = config.levels() - 1; level >= 0; --level) {
      for (index_t i = 0; i <= config.num_res_blocks; ++i) {
        const index_t skip = skip_channels.back();
        skip_channels.pop_back();
        UNetBlock block;
        block.res.emplace(ch + skip, mc * config.channel_mult[level], ted, 1e-5f, unet_resblock_names);
        ch = mc * config.channel_mult[level];
        if (config.attends_at(ds)) block.attn.emplace(transformer(ch));
        if (level > 0 && i == config.num_res_blocks) {
          block.up.emplace(ch, ch);
          ds /= 2;
        }
        output_blocks.push_back(std::move(block));
      }
    }
    out_norm = GroupNorm(ch, 32, 1e-5f);
    out_conv = Conv2d(mc, config.out_channels, 3, Conv2dGeometry::padded(1));
  }

  Linear time_embed_0, time_embed_2;
  Conv2d conv_in;
  std::vector<UNetBlock> input_blocks;  ///< input_blocks.1 ... (input_blocks.0 is conv_in)
  ResBlock middle_res1;
  SpatialTransformer middle_attn;
  ResBlock middle_res2;
  std::vector<UNetBlock> output_blocks;
  GroupNorm out_norm;
  Conv2d out_conv;

  const UNetConfig& config() const noexcept { return config_; }
  /// The factor H and W must be divisible by (one halving per level boundary).
  index_t downsampling_factor() const { return index_t{1} << (config_.levels() - 1); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    time_embed_0.visit_parameters(visit, prefix + "time_embed.0.");
    time_embed_2.visit_parameters(visit, prefix + "time_embed.2.");
    conv_in.visit_parameters(visit, prefix + "input_blocks.0.0.");
    for (std::size_t i = 0; i < input_blocks.size(); ++i)
      input_blocks[i].visit_parameters(visit, prefix + "input_blocks." + std::to_string(i + 1) + ".");
    middle_res1.visit_parameters(visit, prefix + "middle_block.0.");
    middle_attn.visit_parameters(visit, prefix + "middle_block.1.");
    middle_res2.visit_parameters(visit, prefix + "middle_block.2.");
    for (std::size_t i = 0; i < output_blocks.size(); ++i)
      output_blocks[i].visit_parameters(visit, prefix + "output_blocks." + std::to_string(i) + ".");
    out_norm.visit_parameters(visit, prefix + "out.0.");
    out_conv.visit_parameters(visit, prefix + "out.2.");
  }
  void prepare() { prepare(WeightOptions{}); }
  void prepare(const WeightOptions& options) {
    time_embed_0.prepare(options);
    time_embed_2.prepare(options);
    conv_in.prepare(options);
    for (auto& b : input_blocks) b.prepare(options);
    middle_res1.prepare(options);
    middle_attn.prepare(options);
    middle_res2.prepare(options);
    for (auto& b : output_blocks) b.prepare(options);
    out_conv.prepare(options);
  }

  /// The network output [B, out_channels, H, W] (epsilon or v) for x [B, in_channels, H, W], one float32 timestep
  /// per item (fractional allowed) and context [B, tokens, context_dim].
  Tensor<float> forward(TensorView<const float> x, std::span<const float> timesteps, TensorView<const float> context,
                        Profile* profile = nullptr) const {
    check_inputs(x, timesteps, context);
    const index_t batch = x.size(0), mc = config_.model_channels;
    Tensor<float> silu_emb;
    {
      const Tensor<float> t_emb = timestep_embedding(timesteps, mc);
      Tensor<float> hidden({batch, 4 * mc});
      time_embed_0.forward(t_emb.view(), hidden.view(), profile);
      silu(hidden.view(), hidden.view());
      silu_emb = Tensor<float>({batch, 4 * mc});
      time_embed_2.forward(hidden.view(), silu_emb.view(), profile);
      silu(silu_emb.view(), silu_emb.view());  // every ResBlock's emb_layers start with SiLU
    }
    const Tensor<float> dense_context = context.is_contiguous() ? Tensor<float>() : contiguous(context);
    const TensorView<const float> ctx = context.is_contiguous() ? context : dense_context.view();

    // hs of the reference: every input block's output, consumed deepest first by the output blocks.
    std::vector<Tensor<float>> skips;
    skips.reserve(input_blocks.size() + 1);
    skips.push_back(conv_in.forward(x, profile));
    for (const auto& block : input_blocks) skips.push_back(block.forward(skips.back().view(), silu_emb.view(), ctx, profile));
    Tensor<float> h = middle_res1.forward(skips.back().view(), silu_emb.view(), profile);
    middle_attn.forward(h.view(), ctx, profile);
    h = middle_res2.forward(h.view(), silu_emb.view(), profile);
    for (const auto& block : output_blocks) {
      Tensor<float> joined;
      {
        const ProfileScope scope(profile, LayerKind::other);
        joined = concat_channels(h.view(), skips.back().view());
      }
      skips.pop_back();
      h = Tensor<float>();
      h = block.forward(joined.view(), silu_emb.view(), ctx, profile);
    }
    out_norm.forward(h.view(), h.view(), true, profile);
    return out_conv.forward(h.view(), profile);
  }

 private:
  void check_inputs(TensorView<const float> x, std::span<const float> timesteps, TensorView<const float> context) const {
    const index_t f = downsampling_factor();
    if (x.rank() != 4 || x.size(1) != config_.in_channels || x.size(2) % f != 0 || x.size(3) % f != 0 || x.size(2) == 0 ||
        x.size(3) == 0)
      throw ShapeError("UNet: input " + x.shape().str() + " is not [batch, " + std::to_string(config_.in_channels) +
                       ", H, W] with H and W positive multiples of " + std::to_string(f));
    if (static_cast<index_t>(timesteps.size()) != x.size(0))
      throw ShapeError("UNet: " + std::to_string(timesteps.size()) + " timesteps for a batch of " +
                       std::to_string(x.size(0)));
    if (context.rank() != 3 || context.size(0) != x.size(0) || context.size(2) != config_.context_dim || context.size(1) < 1)
      throw ShapeError("UNet: context " + context.shape().str() + " is not [" + std::to_string(x.size(0)) + ", tokens, " +
                       std::to_string(config_.context_dim) + "]");
  }

  UNetConfig config_;
};

LATENTKIT_NAMESPACE_END
