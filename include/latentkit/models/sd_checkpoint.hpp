// Single-file Stable Diffusion checkpoints (CompVis / A1111 layout, as people download them): which family a file
// is, the configs of its UNet and VAE, a report of every missing, unexpected or mis-shaped key, and loading.
//
//   family   SD1.x: text encoder under cond_stage_model.transformer. (openai CLIP, HF names), context 768
//            SD2.x: text encoder under cond_stage_model.model. (OpenCLIP ViT-H), context 1024; predicts v by
//                   default (the 768-v release; the 512 "base" models predict epsilon: say so with a flag)
//            SDXL:  conditioner.embedders.* (reported; not loadable yet)
//   configs  a JSON config in the metadata ("unet", "vae": CompVis field names) wins; otherwise everything is read
//            from the tensor shapes, with heads from the family (SD1: 8 heads; SD2: 64 channels per head)
//   keys     model.diffusion_model. (UNet), first_stage_model. (VAE), the text encoder, the DDPM schedule buffers;
//            model_ema.* (EMA copies and counters) are known and ignored
#pragma once
#include <algorithm>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/denoisers/prediction.hpp"
#include "latentkit/io/safetensors.hpp"
#include "latentkit/models/autoencoder_kl.hpp"
#include "latentkit/models/checkpoint.hpp"
#include "latentkit/models/clip_text.hpp"
#include "latentkit/models/unet.hpp"
#include "latentkit/nn/parameters.hpp"

LATENTKIT_NAMESPACE_BEGIN

enum class ModelFamily { sd1, sd2, sdxl, unknown };

inline std::string_view family_name(ModelFamily f) noexcept {
  switch (f) {
    case ModelFamily::sd1: return "SD1.x";
    case ModelFamily::sd2: return "SD2.x";
    case ModelFamily::sdxl: return "SDXL";
    default: return "unknown";
  }
}

inline constexpr std::string_view unet_prefix = "model.diffusion_model.";
inline constexpr std::string_view vae_prefix = "first_stage_model.";

