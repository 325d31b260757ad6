// Prompt -> conditioning: plain prompts reproduce the encoder fixtures, weights follow the mean-restoring rule,
// long prompts and BREAK make several 77-token chunks, and cond/uncond get the same chunk count.
#include <catch2/catch.hpp>

#include <numeric>

#include "clip_fixtures.hpp"
#include "latentkit/pipelines/conditioning.hpp"

using namespace latentkit;
using namespace clip_test;

namespace {

const ClipTextEncoder& encoder_for(std::size_t i) {
  static const ClipTextEncoder sd1 = load_checkpoint_text_encoder(SafetensorsFile(latentkit_test::fixture(encoder_cases()[0].weights_file)));
  static const ClipTextEncoder sd2 = load_checkpoint_text_encoder(SafetensorsFile(latentkit_test::fixture(encoder_cases()[1].weights_file)));
  return i == 0 ? sd1 : sd2;
}

/// The encoder's default output for one plain 77-token row.
Tensor<float> encode_row(const ClipTextEncoder& encoder, const std::vector<std::int32_t>& row, int clip_skip = 0) {
  Tensor<std::int64_t> t({1, static_cast<index_t>(row.size())});
  for (std::size_t i = 0; i < row.size(); ++i) t.data()[i] = row[i];
  ClipTextOptions o;
  o.clip_skip = clip_skip;
  return std::move(encoder.forward(t, o).hidden).reshape({static_cast<index_t>(row.size()), encoder.config().width});
}

}  // namespace

TEST_CASE("Plain prompts give the reference states of every fixture prompt; the empty negative prompt gives uncond") {
  // Emphasis parsing is off: the reference encodes the prompt text literally (brackets included).
  ConditioningOptions literal;
  literal.parse_emphasis = false;
  for (std::size_t e = 0; e < encoder_cases().size(); ++e) {
    const auto& c = encoder_cases()[e];
    const ClipTextEncoder& encoder = encoder_for(e);
    const auto& tok = tokenizer(c.flavor);
    const SafetensorsFile io(latentkit_test::fixture(c.io_file));
    const auto prompts = prompts_of(io);
    const Tensor<float> ref = io.load<float>(c.layout->default_clip_skip == 1 ? c.last_key : c.skip2_key);
    const Tensor<float> empty = encode_row(encoder, tok.input_ids("", c.padding));
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      INFO(c.io_file << " prompt " << p << ": " << prompts[p]);
      const Conditioning cond = encode_conditioning(encoder, tok, prompts[p], "", literal);
      const std::size_t count = tok.encode(prompts[p]).size();
      const index_t n = static_cast<index_t>(cond.chunks);
      REQUIRE(cond.cond.shape() == Dims{n * 77, encoder.config().width});
      REQUIRE(cond.uncond.shape() == cond.cond.shape());
      for (index_t k = 0; k < n; ++k) REQUIRE(max_abs_diff(cond.uncond.view().slice(0, k * 77, (k + 1) * 77), empty.view()) == 0.0);
      REQUIRE(cond.uncond_chunk_tokens == std::vector<std::size_t>(cond.chunks, 0));
      if (count <= 75) {  // one chunk = the reference's row; longer prompts are truncated there, chunked here
        REQUIRE(cond.chunks == 1);
        REQUIRE(cond.cond_chunk_tokens == std::vector<std::size_t>{count});
        CHECK(max_abs_diff(cond.cond.view(), ref.view().select(0, static_cast<index_t>(p))) <= hidden_tolerance);
      } else {
        REQUIRE(cond.chunks >= 2);
        REQUIRE(std::accumulate(cond.cond_chunk_tokens.begin(), cond.cond_chunk_tokens.end(), std::size_t{0}) == count);
      }
    }
  }
}

TEST_CASE("Clip skip 2 on SD1 gives the reference penultimate states with the final LayerNorm") {
  const auto& c = encoder_cases()[0];
  const SafetensorsFile io(latentkit_test::fixture(c.io_file));
  const auto prompts = prompts_of(io);
  const Tensor<float> ref = io.load<float>(c.skip2_key);
  ConditioningOptions options;
  options.clip_skip = 2;
  options.parse_emphasis = false;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    if (tokenizer(c.flavor).encode(prompts[p]).size() > 75) continue;  // truncated in the reference, chunked here
    const Conditioning cond = encode_conditioning(encoder_for(0), tokenizer(c.flavor), prompts[p], "", options);
    REQUIRE(cond.clip_skip == 2);
    CHECK(max_abs_diff(cond.cond.view(), ref.view().select(0, static_cast<index_t>(p))) <= hidden_tolerance);
  }
}

