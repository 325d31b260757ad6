// CLIP text encoders: parity with the SD1 (openai CLIP) and SD2 (open_clip) reference outputs for every prompt row
// of the fixtures, token rows, pooled/projected outputs, diffusers folders and loading errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "clip_fixtures.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/io/safetensors_writer.hpp"
#include "latentkit/models/clip_text.hpp"

using namespace latentkit;
using namespace clip_test;

namespace {

/// Copies the tensors of `file` under `prefix` to a writer, renamed by `rename` (empty result = dropped).
template <class Rename>
void copy_tensors(const SafetensorsFile& file, const std::string& prefix, SafetensorsWriter& out, Rename&& rename) {
  for (const auto& t : file.tensors()) {
    if (!t.name.starts_with(prefix)) continue;
    const std::string name = rename(t.name.substr(prefix.size()));
    if (!name.empty()) out.add_bytes(name, t.dtype, t.shape, file.bytes(t.name));
  }
}

std::string encoder_prefix(const EncoderCase& c) {
  return std::string(c.layout == &sd1_clip_layout ? sd1_clip_prefix : sd2_openclip_prefix);
}

/// open_clip key (relative to cond_stage_model.model.) -> HF CLIPTextModel key; packed q|k|v rows are split.
void add_as_hf(const SafetensorsFile& file, const std::string& prefix, SafetensorsWriter& out, index_t keep_layers) {
  const std::vector<std::pair<std::string, std::string>> renames{
      {"ln_1.", "layer_norm1."}, {"ln_2.", "layer_norm2."}, {"attn.out_proj.", "self_attn.out_proj."},
      {"mlp.c_fc.", "mlp.fc1."}, {"mlp.c_proj.", "mlp.fc2."}};
  for (const auto& t : file.tensors()) {
    if (!t.name.starts_with(prefix)) continue;
    std::string key = t.name.substr(prefix.size());
    if (key == "token_embedding.weight") {
      key = "text_model.embeddings.token_embedding.weight";
    } else if (key == "positional_embedding") {
      key = "text_model.embeddings.position_embedding.weight";
    } else if (key.starts_with("ln_final.")) {
      key = "text_model.final_layer_norm." + key.substr(9);
    } else if (key.starts_with("transformer.resblocks.")) {
      const std::string rest = key.substr(22);
      const std::size_t dot = rest.find('.');
      const index_t layer = std::stoll(rest.substr(0, dot));
      if (layer >= keep_layers) continue;
      std::string local = rest.substr(dot + 1);
      const std::string base = "text_model.encoder.layers." + std::to_string(layer) + ".";
      if (local.starts_with("attn.in_proj_")) {
        const Tensor<float> packed = file.load<float>(t.name);
        const index_t w = packed.size(0) / 3;
        const char* names[] = {"q_proj", "k_proj", "v_proj"};
        for (index_t p = 0; p < 3; ++p)
          out.add(base + "self_attn." + names[p] + (local == "attn.in_proj_weight" ? ".weight" : ".bias"),
                  Tensor<float>::copy_of(packed.view().slice(0, p * w, (p + 1) * w)));
        continue;
      }
      for (const auto& [from, to] : renames)
        if (local.starts_with(from)) local = to + local.substr(from.size());
      key = base + local;
    } else if (key == "text_projection") {
      out.add("text_projection.weight", Tensor<float>::copy_of(file.load<float>(t.name).view().transpose()));
      continue;
    } else {
      continue;  // logit_scale
    }
    out.add_bytes(key, t.dtype, t.shape, file.bytes(t.name));
  }
}

void write_json(const std::filesystem::path& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump();
}

}  // namespace

TEST_CASE("The token rows of the encoder fixtures are what our tokenizer makes of their prompts") {
  for (const auto& c : encoder_cases()) {
    const SafetensorsFile io(latentkit_test::fixture(c.io_file));
    const auto prompts = prompts_of(io);
    const auto tokens = io.view<std::int64_t>("tokens");
    REQUIRE(tokens.size(0) == static_cast<index_t>(prompts.size()));
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      INFO(c.io_file << " prompt " << p << ": " << prompts[p]);
      const auto row = tokenizer(c.flavor).input_ids(prompts[p], c.padding, static_cast<std::size_t>(tokens.size(1)));
      for (index_t t = 0; t < tokens.size(1); ++t) REQUIRE(row[static_cast<std::size_t>(t)] == tokens(static_cast<index_t>(p), t));
    }
  }
}

