// CLIP text encoders (the text tower of openai CLIP / open_clip / HF CLIPTextModel): token + position embeddings,
// pre-LN transformer blocks with causal self-attention, final LayerNorm; optional pooled output (the hidden state
// at the end token = the largest id of each row) and text projection.
//
// One implementation, two checkpoint layouts (a ClipTextLayout value holds the key names and defaults):
//   sd1_clip_layout  HF CLIPTextModel names (text_model.encoder.layers.N.self_attn.q_proj...), QuickGELU, 12 heads
//                    (ViT-L/14), last layer; single files keep it under "cond_stage_model.transformer.".
//   openclip_layout  open_clip names (transformer.resblocks.N.attn.in_proj_weight...), exact GELU, 16 heads
//                    (ViT-H/14), penultimate layer by default (SD2); single files use "cond_stage_model.model.".
// The width, depth, MLP width, vocabulary, context length and projection size come from tensor shapes; heads
// from the checkpoint's metadata config (or a diffusers config.json) when present, else the layout's default.
// Clip skip n (A1111): the output of the n-th last block, then the final LayerNorm; n = 1 is the last block.
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/io/safetensors.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/models/checkpoint.hpp"
#include "latentkit/nn/attention.hpp"
#include "latentkit/nn/embedding.hpp"
#include "latentkit/nn/layer_norm.hpp"
#include "latentkit/nn/mlp.hpp"
#include "latentkit/nn/parameters.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Key names (relative to the encoder's prefix) and defaults of one checkpoint layout.
struct ClipTextLayout {
  std::string_view name;
  std::string_view token_embedding;     ///< Embedding prefix ("...token_embedding.")
  std::string_view position_embedding;  ///< full key of the [context, W] table
  std::string_view blocks;              ///< block N lives under blocks + "N."
  std::string_view norm1, attention, norm2;
  MlpNames mlp;
  std::string_view final_norm;
  std::string_view text_projection;  ///< full key; absent from the file = no projection
  bool projection_is_linear;         ///< stored as a Linear weight [P, W] (HF) rather than a matrix [W, P]
  QkvLayout qkv;
  Activation activation;
  index_t default_heads;
  int default_clip_skip;
  ClipPadding padding;                ///< how prompts for this encoder are padded (SD1: end token; SD2: 0)
  std::string_view metadata_config;   ///< safetensors metadata key holding a JSON config with "heads"
};

inline constexpr ClipTextLayout sd1_clip_layout{
    "sd1-clip", "text_model.embeddings.token_embedding.", "text_model.embeddings.position_embedding.weight",
    "text_model.encoder.layers.", "layer_norm1.", "self_attn.", "layer_norm2.", MlpNames{"mlp.fc1.", "mlp.fc2."},
    "text_model.final_layer_norm.", "text_projection.weight", true, QkvLayout::separate, Activation::quick_gelu,
    12, 1, ClipPadding::end_token, "clip"};

inline constexpr ClipTextLayout openclip_layout{
    "openclip", "token_embedding.", "positional_embedding", "transformer.resblocks.", "ln_1.", "attn.", "ln_2.",
    MlpNames{"mlp.c_fc.", "mlp.c_proj."}, "ln_final.", "text_projection", false, QkvLayout::packed,
    Activation::gelu, 16, 2, ClipPadding::zero, "openclip"};

/// Where the text encoder of a single-file SD checkpoint lives.
inline constexpr std::string_view sd1_clip_prefix = "cond_stage_model.transformer.";
inline constexpr std::string_view sd2_openclip_prefix = "cond_stage_model.model.";

struct ClipTextConfig {
  index_t vocab_size = 49408;
  index_t context_length = 77;
  index_t width = 768;
  index_t layers = 12;
  index_t heads = 12;
  index_t mlp_width = 3072;
  index_t projection_dim = 0;  ///< 0: no text projection
  Activation activation = Activation::quick_gelu;
  float eps = 1e-5f;
};

struct ClipTextOptions {
  int clip_skip = 0;        ///< 1 = last block, 2 = penultimate, ...; 0 = the encoder's default
  bool final_norm = true;   ///< apply the final LayerNorm to the selected block's output (SDXL: false)
  bool pooled = false;      ///< also compute pooled (+ projected) from the last block, HF pooler_output style
};