TEST_CASE("Emphasis weights scale token states, then the chunk's mean is restored") {
  for (std::size_t e = 0; e < encoder_cases().size(); ++e) {
    const auto& c = encoder_cases()[e];
    const ClipTextEncoder& encoder = encoder_for(e);
    const auto& tok = tokenizer(c.flavor);
    const std::string prompt = "(a photograph:1.3) of [an astronaut] riding ((a horse))";
    const Conditioning got = encode_conditioning(encoder, tok, prompt, "blurry, (low quality:0.8)");
    const auto expect = [&](const std::string& text, const Tensor<float>& actual) {
      const TokenizedPrompt tp = tokenize_prompt(tok, text, prompt_chunk_options(encoder));
      REQUIRE(tp.chunks.size() == 1);
      const auto& chunk = tp.chunks[0];
      REQUIRE(std::any_of(chunk.weights.begin(), chunk.weights.end(), [](float w) { return w != 1.0f; }));
      const Tensor<float> plain = encode_row(encoder, chunk.tokens);
      double before = 0, after = 0;
      for (index_t t = 0; t < plain.size(0); ++t)
        for (index_t k = 0; k < plain.size(1); ++k) {
          before += plain(t, k);
          after += static_cast<double>(plain(t, k)) * chunk.weights[static_cast<std::size_t>(t)];
        }
      for (index_t t = 0; t < plain.size(0); ++t)
        for (index_t k = 0; k < plain.size(1); ++k) {
          const double ref = static_cast<double>(plain(t, k)) * chunk.weights[static_cast<std::size_t>(t)] * before / after;
          REQUIRE(std::abs(actual(t, k) - ref) <= 1e-5 * (1.0 + std::abs(ref)));
        }
    };
    expect(prompt, got.cond);
    expect("blurry, (low quality:0.8)", got.uncond);
  }
}

TEST_CASE("Long prompts make several chunks and the shorter side is padded with the empty chunk's encoding") {
  for (std::size_t e = 0; e < encoder_cases().size(); ++e) {
    const auto& c = encoder_cases()[e];
    const ClipTextEncoder& encoder = encoder_for(e);
    const auto& tok = tokenizer(c.flavor);
    std::string prompt;
    for (int i = 0; i < 40; ++i) prompt += "red cube and blue sphere ";
    const Conditioning got = encode_conditioning(encoder, tok, "", prompt);  // the negative prompt is the long one
    const TokenizedPrompt tp = tokenize_prompt(tok, prompt, prompt_chunk_options(encoder));
    REQUIRE(tp.chunks.size() >= 2);
    REQUIRE(got.chunks == tp.chunks.size());
    const index_t w = encoder.config().width, n = static_cast<index_t>(got.chunks);
    REQUIRE(got.cond.shape() == Dims{n * 77, w});
    REQUIRE(got.uncond.shape() == Dims{n * 77, w});
    REQUIRE(std::accumulate(got.uncond_chunk_tokens.begin(), got.uncond_chunk_tokens.end(), std::size_t{0}) == tp.token_count);
    REQUIRE(got.cond_chunk_tokens == std::vector<std::size_t>(got.chunks, 0));
    const Tensor<float> empty = encode_row(encoder, empty_prompt_chunk(tok, prompt_chunk_options(encoder)).tokens);
    for (index_t k = 0; k < n; ++k) {
      REQUIRE(max_abs_diff(got.cond.view().slice(0, k * 77, (k + 1) * 77), empty.view()) == 0.0);
      const Tensor<float> chunk = encode_row(encoder, tp.chunks[static_cast<std::size_t>(k)].tokens);
      REQUIRE(max_abs_diff(got.uncond.view().slice(0, k * 77, (k + 1) * 77), chunk.view()) <= 1e-6);
    }
  }
}

TEST_CASE("BREAK starts a new chunk and each chunk reports its own token count") {
  const auto& c = encoder_cases()[0];
  const Conditioning got = encode_conditioning(encoder_for(0), tokenizer(c.flavor), "a red cube BREAK a blue sphere on grass");
  REQUIRE(got.chunks == 2);
  REQUIRE(got.cond_chunk_tokens == std::vector<std::size_t>{3, 5});
  REQUIRE(got.uncond_chunk_tokens == std::vector<std::size_t>{0, 0});
  const Tensor<float> second = encode_row(encoder_for(0), tokenizer(c.flavor).input_ids("a blue sphere on grass", c.padding));
  REQUIRE(max_abs_diff(got.cond.view().slice(0, 77, 154), second.view()) <= 1e-6);
}