TEST_CASE("Both text encoders reproduce the reference hidden states of every prompt, last layer and clip skip 2") {
  for (const auto& c : encoder_cases()) {
    INFO(c.io_file);
    const SafetensorsFile io(latentkit_test::fixture(c.io_file));
    const SafetensorsFile weights(latentkit_test::fixture(c.weights_file));
    const ClipTextEncoder encoder = load_checkpoint_text_encoder(weights);
    REQUIRE(encoder.layout().name == c.layout->name);
    REQUIRE(encoder.config().width == config_int(io, "width"));
    REQUIRE(encoder.config().layers == config_int(io, "layers"));
    REQUIRE(encoder.config().heads == config_int(io, "heads"));
    REQUIRE(encoder.config().vocab_size == config_int(io, "vocab_size"));
    REQUIRE(encoder.config().context_length == config_int(io, "context_length"));

    const auto tokens = io.view<std::int64_t>("tokens");
    const Tensor<float> last_ref = io.load<float>(c.last_key), skip_ref = io.load<float>(c.skip2_key);
    ClipTextOptions last, skip2;
    last.clip_skip = 1;
    skip2.clip_skip = 2;
    const ClipTextOutput out_last = encoder.forward(tokens, last), out_skip = encoder.forward(tokens, skip2);
    CHECK(max_abs_diff(out_last.hidden.view(), last_ref.view()) <= hidden_tolerance);
    CHECK(max_abs_diff(out_skip.hidden.view(), skip_ref.view()) <= hidden_tolerance);
    // SD1 uses the last layer by default, SD2 the penultimate one.
    const ClipTextOutput out_default = encoder.forward(tokens);
    REQUIRE(out_default.clip_skip == c.layout->default_clip_skip);
    CHECK(max_abs_diff(out_default.hidden.view(), (c.layout->default_clip_skip == 1 ? last_ref : skip_ref).view()) <= hidden_tolerance);
  }
}

TEST_CASE("Rows are encoded independently: one prompt alone gives the same states as in the batch") {
  const auto& c = encoder_cases()[0];
  const SafetensorsFile io(latentkit_test::fixture(c.io_file));
  const ClipTextEncoder encoder = load_checkpoint_text_encoder(SafetensorsFile(latentkit_test::fixture(c.weights_file)));
  const auto tokens = io.view<std::int64_t>("tokens");
  const ClipTextOutput all = encoder.forward(tokens);
  for (index_t p = 0; p < tokens.size(0); ++p) {
    const ClipTextOutput one = encoder.forward(tokens.slice(0, p, p + 1));
    REQUIRE(max_abs_diff(one.hidden.view().select(0, 0), all.hidden.view().select(0, p)) == 0.0);
  }
}

TEST_CASE("The pooled output is the final-LN last layer at the end token, and the projection multiplies it") {
  for (const auto& c : encoder_cases()) {
    INFO(c.io_file);
    const SafetensorsFile io(latentkit_test::fixture(c.io_file));
    const SafetensorsFile weights(latentkit_test::fixture(c.weights_file));
    const ClipTextEncoder encoder = load_checkpoint_text_encoder(weights);
    const auto tokens = io.view<std::int64_t>("tokens");
    const Tensor<float> last_ref = io.load<float>(c.last_key);
    ClipTextOptions options;
    options.clip_skip = 2;
    options.pooled = true;
    const ClipTextOutput out = encoder.forward(tokens, options);
    const index_t w = encoder.config().width;
    for (index_t p = 0; p < tokens.size(0); ++p) {
      index_t eos = 0;
      while (tokens(p, eos) != 49407) ++eos;
      REQUIRE(max_abs_diff(out.pooled.view().select(0, p), last_ref.view().select(0, p).select(0, eos)) <= hidden_tolerance);
    }
    const std::string projection = encoder_prefix(c) + std::string(c.layout->text_projection);
    REQUIRE(weights.contains(projection) == (encoder.config().projection_dim > 0));
    if (weights.contains(projection)) {
      const Tensor<float> proj = weights.load<float>(projection);  // [W, P]
      for (index_t p = 0; p < tokens.size(0); ++p)
        for (index_t j = 0; j < proj.size(1); ++j) {
          double acc = 0, abs = 0;
          for (index_t k = 0; k < w; ++k) {
            acc += static_cast<double>(out.pooled(p, k)) * proj(k, j);
            abs += std::abs(static_cast<double>(out.pooled(p, k)) * proj(k, j));
          }
          REQUIRE(std::abs(out.projected(p, j) - acc) <= 2.0 * (w + 1) * std::ldexp(1.0, -24) * abs);
        }
    }
  }
}