struct ClipTextOutput {
  Tensor<float> hidden;     ///< [B, L, W]
  Tensor<float> pooled;     ///< [B, W] final-LN'd last block at each row's end token (when requested)
  Tensor<float> projected;  ///< [B, P] pooled @ text_projection (when requested and the model has one)
  int clip_skip = 1;        ///< the clip skip that was used
};

/// One pre-LN transformer block: x += attn(norm1(x)); x += mlp(norm2(x)).
class ClipTextBlock {
 public:
  ClipTextBlock(const ClipTextConfig& c, const ClipTextLayout& layout)
      : norm1(c.width, c.eps), attn(c.width, c.heads, layout.qkv), norm2(c.width, c.eps),
        mlp(c.width, c.mlp_width, c.activation, layout.mlp), layout_(layout) {}

  LayerNorm norm1;
  MultiheadSelfAttention attn;
  LayerNorm norm2;
  Mlp mlp;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    norm1.visit_parameters(visit, prefix + std::string(layout_.norm1));
    attn.visit_parameters(visit, prefix + std::string(layout_.attention));
    norm2.visit_parameters(visit, prefix + std::string(layout_.norm2));
    mlp.visit_parameters(visit, prefix);
  }
  void prepare() {
    attn.prepare();
    mlp.prepare();
  }

  /// In place on x [B, L, W] (contiguous).
  void forward(TensorView<float> x) const {
    const index_t rows = x.size(0) * x.size(1), w = x.size(2);
    Tensor<float> h(x.shape()), update(x.shape());
    norm1.forward(x, h.view());
    attn.forward(h.view(), update.view(), /*causal=*/true);
    add_in_place(x.data(), update.data(), rows * w);
    norm2.forward(x, h.view());
    mlp.forward(h.view().reshape({rows, w}), update.view().reshape({rows, w}));
    add_in_place(x.data(), update.data(), rows * w);
  }

 private:
  static void add_in_place(float* x, const float* y, index_t n) noexcept {
    for (index_t i = 0; i < n; ++i) x[i] += y[i];
  }
  ClipTextLayout layout_;  // string views of static names: safe to copy and move
};

class ClipTextEncoder {
 public:
  ClipTextEncoder(const ClipTextConfig& config, const ClipTextLayout& layout)
      : token_embedding(config.vocab_size, config.width),
        position_embedding(Tensor<float>::zeros({config.context_length, config.width})),
        final_norm(config.width, config.eps),
        text_projection(Tensor<float>::zeros({config.projection_dim > 0 ? config.width : 0, config.projection_dim})),
        config_(config),
        layout_(layout),
        default_clip_skip_(std::min<int>(layout.default_clip_skip, static_cast<int>(config.layers))) {
    if (config.layers < 1 || config.width < 1 || config.context_length < 2)
      throw ShapeError("ClipTextEncoder: need at least 1 layer, width 1 and context 2 (got " +
                       std::to_string(config.layers) + ", " + std::to_string(config.width) + ", " +
                       std::to_string(config.context_length) + ")");
    blocks.reserve(static_cast<std::size_t>(config.layers));
    for (index_t i = 0; i < config.layers; ++i) blocks.emplace_back(config_, layout_);
  }

  Embedding token_embedding;
  Tensor<float> position_embedding;  ///< [context, W]
  std::vector<ClipTextBlock> blocks;
  LayerNorm final_norm;
  Tensor<float> text_projection;  ///< [W, P] (pooled @ text_projection), [0, 0] when absent

