// Single-file checkpoints: family detection, configs from metadata or from the shapes, the key report (missing,
// unexpected, mis-shaped, ignorable), loading, and every key of the real SD1.5 / SD2.1 / SDXL layouts (manifests)
// at full shape in a sparse file.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "latentkit/core/convert.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/io/safetensors_writer.hpp"
#include "latentkit/models/sd_checkpoint.hpp"
#include "network_fixtures.hpp"

using namespace latentkit;
using namespace network_test;
namespace fs = std::filesystem;

namespace {

/// A safetensors file with `tensors` (name -> {dtype, shape}) whose data are zeros: the header is written and the file
/// extended to its full size without writing the data (a sparse file), so full-size layouts cost no disk or time.
void write_sparse_checkpoint(const fs::path& path, const std::vector<std::pair<std::string, std::pair<std::string, Dims>>>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, spec] : tensors) {
    const auto& [dtype, shape] = spec;
    const std::uint64_t elem = dtype == "I64" ? 8 : dtype == "F32" ? 4 : 2;
    std::vector<index_t> dims(shape.begin(), shape.end());
    const std::uint64_t bytes = elem * static_cast<std::uint64_t>(shape.numel());
    header[name] = {{"dtype", dtype}, {"shape", dims}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  {
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
    out << text;
  }
  fs::resize_file(path, 8 + text.size() + offset);
}

struct Manifest {
  std::string file;
  ModelFamily family;
};
const std::vector<Manifest>& manifests() {
  static const std::vector<Manifest> m{{"models/manifest_sd15.json", ModelFamily::sd1},
                                       {"models/manifest_sd21_v.json", ModelFamily::sd2}};
  return m;
}

/// Every tensor of a manifest as (name, {safetensors dtype, shape}): float parameters as F16, integers as I64.
std::vector<std::pair<std::string, std::pair<std::string, Dims>>> manifest_tensors(const nlohmann::json& manifest) {
  std::vector<std::pair<std::string, std::pair<std::string, Dims>>> out;
  for (const auto& [name, t] : manifest.at("tensors").items()) {
    Dims shape;
    for (const auto& d : t.at("shape")) shape.push_back(d.get<index_t>());
    const std::string dtype = t.at("dtype").get<std::string>().starts_with("int") ? "I64" : "F16";
    out.push_back({name, {dtype, shape}});
  }
  return out;
}

/// The fields of two UNet configs that fix the architecture (heads aside).
void check_same_unet(const UNetConfig& a, const UNetConfig& b) {
  CHECK(a.in_channels == b.in_channels);
  CHECK(a.out_channels == b.out_channels);
  CHECK(a.model_channels == b.model_channels);
  CHECK(a.num_res_blocks == b.num_res_blocks);
  CHECK(a.channel_mult == b.channel_mult);
  auto ra = a.attention_resolutions, rb = b.attention_resolutions;
  std::sort(ra.begin(), ra.end());
  std::sort(rb.begin(), rb.end());
  CHECK(ra == rb);
  CHECK(a.transformer_depth == b.transformer_depth);
  CHECK(a.context_dim == b.context_dim);
  CHECK(a.use_linear_in_transformer == b.use_linear_in_transformer);
}
void check_same_vae(const AutoencoderKLConfig& a, const AutoencoderKLConfig& b) {
  CHECK(a.ch == b.ch);
  CHECK(a.ch_mult == b.ch_mult);
  CHECK(a.num_res_blocks == b.num_res_blocks);
  CHECK(a.z_channels == b.z_channels);
  CHECK(a.embed_dim == b.embed_dim);
  CHECK(a.in_channels == b.in_channels);
  CHECK(a.out_ch == b.out_ch);
  CHECK(a.double_z == b.double_z);
}

index_t float_param_count(const nlohmann::json& manifest, const std::string& component_prefix) {
  index_t n = 0;
  for (const auto& [name, t] : manifest.at("tensors").items())
    if (name.starts_with(component_prefix) && t.at("kind") == "param") ++n;
  return n;
}

}  // namespace