TEST_CASE("A diffusers text_encoder folder loads with HF names and its config.json (QuickGELU SD1, GELU SD2)") {
  for (const auto& c : encoder_cases()) {
    INFO(c.io_file);
    const SafetensorsFile io(latentkit_test::fixture(c.io_file));
    const SafetensorsFile weights(latentkit_test::fixture(c.weights_file));
    const auto tokens = io.view<std::int64_t>("tokens");
    const index_t layers = config_int(io, "layers");
    const bool sd1 = c.layout == &sd1_clip_layout;
    // SD1 keeps every layer; SD2 is written as diffusers does, without the last layer, so its default output is
    // the reference's penultimate state.
    const index_t keep = sd1 ? layers : layers - 1;
    const latentkit_test::TempDir dir("clip");
    std::filesystem::create_directories(dir.path / "text_encoder");
    SafetensorsWriter out;
    if (sd1)
      copy_tensors(weights, encoder_prefix(c), out, [](const std::string& k) { return k; });
    else
      add_as_hf(weights, encoder_prefix(c), out, keep);
    out.write(dir.path / "text_encoder" / "model.safetensors");
    write_json(dir.path / "text_encoder" / "config.json",
               {{"num_attention_heads", config_int(io, "heads")}, {"hidden_act", sd1 ? "quick_gelu" : "gelu"},
                {"layer_norm_eps", 1e-5}, {"num_hidden_layers", keep}});
    for (const auto& folder : {dir.path, dir.path / "text_encoder"}) {
      const ClipTextEncoder encoder = load_text_encoder(folder);
      REQUIRE(encoder.config().layers == keep);
      REQUIRE(encoder.config().activation == (sd1 ? Activation::quick_gelu : Activation::gelu));
      REQUIRE(encoder.clip_skip_default() == 1);
      const ClipTextOutput o = encoder.forward(tokens);
      CHECK(max_abs_diff(o.hidden.view(), io.load<float>(sd1 ? c.last_key : c.skip2_key).view()) <= hidden_tolerance);
      if (!sd1) {
        ClipTextOptions pooled;
        pooled.pooled = true;
        REQUIRE(encoder.forward(tokens, pooled).projected.shape() == Dims{tokens.size(0), encoder.config().width});
      }
    }
  }
}

TEST_CASE("F16 checkpoints load by widening: same states as float32 weights rounded to f16") {
  const auto& c = encoder_cases()[1];
  const SafetensorsFile io(latentkit_test::fixture(c.io_file));
  const SafetensorsFile weights(latentkit_test::fixture(c.weights_file));
  SafetensorsWriter half, rounded;
  for (const auto& t : weights.tensors()) {
    if (!t.name.starts_with(sd2_openclip_prefix)) continue;
    const Tensor<float> v = weights.load<float>(t.name);
    Tensor<f16> h(v.shape());
    Tensor<float> r(v.shape());
    for (index_t i = 0; i < v.numel(); ++i) {
      h.data()[i] = f16(v.data()[i]);
      r.data()[i] = static_cast<float>(h.data()[i]);
    }
    half.add(t.name, h);
    rounded.add(t.name, r);
  }
  const auto half_image = half.to_bytes(), rounded_image = rounded.to_bytes();
  const index_t heads = config_int(io, "heads");  // the copies carry no metadata
  const ClipTextEncoder from_half = load_checkpoint_text_encoder(SafetensorsFile(std::span<const std::byte>(half_image), "h"), heads);
  const ClipTextEncoder from_rounded = load_checkpoint_text_encoder(SafetensorsFile(std::span<const std::byte>(rounded_image), "r"), heads);
  const auto tokens = io.view<std::int64_t>("tokens");
  const ClipTextOutput a = from_half.forward(tokens), b = from_rounded.forward(tokens);
  REQUIRE(max_abs_diff(a.hidden.view(), b.hidden.view()) == 0.0);
  // f16 weights move the states, but not by much (a sanity check that nothing was misread).
  CHECK(max_abs_diff(a.hidden.view(), io.load<float>(c.skip2_key).view()) < 0.05);
}