  const ClipTextConfig& config() const noexcept { return config_; }
  const ClipTextLayout& layout() const noexcept { return layout_; }
  int clip_skip_default() const noexcept { return default_clip_skip_; }
  /// Diffusers' SD2 text encoder already drops the last block: its default is the last remaining one.
  void set_clip_skip_default(int n) {
    check_clip_skip_layer(n);
    default_clip_skip_ = n;
  }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    token_embedding.visit_parameters(visit, prefix + std::string(layout_.token_embedding));
    visit(prefix + std::string(layout_.position_embedding), position_embedding.view());
    for (std::size_t i = 0; i < blocks.size(); ++i)
      blocks[i].visit_parameters(visit, prefix + std::string(layout_.blocks) + std::to_string(i) + ".");
    final_norm.visit_parameters(visit, prefix + std::string(layout_.final_norm));
    if (config_.projection_dim > 0)
      visit(prefix + std::string(layout_.text_projection),
            layout_.projection_is_linear ? text_projection.view().transpose() : text_projection.view());
  }
  void prepare() {
    for (auto& b : blocks) b.prepare();
  }

  /// Encodes token rows [B, L] (L <= context length). See ClipTextOptions.
  template <class Id>
    requires std::is_integral_v<Id>
  ClipTextOutput forward(TensorView<const Id> tokens, const ClipTextOptions& options = {}) const {
    if (tokens.rank() != 2 || tokens.size(1) < 1 || tokens.size(1) > config_.context_length)
      throw ShapeError("ClipTextEncoder: tokens " + tokens.shape().str() + "; expected [batch, length <= " +
                       std::to_string(config_.context_length) + "]");
    ClipTextOutput out;
    out.clip_skip = options.clip_skip == 0 ? default_clip_skip_ : options.clip_skip;
    check_clip_skip_layer(out.clip_skip);
    const index_t b = tokens.size(0), l = tokens.size(1), w = config_.width;
    Tensor<float> x({b, l, w});
    for (index_t s = 0; s < b; ++s) {
      TensorView<float> rows = x.view().select(0, s);
      token_embedding.forward(tokens.select(0, s), rows);
      for (index_t t = 0; t < l; ++t)
        for (index_t c = 0; c < w; ++c) rows(t, c) += position_embedding(t, c);
    }
    const index_t stop = config_.layers - (out.clip_skip - 1);
    const index_t run = options.pooled ? config_.layers : stop;
    Tensor<float> selected;
    for (index_t i = 0; i < run; ++i) {
      blocks[static_cast<std::size_t>(i)].forward(x.view());
      if (i + 1 == stop && stop < run) selected = x.clone();
    }
    const Tensor<float>& chosen = stop < run ? selected : x;
    out.hidden = options.final_norm ? final_norm.forward(chosen.view()) : chosen.clone();
    if (options.pooled) {
      const Tensor<float> last = final_norm.forward(x.view());
      out.pooled = Tensor<float>({b, w});
      for (index_t s = 0; s < b; ++s) {
        index_t end = 0;  // first position of the largest id, as torch.argmax
        for (index_t t = 1; t < l; ++t)
          if (tokens(s, t) > tokens(s, end)) end = t;
        for (index_t c = 0; c < w; ++c) out.pooled(s, c) = last(s, end, c);
      }
      if (config_.projection_dim > 0) out.projected = matmul(TensorView<const float>(out.pooled.view()), text_projection.view());
    }
    return out;
  }
  ClipTextOutput forward(const Tensor<std::int64_t>& tokens, const ClipTextOptions& options = {}) const {
    return forward(tokens.view(), options);
  }

 private:
  void check_clip_skip_layer(int n) const {
    if (n < 1 || n > config_.layers)
      throw ShapeError("ClipTextEncoder: clip skip " + std::to_string(n) + " is outside 1.." +
                       std::to_string(config_.layers) + " (1 = last layer)");
  }

  ClipTextConfig config_;
  ClipTextLayout layout_;
  int default_clip_skip_;
};

/// The configuration of the encoder stored under `prefix` in `file` with `layout`: sizes from tensor shapes;
/// heads = `heads` if given, else the metadata config's "heads", else the layout's default.
inline ClipTextConfig infer_clip_text_config(const SafetensorsFile& file, const std::string& prefix,
                                             const ClipTextLayout& layout, std::optional<index_t> heads = {}) {
  const auto shape_of = [&](const std::string& key, int rank) -> Dims {
    const std::string full = prefix + key;
    if (!file.contains(full))
      throw FormatError(file.path().string() + ": missing tensor '" + full + "' (" + std::string(layout.name) +
                        " text encoder layout)");
    const Dims s = file.info(full).shape;
    if (s.rank() != rank)
      throw FormatError(file.path().string() + ", tensor '" + full + "': shape " + s.str() + "; expected rank " +
                        std::to_string(rank));
    return s;
  };
  ClipTextConfig c;
  const Dims tok = shape_of(std::string(layout.token_embedding) + "weight", 2);
  c.vocab_size = tok[0];
  c.width = tok[1];
  c.context_length = shape_of(std::string(layout.position_embedding), 2)[0];
  c.layers = count_indexed_blocks(file, prefix + std::string(layout.blocks));
  if (c.layers == 0)
    throw FormatError(file.path().string() + ": no blocks '" + prefix + std::string(layout.blocks) + "0.*'");
  c.mlp_width = shape_of(std::string(layout.blocks) + "0." + std::string(layout.mlp.fc1) + "weight", 2)[0];
  const std::string projection = prefix + std::string(layout.text_projection);
  if (file.contains(projection)) c.projection_dim = shape_of(std::string(layout.text_projection), 2)[layout.projection_is_linear ? 0 : 1];
  c.activation = layout.activation;
  const auto from_metadata = metadata_config_int(file, std::string(layout.metadata_config), "heads");
  c.heads = heads ? *heads : from_metadata ? static_cast<index_t>(*from_metadata) : layout.default_heads;
  if (c.heads < 1 || c.width % c.heads != 0)
    throw FormatError(file.path().string() + ": text encoder width " + std::to_string(c.width) +
                      " is not a multiple of " + std::to_string(c.heads) + " heads");
  return c;
}