TEST_CASE("Checkpoint: every key of the SD1.5 and SD2.1 single-file layouts maps onto the models at full shape") {
  const latentkit_test::TempDir dir("ckpt");
  for (const auto& m : manifests()) {
    DYNAMIC_SECTION(m.file) {
      const auto manifest = nlohmann::json::parse(latentkit_test::read_text(latentkit_test::fixture(m.file)));
      const fs::path path = dir.path / "full.safetensors";
      write_sparse_checkpoint(path, manifest_tensors(manifest));
      const SafetensorsFile file(path);
      const CheckpointInfo info = inspect_checkpoint(file);
      CHECK(info.family == m.family);
      REQUIRE(info.unet);
      REQUIRE(info.vae);
      CHECK(info.unet_config_source == "tensor shapes");
      const auto& configs = manifest.at("configs");
      check_same_unet(*info.unet, UNetConfig::sd15().with_json(configs.at("unet"), m.file));
      check_same_vae(*info.vae, AutoencoderKLConfig::sd().with_json(configs.at("vae"), m.file));
      // The family presets are the released configs.
      check_same_unet(m.family == ModelFamily::sd2 ? UNetConfig::sd21_v() : UNetConfig::sd15(), *info.unet);
      CHECK(info.unet->heads_at(640) == UNetConfig::sd15().with_json(configs.at("unet"), m.file).heads_at(640));
      CHECK(default_prediction(info) == (m.family == ModelFamily::sd2 ? Prediction::v_prediction : Prediction::epsilon));

      const KeyReport report = checkpoint_key_report(file, info);
      INFO(report.str());
      CHECK(report.ok());
      index_t params = 0;
      for (const auto& [name, t] : manifest.at("tensors").items())
        if (t.at("kind") == "param" && !ignorable_key(name)) ++params;
      CHECK(report.matched == params);
      CHECK(float_param_count(manifest, std::string(unet_prefix)) ==
            static_cast<index_t>(parameter_names(*std::make_unique<UNet>(*info.unet)).size()));

      // The VAE loads from the F16 file (widened while loading).
      const AutoencoderKL vae = load_vae(file);
      CHECK(vae.scale_factor() == Approx(configs.at("scale_factor").get<double>()));
    }
  }
}

TEST_CASE("Checkpoint: missing, mis-shaped and unexpected keys are reported by name; model_ema.* is ignored") {
  const latentkit_test::TempDir dir("ckpt");
  const auto manifest = nlohmann::json::parse(latentkit_test::read_text(latentkit_test::fixture(manifests()[0].file)));
  auto tensors = manifest_tensors(manifest);
  const std::string dropped = std::string(unet_prefix) + "middle_block.1.proj_out.weight";
  const std::string reshaped = std::string(vae_prefix) + "decoder.conv_out.bias";
  std::erase_if(tensors, [&](const auto& t) { return t.first == dropped; });
  for (auto& t : tensors)
    if (t.first == reshaped) t.second.second = Dims{4};
  tensors.push_back({std::string(unet_prefix) + "extra.weight", {"F16", Dims{3}}});
  tensors.push_back({"model_ema.decay", {"F32", Dims{}}});
  tensors.push_back({"model_ema.diffusion_modelinput_blocks00weight", {"F16", Dims{320, 4, 3, 3}}});
  const fs::path path = dir.path / "broken.safetensors";
  write_sparse_checkpoint(path, tensors);
  const SafetensorsFile file(path);
  const KeyReport report = checkpoint_key_report(file, inspect_checkpoint(file));
  REQUIRE(report.missing.size() == 1);
  CHECK(report.missing[0].key == dropped);
  REQUIRE(report.mis_shaped.size() == 1);
  CHECK(report.mis_shaped[0].key == reshaped);
  CHECK(report.mis_shaped[0].expected == Dims{3});
  REQUIRE(report.unexpected.size() == 1);
  CHECK(report.unexpected[0] == std::string(unet_prefix) + "extra.weight");
  const std::string text = report.str();
  CHECK_THAT(text, Catch::Contains(path.string()) && Catch::Contains(dropped) && Catch::Contains("expected [3]"));
  REQUIRE_THROWS_WITH(load_vae(file), Catch::Contains(reshaped) && Catch::Contains(path.string()));
}

TEST_CASE("Checkpoint: SDXL is recognised and refused with a clear message") {
  const latentkit_test::TempDir dir("ckpt");
  const auto manifest = nlohmann::json::parse(latentkit_test::read_text(latentkit_test::fixture("models/manifest_sdxl_base.json")));
  const fs::path path = dir.path / "sdxl.safetensors";
  write_sparse_checkpoint(path, manifest_tensors(manifest));
  const SafetensorsFile file(path);
  CHECK(inspect_checkpoint(file).family == ModelFamily::sdxl);
  REQUIRE_THROWS_WITH(load_unet(file), Catch::Contains("SDXL"));
}

TEST_CASE("Checkpoint: the tiny checkpoints load from their metadata configs and give the reference outputs") {
  struct Case {
    const char* io;
    const char* output;
    ModelFamily family;
  };
  for (const Case c : {Case{"models/unet_sd1_tiny_io.safetensors", "eps", ModelFamily::sd1},
                       Case{"models/unet_sd2_tiny_io.safetensors", "out", ModelFamily::sd2}}) {
    DYNAMIC_SECTION(c.io) {
      const SafetensorsFile io(latentkit_test::fixture(c.io));
      const SafetensorsFile file(weights_of(io).file);
      const CheckpointInfo info = inspect_checkpoint(file);
      CHECK(info.family == c.family);
      CHECK(info.unet_config_source == "metadata");
      const KeyReport report = checkpoint_key_report(file, info);
      INFO(report.str());
      CHECK(report.ok());
      const UNet unet = load_unet(file);
      CHECK(unet.config().prediction == (c.family == ModelFamily::sd2 ? Prediction::v_prediction : Prediction::epsilon));
      const Tensor<float> t = io.load<float>("timesteps");
      const Tensor<float> got = unet.forward(io.load<float>("x").view(), std::span<const float>(t.data(), t.numel()),
                                             io.load<float>("context").view());
      CHECK(max_abs_diff(got.view(), io.load<float>(c.output).view()) <= 1e-4);
      LoadOptions eps;
      eps.prediction = Prediction::epsilon;
      CHECK(load_unet(file, eps).config().prediction == Prediction::epsilon);
    }
  }
}

