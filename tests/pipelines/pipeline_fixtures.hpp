// The recorded pipeline runs (models/txt2img_sd1_tiny*.safetensors, models/img2img_sd1_tiny*.safetensors): every
// run file found, its settings read from its metadata, and the model it names, loaded once per weights file.
#pragma once
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/io/safetensors.hpp"
#include "latentkit/pipelines/generation.hpp"
#include "support/compare.hpp"
#include "support/fixtures.hpp"

namespace pipeline_test {

using namespace latentkit;
using namespace latentkit_test;

/// Every fixture file models/<stem>*.safetensors, sorted (the public set has one of each; other sets have more).
inline std::vector<std::filesystem::path> runs(const std::string& stem) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(latentkit_test::fixtures_dir() / "models")) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(stem) && e.path().extension() == ".safetensors") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) throw std::runtime_error("no fixture models/" + stem + "*.safetensors");
  return out;
}

inline std::filesystem::path tokenizer_dir() { return latentkit_test::fixture("clip_tokenizer"); }

/// The model a run names in its "weights" metadata, loaded once per file and weight type.
inline const StableDiffusionModel& model_of(const SafetensorsFile& run) {
  static std::map<std::string, std::unique_ptr<StableDiffusionModel>> cache;
  const std::filesystem::path weights = run.path().parent_path() / run.metadata().at("weights");
  auto& slot = cache[weights.string()];
  if (!slot) {
    ModelLoadOptions options;
    options.tokenizer = tokenizer_dir();
    slot = std::make_unique<StableDiffusionModel>(load_stable_diffusion(weights, options));
  }
  return *slot;
}

inline nlohmann::json pipeline_settings(const SafetensorsFile& run) { return nlohmann::json::parse(run.metadata().at("pipeline")); }

/// The options of a recorded run: prompt, negative prompt, CFG scale, seed from the metadata, steps from the
/// recorded step tensors' settings, size from the recorded image; DPM++ 2M with Karras sigmas as the run used.
inline GenerationOptions options_of(const SafetensorsFile& run, bool img2img) {
  const nlohmann::json p = pipeline_settings(run);
  GenerationOptions o;
  o.prompt = p.at("prompt").get<std::string>();
  o.negative_prompt = p.at("negative_prompt").get<std::string>();
  o.cfg_scale = p.at("cfg_scale").get<double>();
  const nlohmann::json& settings = img2img ? p.at("img2img") : p;
  o.steps = settings.at("steps").get<int>();
  o.seed = settings.at("seed").get<std::uint64_t>();
  if (img2img) o.strength = settings.at("strength").get<double>();
  const Dims image = run.info("image_raw").shape;
  o.height = static_cast<int>(image[2]);
  o.width = static_cast<int>(image[3]);
  o.sampler = "dpmpp_2m";
  o.schedule = "karras";
  return o;
}

/// 1e-4 * max(1, max |ref|): the fixtures README's pipeline tolerance.
inline double bound(TensorView<const float> ref) { return 1e-4 * std::max(1.0, max_abs(ref)); }

/// Slice i of a [N, ...] tensor, as a tensor of the trailing shape.
inline Tensor<float> item(const Tensor<float>& t, index_t i) {
  Dims shape;
  for (index_t d = 1; d < t.rank(); ++d) shape.push_back(t.size(static_cast<int>(d)));
  return contiguous(t.view().slice(0, i, i + 1).reshape(shape));
}

inline Tensor<float> from_latent(const xt::xarray<float>& x) { return latent_to_tensor(x); }

/// Largest per-channel difference between two 8-bit images of the same size (-1 when the sizes differ).
inline int max_pixel_diff(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height || a.channels != b.channels || a.pixels.size() != b.pixels.size()) return -1;
  int worst = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return worst;
}

/// The recorded 8-bit HWC image of a run as an Image.
inline Image recorded_image(const SafetensorsFile& run, const std::string& key = "image_u8_trunc_hwc") {
  const Tensor<std::uint8_t> t = run.load<std::uint8_t>(key);
  Image image;
  image.height = static_cast<int>(t.size(0)), image.width = static_cast<int>(t.size(1)), image.channels = static_cast<int>(t.size(2));
  image.pixels.assign(t.data(), t.data() + t.numel());
  return image;
}

}  // namespace pipeline_test