/// The DDPM.register_schedule buffers SD1/SD2 files carry (read by nothing but the schedule).
inline constexpr std::string_view schedule_buffer_names[] = {
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"};

/// Keys present in real files that no model reads.
inline bool ignorable_key(std::string_view key) {
  if (key.starts_with("model_ema.")) return true;  // EMA weights of non-pruned files, decay, num_updates
  for (std::string_view s : schedule_buffer_names)
    if (key == s) return true;
  return key == "cond_stage_model.transformer.text_model.embeddings.position_ids" ||  // a buffer (arange)
         key == "cond_stage_model.model.logit_scale";                                 // CLIP's contrastive scale
}

/// What a checkpoint holds.
struct CheckpointInfo {
  ModelFamily family = ModelFamily::unknown;
  bool has_unet = false, has_vae = false;
  std::string text_encoder;  ///< "openai CLIP (HF names)", "OpenCLIP", or empty
  std::optional<UNetConfig> unet;
  std::optional<AutoencoderKLConfig> vae;
  std::string unet_config_source, vae_config_source;  ///< "metadata" or "tensor shapes"
};

namespace checkpoint_detail {

inline Dims shape_or_empty(const SafetensorsFile& file, const std::string& key) {
  return file.contains(key) ? file.info(key).shape : Dims{};
}
inline Dims required_shape(const SafetensorsFile& file, const std::string& key, int rank, const char* what) {
  if (!file.contains(key))
    throw FormatError(file.path().string() + ": missing tensor '" + key + "' (needed to read the " + what + " config)");
  const Dims s = file.info(key).shape;
  if (s.rank() != rank)
    throw FormatError(file.path().string() + ", tensor '" + key + "': shape " + s.str() + "; expected rank " +
                      std::to_string(rank));
  return s;
}
/// The first key starting with `prefix` and ending with `suffix`, or empty.
inline std::string find_key(const SafetensorsFile& file, std::string_view prefix, std::string_view suffix) {
  for (const auto& t : file.tensors())
    if (t.name.starts_with(prefix) && t.name.ends_with(suffix)) return t.name;
  return {};
}

}  // namespace checkpoint_detail

/// SD1 / SD2 / SDXL from the keys (the text encoder is the telling part; the UNet's context width confirms it).
inline ModelFamily detect_family(const SafetensorsFile& file) {
  const auto has_prefix = [&](std::string_view p) {
    return std::any_of(file.tensors().begin(), file.tensors().end(), [&](const TensorInfo& t) { return t.name.starts_with(p); });
  };
  if (has_prefix("conditioner.embedders.")) return ModelFamily::sdxl;
  if (has_prefix(sd2_openclip_prefix)) return ModelFamily::sd2;
  if (has_prefix(sd1_clip_prefix)) return ModelFamily::sd1;
  // A UNet alone: its cross-attention width says which text encoder it was trained with.
  const std::string to_k = checkpoint_detail::find_key(file, unet_prefix, "attn2.to_k.weight");
  if (!to_k.empty()) {
    const Dims s = file.info(to_k).shape;
    if (s.rank() == 2 && s[1] == 768) return ModelFamily::sd1;
    if (s.rank() == 2 && s[1] == 1024) return ModelFamily::sd2;
  }
  return ModelFamily::unknown;
}

/// The UNet config read from the tensor shapes under `prefix` (levels, channels, attention placement, linear or
/// conv projections, context width, transformer depth); heads follow the family.
inline UNetConfig infer_unet_config(const SafetensorsFile& file, const std::string& prefix, ModelFamily family) {
  using namespace checkpoint_detail;
  UNetConfig c = family == ModelFamily::sd2 ? UNetConfig::sd21_v() : UNetConfig::sd15();
  const Dims conv_in = required_shape(file, prefix + "input_blocks.0.0.weight", 4, "UNet");
  c.model_channels = conv_in[0];
  c.in_channels = conv_in[1];
  c.out_channels = required_shape(file, prefix + "out.2.weight", 4, "UNet")[0];
  c.channel_mult.clear();
  c.attention_resolutions.clear();
  const index_t blocks = count_indexed_blocks(file, prefix + "input_blocks.");
  index_t ds = 1, res_in_level = 0;
  c.num_res_blocks = 0;
  for (index_t i = 1; i < blocks; ++i) {
    const std::string b = prefix + "input_blocks." + std::to_string(i) + ".";
    if (file.contains(b + "0.op.weight")) {  // a Downsample closes the level
      if (c.num_res_blocks == 0) c.num_res_blocks = res_in_level;
      res_in_level = 0;
      ds *= 2;
      continue;
    }
    const index_t out = required_shape(file, b + "0.in_layers.2.weight", 4, "UNet")[0];
    if (res_in_level == 0) c.channel_mult.push_back(out / c.model_channels);
    ++res_in_level;
    if (file.contains(b + "1.proj_in.weight") && !c.attends_at(ds)) c.attention_resolutions.push_back(ds);
  }
  if (c.num_res_blocks == 0) c.num_res_blocks = res_in_level;
  if (c.channel_mult.empty()) throw FormatError(file.path().string() + ": no UNet input blocks under '" + prefix + "'");
  const std::string proj_in = find_key(file, prefix, "proj_in.weight");
  if (!proj_in.empty()) {
    c.use_linear_in_transformer = file.info(proj_in).shape.rank() == 2;
    const std::string block = proj_in.substr(0, proj_in.size() - std::string_view("proj_in.weight").size());
    c.transformer_depth = count_indexed_blocks(file, block + "transformer_blocks.");
    c.context_dim = required_shape(file, block + "transformer_blocks.0.attn2.to_k.weight", 2, "UNet")[1];
  } else {
    c.attention_resolutions.clear();
  }
  c.validate(file.path().string());
  return c;
}

/// The VAE config from the tensor shapes under `prefix` (SD's resolution 256 places any attention levels).
inline AutoencoderKLConfig infer_vae_config(const SafetensorsFile& file, const std::string& prefix) {
  using namespace checkpoint_detail;
  AutoencoderKLConfig c = AutoencoderKLConfig::sd();
  const Dims conv_in = required_shape(file, prefix + "encoder.conv_in.weight", 4, "VAE");
  c.ch = conv_in[0];
  c.in_channels = conv_in[1];
  c.out_ch = required_shape(file, prefix + "decoder.conv_out.weight", 4, "VAE")[0];
  c.z_channels = required_shape(file, prefix + "decoder.conv_in.weight", 4, "VAE")[1];
  c.double_z = required_shape(file, prefix + "encoder.conv_out.weight", 4, "VAE")[0] == 2 * c.z_channels;
  c.embed_dim = required_shape(file, prefix + "post_quant_conv.weight", 4, "VAE")[1];
  const index_t levels = count_indexed_blocks(file, prefix + "encoder.down.");
  c.ch_mult.clear();
  c.attn_resolutions.clear();
  for (index_t l = 0; l < levels; ++l) {
    const std::string level = prefix + "encoder.down." + std::to_string(l) + ".";
    c.ch_mult.push_back(required_shape(file, level + "block.0.conv1.weight", 4, "VAE")[0] / c.ch);
    if (l == 0) c.num_res_blocks = count_indexed_blocks(file, level + "block.");
    if (file.contains(level + "attn.0.q.weight")) c.attn_resolutions.push_back(c.resolution >> l);
  }
  c.validate(file.path().string());
  return c;
}

/// Family, components and configs of a checkpoint (metadata configs first, then the shapes).
inline CheckpointInfo inspect_checkpoint(const SafetensorsFile& file) {
  using namespace checkpoint_detail;
  CheckpointInfo info;
  info.family = detect_family(file);
  const std::string where = file.path().string(), up(unet_prefix), vp(vae_prefix);
  info.has_unet = file.contains(up + "input_blocks.0.0.weight");
  info.has_vae = file.contains(vp + "encoder.conv_in.weight") || file.contains(vp + "decoder.conv_in.weight");
  if (file.contains(std::string(sd1_clip_prefix) + std::string(sd1_clip_layout.token_embedding) + "weight"))
    info.text_encoder = "openai CLIP (HF names)";
  else if (file.contains(std::string(sd2_openclip_prefix) + std::string(openclip_layout.token_embedding) + "weight"))
    info.text_encoder = "OpenCLIP";
  if (info.family == ModelFamily::sdxl) return info;
  if (info.has_unet) {
    if (const auto j = metadata_config(file, "unet")) {
      const UNetConfig base = info.family == ModelFamily::sd2 ? UNetConfig::sd21_v() : UNetConfig::sd15();
      info.unet = base.with_json(*j, where + " (metadata 'unet')");
      info.unet_config_source = "metadata";
    } else {
      info.unet = infer_unet_config(file, up, info.family);
      info.unet_config_source = "tensor shapes";
    }
  }
  if (info.has_vae) {
    if (const auto j = metadata_config(file, "vae")) {
      info.vae = AutoencoderKLConfig::sd().with_json(*j, where + " (metadata 'vae')");
      info.vae_config_source = "metadata";
    } else {
      info.vae = infer_vae_config(file, vp);
      info.vae_config_source = "tensor shapes";
    }
    if (const auto it = file.metadata().find("scale_factor"); it != file.metadata().end()) {
      try {
        std::size_t used = 0;
        info.vae->scale_factor = std::stod(it->second, &used);
        if (used != it->second.size()) throw std::invalid_argument("trailing characters");
      } catch (const std::exception&) {
        throw FormatError(where + ": metadata 'scale_factor' is not a number: '" + it->second + "'");
      }
      info.vae->validate(where);
    }
  }
  return info;
}

/// Checks every key of a single-file checkpoint against the models its configs describe.
inline KeyReport checkpoint_key_report(const SafetensorsFile& file, const CheckpointInfo& info) {
  KeyReport report;
  report.file = file.path().string();
  std::vector<std::string> claimed;
  if (info.unet) {
    UNet unet(*info.unet);
    check_parameters(unet, file, std::string(unet_prefix), report, &claimed);
  }
  if (info.vae) {
    AutoencoderKL vae(*info.vae);
    check_parameters(vae, file, std::string(vae_prefix), report, &claimed);
  }
  if (!info.text_encoder.empty()) {
    const bool sd1 = info.text_encoder.starts_with("openai");
    const std::string prefix(sd1 ? sd1_clip_prefix : sd2_openclip_prefix);
    const ClipTextLayout& layout = sd1 ? sd1_clip_layout : openclip_layout;
    ClipTextEncoder encoder(infer_clip_text_config(file, prefix, layout, index_t{1}), layout);  // heads: no keys
    check_parameters(encoder, file, prefix, report, &claimed);
  }
  const std::set<std::string> known(claimed.begin(), claimed.end());
  for (const auto& t : file.tensors())
    if (!known.contains(t.name) && !ignorable_key(t.name)) report.unexpected.push_back(t.name);
  return report;
}

struct LoadOptions {
  WeightOptions weights;                   ///< compute weight type (f32, bf16 packed)
  std::optional<Prediction> prediction;    ///< overrides the family default (SD2: v)
};

/// What the UNet of `info` predicts: the option, else SD2's v (768-v), else epsilon.
inline Prediction default_prediction(const CheckpointInfo& info, const LoadOptions& options = {}) {
  if (options.prediction) return *options.prediction;
  return info.family == ModelFamily::sd2 ? Prediction::v_prediction : Prediction::epsilon;
}

/// The UNet of a single-file checkpoint, every problem with its keys reported at once.
inline UNet load_unet(const SafetensorsFile& file, const LoadOptions& options = {}) {
  const CheckpointInfo info = inspect_checkpoint(file);
  if (info.family == ModelFamily::sdxl)
    throw FormatError(file.path().string() + ": an SDXL checkpoint; latentkit loads SD1.x and SD2.x UNets so far");
  if (!info.unet) throw FormatError(file.path().string() + ": no UNet (no '" + std::string(unet_prefix) + "*' keys)");
  UNetConfig config = *info.unet;
  config.prediction = default_prediction(info, options);
  UNet unet(config);
  load_parameters(unet, file, std::string(unet_prefix), options.weights);
  return unet;
}

/// The VAE of a single-file checkpoint (config and scale factor from its metadata, else the shapes and 0.18215).
inline AutoencoderKL load_vae(const SafetensorsFile& file, const LoadOptions& options = {}) {
  const CheckpointInfo info = inspect_checkpoint(file);
  if (!info.vae) throw FormatError(file.path().string() + ": no VAE (no '" + std::string(vae_prefix) + "*' keys)");
  AutoencoderKL vae(*info.vae);
  load_parameters(vae, file, std::string(vae_prefix), options.weights);
  return vae;
}

LATENTKIT_NAMESPACE_END