TEST_CASE("Checkpoint: without metadata the configs come from the shapes and match the metadata ones") {
  const latentkit_test::TempDir dir("ckpt");
  const SafetensorsFile io(latentkit_test::fixture("models/vae_tiny_io.safetensors"));
  const SafetensorsFile original(weights_of(io).file);
  SafetensorsWriter writer;
  for (const auto& t : original.tensors()) writer.add_bytes(t.name, t.dtype, t.shape, original.bytes(t.name));
  const fs::path path = dir.path / "bare.safetensors";
  writer.write(path);
  const SafetensorsFile bare(path);
  const CheckpointInfo with = inspect_checkpoint(original), without = inspect_checkpoint(bare);
  CHECK(without.unet_config_source == "tensor shapes");
  REQUIRE(with.unet);
  REQUIRE(without.unet);
  check_same_unet(*with.unet, *without.unet);
  REQUIRE(without.vae);
  check_same_vae(*with.vae, *without.vae);
  CHECK(without.vae->scale_factor == Approx(0.18215));
  CHECK(checkpoint_key_report(bare, without).ok());
  // The VAE needs no heads: loading from the shapes gives the reference decode.
  const AutoencoderKL vae = load_vae(bare);
  CHECK(max_abs_diff(vae.decode(io.load<float>("mean").view()).view(), io.load<float>("decoded_from_mean").view()) <= 1e-4);
}

TEST_CASE("Checkpoint: bad metadata configs are named") {
  const latentkit_test::TempDir dir("ckpt");
  const SafetensorsFile original(latentkit_test::fixture("models/sd1_tiny_pipeline.safetensors"));
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"unet", "{\"model_channels\": \"wide\"}"}, {"vae", "[1, 2]"}, {"scale_factor", "0.18x"}}) {
    SafetensorsWriter writer;
    for (const auto& t : original.tensors()) writer.add_bytes(t.name, t.dtype, t.shape, original.bytes(t.name));
    auto metadata = original.metadata();
    metadata[key] = value;
    for (const auto& [k, v] : metadata) writer.set_metadata(k, v);
    const fs::path path = dir.path / ("bad_" + key + ".safetensors");
    writer.write(path);
    REQUIRE_THROWS_WITH(inspect_checkpoint(SafetensorsFile(path)), Catch::Contains(path.string()) && Catch::Contains(key));
  }
}

TEST_CASE("Checkpoint: F16 and BF16 files load, giving the f32 model with its weights rounded to that type") {
  const latentkit_test::TempDir dir("ckpt");
  const SafetensorsFile io(latentkit_test::fixture("models/unet_sd1_tiny_io.safetensors"));
  const SafetensorsFile original(weights_of(io).file);
  const Tensor<float> x = io.load<float>("x"), context = io.load<float>("context"), t = io.load<float>("timesteps");
  const std::span<const float> steps(t.data(), static_cast<std::size_t>(t.numel()));
  for (const DType dtype : {DType::f16, DType::bf16}) {
    DYNAMIC_SECTION(dtype_name(dtype)) {
      SafetensorsWriter writer;
      for (const auto& [k, v] : original.metadata()) writer.set_metadata(k, v);
      for (const auto& info : original.tensors()) {
        if (info.dtype != DType::f32) {
          writer.add_bytes(info.name, info.dtype, info.shape, original.bytes(info.name));
          continue;
        }
        const Tensor<float> value = original.load<float>(info.name);
        const auto n = static_cast<std::size_t>(value.numel());
        if (dtype == DType::f16) {
          Tensor<f16> h(value.shape());
          convert(value.data(), h.data(), n);
          writer.add(info.name, h);
        } else {
          Tensor<bf16> h(value.shape());
          convert(value.data(), h.data(), n);
          writer.add(info.name, h);
        }
      }
      const fs::path path = dir.path / "half.safetensors";
      writer.write(path);
      const SafetensorsFile half(path);
      const UNet from_half = load_unet(half);
      // The f32 model with every parameter rounded through the same type.
      UNet rounded = load_unet(original);
      rounded.visit_parameters(
          [&](const std::string& key, TensorView<float> target) { copy(half.load<float>(key).view(), target); },
          std::string(unet_prefix));
      rounded.prepare();
      const Tensor<float> a = from_half.forward(x.view(), steps, context.view());
      const Tensor<float> b = rounded.forward(x.view(), steps, context.view());
      CHECK(bit_identical(a, b));
      // Half-precision weights move the output by about their rounding, far from the f32 result's 1e-4.
      const double err = max_abs_diff(a.view(), io.load<float>("eps").view());
      INFO(dtype_name(dtype) << " weights: max |out - reference| = " << err);
      CHECK(err > 0.0);
      CHECK(err < 0.1 * max_abs(io.load<float>("eps").view()));
    }
  }
}