/// Builds the encoder of `layout` under `prefix` and loads its weights (F32/F16/BF16).
inline ClipTextEncoder load_clip_text_encoder(const SafetensorsFile& file, const std::string& prefix,
                                              const ClipTextLayout& layout, std::optional<index_t> heads = {}) {
  ClipTextEncoder encoder(infer_clip_text_config(file, prefix, layout, heads), layout);
  load_parameters(encoder, file, prefix);
  return encoder;
}

/// The text encoder of a single-file SD checkpoint: SD1 (HF names under cond_stage_model.transformer.) or SD2
/// (open_clip names under cond_stage_model.model.). Throws FormatError when neither is present.
inline ClipTextEncoder load_checkpoint_text_encoder(const SafetensorsFile& file, std::optional<index_t> heads = {}) {
  const std::string sd1(sd1_clip_prefix), sd2(sd2_openclip_prefix);
  if (file.contains(sd1 + std::string(sd1_clip_layout.token_embedding) + "weight"))
    return load_clip_text_encoder(file, sd1, sd1_clip_layout, heads);
  if (file.contains(sd2 + std::string(openclip_layout.token_embedding) + "weight"))
    return load_clip_text_encoder(file, sd2, openclip_layout, heads);
  throw FormatError(file.path().string() + ": no text encoder found (looked for '" + sd1 +
                    std::string(sd1_clip_layout.token_embedding) + "weight' and '" + sd2 +
                    std::string(openclip_layout.token_embedding) + "weight')");
}

/// The text encoder of a diffusers pipeline folder (`<root>/text_encoder/` or that folder): HF names with no
/// prefix; heads, activation and LayerNorm eps from its config.json (num_attention_heads, hidden_act,
/// layer_norm_eps) when present. Clip skip defaults to the last block (diffusers' SD2 encoder already has the
/// last block removed).
inline ClipTextEncoder load_diffusers_text_encoder(const std::filesystem::path& folder,
                                                   std::string_view component = "text_encoder") {
  const auto weights = diffusers_component_file(folder, component);
  const auto json = diffusers_component_config(weights);
  const SafetensorsFile file(weights);
  const std::string where = (weights.parent_path() / "config.json").string();
  std::optional<index_t> heads;
  if (auto it = json.find("num_attention_heads"); it != json.end()) {
    if (!it->is_number_integer()) throw FormatError(where + ": num_attention_heads is not an integer");
    heads = it->get<index_t>();
  }
  ClipTextConfig config = infer_clip_text_config(file, "", sd1_clip_layout, heads);
  if (auto it = json.find("hidden_act"); it != json.end()) {
    if (!it->is_string()) throw FormatError(where + ": hidden_act is not a string");
    config.activation = parse_activation(it->get<std::string>());
  }
  if (auto it = json.find("layer_norm_eps"); it != json.end()) {
    if (!it->is_number()) throw FormatError(where + ": layer_norm_eps is not a number");
    config.eps = it->get<float>();
  }
  ClipTextEncoder encoder(config, sd1_clip_layout);
  load_parameters(encoder, file, "");
  return encoder;
}

/// A single-file checkpoint (.safetensors) or a diffusers folder.
inline ClipTextEncoder load_text_encoder(const std::filesystem::path& checkpoint) {
  if (std::filesystem::is_directory(checkpoint)) return load_diffusers_text_encoder(checkpoint);
  return load_checkpoint_text_encoder(SafetensorsFile(checkpoint));
}

LATENTKIT_NAMESPACE_END
