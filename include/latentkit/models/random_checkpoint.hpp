// A full-size single-file SD1.x / SD2.x checkpoint with random weights, in the layout real files have (CompVis
// UNet and VAE names, the text encoder under cond_stage_model.*, the schedule buffers): what the end-to-end
// benchmark loads when no real model may be downloaded. The weights are random_weights.hpp's (scale 1 / fan_in),
// stored as `storage` (F16 like the released fp16 files, BF16 or F32).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/convert.hpp"
#include "latentkit/core/dtype.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/io/safetensors_writer.hpp"
#include "latentkit/models/autoencoder_kl.hpp"
#include "latentkit/models/clip_text.hpp"
#include "latentkit/models/random_weights.hpp"
#include "latentkit/models/sd_checkpoint.hpp"
#include "latentkit/models/unet.hpp"
#include "latentkit/schedules/training.hpp"

LATENTKIT_NAMESPACE_BEGIN

namespace random_checkpoint_detail {

/// Adds every parameter of `model` under `prefix`, converted to `storage`.
template <class Model>
void add_parameters(SafetensorsWriter& writer, Model& model, const std::string& prefix, DType storage) {
  model.visit_parameters(
      [&](const std::string& name, TensorView<float> p) {
        const Tensor<float> values = contiguous(TensorView<const float>(p));
        const auto n = static_cast<std::size_t>(values.numel());
        if (storage == DType::f16) {
          Tensor<f16> out(values.shape());
          convert(values.data(), out.data(), n);
          writer.add(prefix + name, out);
        } else if (storage == DType::bf16) {
          Tensor<bf16> out(values.shape());
          convert(values.data(), out.data(), n);
          writer.add(prefix + name, out);
        } else {
          writer.add(prefix + name, values);
        }
      },
      std::string());
}

}  // namespace random_checkpoint_detail

/// Writes the checkpoint (atomically, via SafetensorsWriter). `family` is sd1 (CLIP ViT-L/14, epsilon) or sd2
/// (OpenCLIP ViT-H/14, the 768-v UNet); `storage` F16, BF16 or F32.
inline void write_random_checkpoint(const std::filesystem::path& path, ModelFamily family, DType storage = DType::f16,
                                    std::uint64_t seed = 1515) {
  if (family != ModelFamily::sd1 && family != ModelFamily::sd2)
    throw Error("write_random_checkpoint: family must be sd1 or sd2");
  if (storage != DType::f16 && storage != DType::bf16 && storage != DType::f32)
    throw Error("write_random_checkpoint: storage must be F16, BF16 or F32");
  using random_checkpoint_detail::add_parameters;
  SafetensorsWriter writer;
  const bool sd2 = family == ModelFamily::sd2;
  {
    UNet unet(sd2 ? UNetConfig::sd21_v() : UNetConfig::sd15());
    fill_random_parameters(unet, seed);
    add_parameters(writer, unet, std::string(unet_prefix), storage);
  }
  {
    AutoencoderKL vae(AutoencoderKLConfig{});
    fill_random_parameters(vae, seed + 1);
    add_parameters(writer, vae, std::string(vae_prefix), storage);
  }
  {
    ClipTextConfig config;  // ViT-L/14
    if (sd2) config.width = 1024, config.layers = 24, config.heads = 16, config.mlp_width = 4096, config.activation = Activation::gelu;
    ClipTextEncoder text(config, sd2 ? openclip_layout : sd1_clip_layout);
    fill_random_parameters(text, seed + 2);
    add_parameters(writer, text, std::string(sd2 ? sd2_openclip_prefix : sd1_clip_prefix), storage);
    if (!sd2) {
      Tensor<std::int64_t> positions({1, config.context_length});
      for (index_t i = 0; i < config.context_length; ++i) positions.data()[i] = i;
      writer.add(std::string(sd1_clip_prefix) + "text_model.embeddings.position_ids", positions);
    }
  }
  // The training schedule buffer the samplers read (float64 cumprod stored as float32, as register_schedule).
  const std::vector<double> ac = alphas_cumprod<double>(TrainingSchedule{});
  Tensor<float> buffer({static_cast<index_t>(ac.size())});
  for (std::size_t i = 0; i < ac.size(); ++i) buffer.data()[i] = static_cast<float>(ac[i]);
  writer.add("alphas_cumprod", buffer);
  writer.set_metadata("generator", "latentkit write_random_checkpoint (random weights, for benchmarks)");
  writer.write(path);
}

LATENTKIT_NAMESPACE_END