TEST_CASE("Loading errors name the file, the key and the expected and found shapes") {
  const auto& c = encoder_cases()[0];
  const SafetensorsFile weights(latentkit_test::fixture(c.weights_file));
  const index_t heads = config_int(SafetensorsFile(latentkit_test::fixture(c.io_file)), "heads");  // the copies carry no metadata
  const std::string prefix(sd1_clip_prefix);
  const index_t last_layer = count_indexed_blocks(weights, prefix + "text_model.encoder.layers.") - 1;
  const std::string dropped = prefix + "text_model.encoder.layers." + std::to_string(last_layer) + ".self_attn.k_proj.bias";
  const std::string reshaped = prefix + "text_model.encoder.layers.0.mlp.fc2.weight";
  const Dims dropped_shape = weights.info(dropped).shape, fc2 = weights.info(reshaped).shape;
  const Dims narrower{fc2[0], fc2[1] - 1};

  SafetensorsWriter missing;
  copy_tensors(weights, prefix, missing, [&](const std::string& k) { return prefix + k == dropped ? std::string() : prefix + k; });
  const auto missing_image = missing.to_bytes();
  REQUIRE_THROWS_WITH(load_checkpoint_text_encoder(SafetensorsFile(std::span<const std::byte>(missing_image), "missing.safetensors"), heads),
                      Catch::Contains("missing.safetensors") && Catch::Contains("missing tensor '" + dropped + "'") &&
                          Catch::Contains(dropped_shape.str()));

  SafetensorsWriter shaped;
  copy_tensors(weights, prefix, shaped, [&](const std::string& k) { return prefix + k == reshaped ? std::string() : prefix + k; });
  shaped.add(reshaped, Tensor<float>::full(narrower, 0.01f));
  const auto shaped_image = shaped.to_bytes();
  REQUIRE_THROWS_WITH(load_checkpoint_text_encoder(SafetensorsFile(std::span<const std::byte>(shaped_image), "shaped.safetensors"), heads),
                      Catch::Contains("shaped.safetensors") && Catch::Contains(reshaped) &&
                          Catch::Contains("shape " + narrower.str() + "; expected " + fc2.str()));

  SafetensorsWriter none;
  none.add("model.diffusion_model.x", Tensor<float>::full({2}, 1.0f));
  const auto none_image = none.to_bytes();
  REQUIRE_THROWS_WITH(load_checkpoint_text_encoder(SafetensorsFile(std::span<const std::byte>(none_image), "unet.safetensors")),
                      Catch::Contains("unet.safetensors") && Catch::Contains("no text encoder"));

  SafetensorsWriter bad_heads;
  copy_tensors(weights, prefix, bad_heads, [&](const std::string& k) { return prefix + k; });
  const auto bad_heads_image = bad_heads.to_bytes();
  REQUIRE_THROWS_WITH(load_checkpoint_text_encoder(SafetensorsFile(std::span<const std::byte>(bad_heads_image), "h.safetensors"), 5),
                      Catch::Contains("not a multiple of 5 heads"));

  REQUIRE_THROWS_AS(load_text_encoder(std::filesystem::temp_directory_path() / "latentkit_no_such_folder_xyz.d"), Error);
}

TEST_CASE("Bad encoder inputs throw: clip skip out of range, too many tokens, ids outside the vocabulary") {
  const auto& c = encoder_cases()[1];
  const ClipTextEncoder encoder = load_checkpoint_text_encoder(SafetensorsFile(latentkit_test::fixture(c.weights_file)));
  Tensor<std::int64_t> tokens = Tensor<std::int64_t>::full({1, encoder.config().context_length}, 0);
  tokens(0, 0) = 49406;
  tokens(0, 1) = 49407;
  ClipTextOptions options;
  for (const int bad : {-1, static_cast<int>(encoder.config().layers) + 1}) {
    options.clip_skip = bad;
    REQUIRE_THROWS_WITH(encoder.forward(tokens, options), Catch::Contains("clip skip " + std::to_string(bad)));
  }
  REQUIRE_THROWS_AS(encoder.forward(Tensor<std::int64_t>::full({1, encoder.config().context_length + 1}, 1)), ShapeError);
  const index_t outside = encoder.config().vocab_size;
  tokens(0, 5) = outside;
  REQUIRE_THROWS_WITH(encoder.forward(tokens), Catch::Contains("id " + std::to_string(outside)));
}

TEST_CASE("Encoder outputs are bit-identical for 1, 2 and 3 threads") {
  const auto& c = encoder_cases()[0];
  const SafetensorsFile io(latentkit_test::fixture(c.io_file));
  const ClipTextEncoder encoder = load_checkpoint_text_encoder(SafetensorsFile(latentkit_test::fixture(c.weights_file)));
  const auto tokens = io.view<std::int64_t>("tokens");
  ClipTextOptions options;
  options.pooled = true;
  const int default_threads = max_threads();
  std::vector<ClipTextOutput> results;
  for (int threads : {1, 2, 3}) {
#if LATENTKIT_HAS_OPENMP
    omp_set_num_threads(threads);
#endif
    results.push_back(encoder.forward(tokens, options));
  }
#if LATENTKIT_HAS_OPENMP
  omp_set_num_threads(default_threads);
#endif
  for (std::size_t i = 1; i < results.size(); ++i) {
    REQUIRE(max_abs_diff(results[0].hidden.view(), results[i].hidden.view()) == 0.0);
    REQUIRE(max_abs_diff(results[0].pooled.view(), results[i].pooled.view()) == 0.0);
  }
}
