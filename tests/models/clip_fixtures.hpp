// Shared by the models tests: the two text-encoder io fixtures, their weights files and prompts.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/io/safetensors.hpp"
#include "latentkit/models/clip_text.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"
#include "support/compare.hpp"
#include "support/fixtures.hpp"

namespace clip_test {

struct EncoderCase {
  std::string io_file;        ///< models/..._io.safetensors
  std::string weights_file;   ///< the checkpoint holding the weights
  std::string last_key;       ///< output of all layers + final LN
  std::string skip2_key;      ///< penultimate layer + final LN
  const latentkit::ClipTextLayout* layout;
  latentkit::ClipPadding padding;
  latentkit::ClipFlavor flavor;
};

inline const std::vector<EncoderCase>& encoder_cases() {
  static const std::vector<EncoderCase> cases{
      {"models/clip_text_tiny_io.safetensors", "models/sd1_tiny_pipeline.safetensors", "last_hidden_state",
       "penultimate_hidden_state_final_ln", &latentkit::sd1_clip_layout, latentkit::ClipPadding::end_token,
       latentkit::ClipFlavor::openai},
      {"models/openclip_text_tiny_io.safetensors", "models/sd2_tiny_unet_openclip.safetensors", "last_final_ln",
       "penultimate_final_ln", &latentkit::openclip_layout, latentkit::ClipPadding::zero, latentkit::ClipFlavor::open_clip}};
  return cases;
}

inline std::vector<std::string> prompts_of(const latentkit::SafetensorsFile& io) {
  return nlohmann::json::parse(io.metadata().at("prompts")).get<std::vector<std::string>>();
}

inline std::int64_t config_int(const latentkit::SafetensorsFile& io, const std::string& field) {
  return nlohmann::json::parse(io.metadata().at("config")).at(field).get<std::int64_t>();
}

inline const latentkit::ClipTokenizer& tokenizer(latentkit::ClipFlavor flavor) {
  static const auto vocab = latentkit::ClipVocabulary::load(latentkit_test::fixture("clip_tokenizer/bpe_simple_vocab_16e6.txt.gz"));
  static const latentkit::ClipTokenizer openai(vocab, latentkit::ClipFlavor::openai);
  static const latentkit::ClipTokenizer open_clip(vocab, latentkit::ClipFlavor::open_clip);
  return flavor == latentkit::ClipFlavor::openai ? openai : open_clip;
}

using latentkit_test::max_abs_diff;

/// README section 12: CLIP / OpenCLIP hidden states, max abs <= 5e-5 (20x the measured torch fp32 error).
inline constexpr double hidden_tolerance = 5e-5;

}  // namespace clip_test
