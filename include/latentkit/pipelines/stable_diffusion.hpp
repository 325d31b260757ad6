// A Stable Diffusion model as the pipelines use it: the tokenizer, the text encoder, the UNet (eps or v), the VAE
// and the training schedule, loaded together from one single-file checkpoint; optionally a TAESD decoder for
// previews and fast decodes.
//
//   StableDiffusionModel sd = load_stable_diffusion("v1-5-pruned-emaonly.safetensors");
//   GenerationResult r = txt2img(sd, {.prompt = "a photograph of an astronaut riding a horse"});
#pragma once
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/io/safetensors.hpp"
#include "latentkit/models/autoencoder_kl.hpp"
#include "latentkit/models/clip_text.hpp"
#include "latentkit/models/sd_checkpoint.hpp"
#include "latentkit/models/taesd.hpp"
#include "latentkit/models/unet.hpp"
#include "latentkit/schedules/discrete.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"
#include "latentkit/tokenizers/clip_vocabulary.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct ModelLoadOptions {
  /// Compute weight type of the UNet and VAE, prediction override. The float32 load targets are freed once packed:
  /// a pipeline never reads them again, and it halves the resident weights.
  LoadOptions weights{.weights = {.release_unpacked = true}};
  std::optional<std::filesystem::path> tokenizer;  ///< CLIP vocabulary; default: beside the model, then the usual places
  std::optional<std::filesystem::path> taesd;      ///< a TAESD decoder (.safetensors) for previews or --taesd decodes
};

struct StableDiffusionModel {
  std::filesystem::path path;
  CheckpointInfo info;
  ClipTokenizer tokenizer;
  ClipTextEncoder text_encoder;
  UNet unet;
  AutoencoderKL vae;
  DiscreteSchedule<float> schedule;  ///< sigma table from the file's alphas_cumprod (float32, as A1111 samples)
  std::optional<TaesdNetwork> taesd;

  std::string name() const { return path.stem().string(); }
  Prediction prediction() const noexcept { return unet.config().prediction; }
};

/// Where the pipelines look for a CLIP vocabulary when none is given: beside the model (the model's folder, or the
/// diffusers folder itself, and `tokenizer/` / `clip_tokenizer/` there), then clip_vocabulary_search_path(). IoError lists every place tried.
inline std::filesystem::path find_tokenizer_for(const std::filesystem::path& model) {
  namespace fs = std::filesystem;
  std::vector<fs::path> places;
  if (fs::is_directory(model)) places.push_back(model);  // a diffusers folder holds tokenizer/
  places.push_back(model.parent_path().empty() ? fs::path(".") : model.parent_path());
  for (const auto& p : clip_vocabulary_search_path()) places.push_back(p);
  std::string tried;
  for (const auto& p : places) {
    for (const fs::path& dir : {p, p / "tokenizer", p / "clip_tokenizer"}) {
      tried += "\n  " + dir.string();
      if (fs::is_regular_file(dir) && dir == p) return dir;
      if (!fs::is_directory(dir)) continue;
      if (fs::is_regular_file(dir / "bpe_simple_vocab_16e6.txt.gz")) return dir / "bpe_simple_vocab_16e6.txt.gz";
      if (fs::is_regular_file(dir / "vocab.json") && fs::is_regular_file(dir / "merges.txt")) return dir / "vocab.json";
    }
  }
  throw IoError("no CLIP tokenizer vocabulary found for " + model.string() + "; looked in:" + tried +
                "\nGive one with --tokenizer (openai's bpe_simple_vocab_16e6.txt.gz or a Hugging Face tokenizer/ folder "
                "with vocab.json + merges.txt), set LATENTKIT_TOKENIZER, or put it beside the model");
}

/// The sigma table of a checkpoint: its `alphas_cumprod` buffer when present (real SD files carry it), else the
/// CompVis SD schedule (linear 0.00085..0.012, 1000 steps) computed as register_schedule does.
inline DiscreteSchedule<float> checkpoint_schedule(const SafetensorsFile& file) {
  if (!file.contains("alphas_cumprod")) return DiscreteSchedule<float>::compvis();
  const Tensor<float> ac = file.load<float>("alphas_cumprod");
  if (ac.rank() != 1 || ac.numel() < 2)
    throw FormatError(file.path().string() + ": 'alphas_cumprod' has shape " + ac.shape().str() +
                      "; expected [timesteps] with at least 2 entries");
  return DiscreteSchedule<float>::from_alphas_cumprod(std::span<const float>(ac.data(), static_cast<std::size_t>(ac.numel())));
}

/// Loads every component of a single-file SD1.x / SD2.x checkpoint. Every problem with the file's keys is
/// reported by name (see load_unet / load_vae); an SDXL file or one without a text encoder is refused clearly.
inline StableDiffusionModel load_stable_diffusion(const std::filesystem::path& path, const ModelLoadOptions& options = {}) {
  if (!std::filesystem::exists(path)) throw IoError(path.string() + ": no such file");
  if (std::filesystem::is_directory(path))
    throw FormatError(path.string() + ": a folder; txt2img/img2img load single-file .safetensors checkpoints");
  const SafetensorsFile file(path);
  CheckpointInfo info = inspect_checkpoint(file);
  if (info.family == ModelFamily::unknown)
    throw FormatError(path.string() + ": not a Stable Diffusion checkpoint (no SD1/SD2 UNet, VAE and text encoder keys)");
  ClipTextEncoder text = load_checkpoint_text_encoder(file);
  const auto flavor = text.layout().padding == ClipPadding::zero ? ClipFlavor::open_clip : ClipFlavor::openai;
  const std::filesystem::path vocab = options.tokenizer ? *options.tokenizer : find_tokenizer_for(path);
  std::optional<TaesdNetwork> taesd;
  if (options.taesd) taesd = load_taesd(SafetensorsFile(*options.taesd), "", options.weights.weights);
  return StableDiffusionModel{path,
                              std::move(info),
                              ClipTokenizer::load(vocab, flavor),
                              std::move(text),
                              load_unet(file, options.weights),
                              load_vae(file, options.weights),
                              checkpoint_schedule(file),
                              std::move(taesd)};
}

LATENTKIT_NAMESPACE_END
