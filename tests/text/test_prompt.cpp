// Prompt emphasis syntax, chunking and weighting, as AUTOMATIC1111's webui does them.
#include <catch2/catch.hpp>

#include "latentkit/text/emphasis.hpp"
#include "latentkit/text/prompt_chunks.hpp"
#include "support/fixtures.hpp"

using namespace latentkit;

namespace {
const ClipTokenizer& tokenizer() {
  static const ClipTokenizer tok = ClipTokenizer::load(latentkit_test::fixture("clip_tokenizer/vocab.json"));
  return tok;
}
std::string repeat(std::string_view word, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += word;
  return s;
}
using F = PromptFragment;
}  // namespace

TEST_CASE("brackets multiply weights and nest multiplicatively", "[prompt]") {
  CHECK(parse_prompt_attention("normal text") == std::vector<F>{{"normal text", 1.0}});
  CHECK(parse_prompt_attention("an (important) word") == std::vector<F>{{"an ", 1.0}, {"important", 1.1}, {" word", 1.0}});
  CHECK(parse_prompt_attention("(a:1.3) [b] ((c)) [[d]]") ==
        std::vector<F>{{"a", 1.3}, {" ", 1.0}, {"b", 1 / 1.1}, {" ", 1.0}, {"c", 1.1 * 1.1}, {" ", 1.0}, {"d", 1 / 1.1 / 1.1}});
  // A1111's own example, weights compared exactly (same multiplication order).
  const auto r = parse_prompt_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).");
  const std::vector<F> expected{{"a ", 1.0},  {"house", 1.3 * 1.1 * 1.1}, {" ", 1.1},          {"on", 1.1 / 1.1},
                                {" a ", 1.1}, {"hill", 0.5 * 1.1},        {", sun, ", 1.1},    {"sky", 1.1 * 1.1 * 1.1 * 1.1},
                                {".", 1.1}};
  CHECK(r == expected);
  CHECK(r[1].weight == 1.5730000000000004);
  CHECK(r[7].weight == 1.4641000000000006);
  CHECK(parse_prompt_attention("(x: -0.5 )") == std::vector<F>{{"x", -0.5}});
  CHECK(parse_prompt_attention("(x:+.5)") == std::vector<F>{{"x", 0.5}});
}

TEST_CASE("escapes, stray backslashes, colons and unbalanced brackets follow A1111", "[prompt]") {
  CHECK(parse_prompt_attention("\\(literal\\]") == std::vector<F>{{"(literal]", 1.0}});
  CHECK(parse_prompt_attention("a\\\\b\\c") == std::vector<F>{{"a\\bc", 1.0}});  // "\\" keeps one, "\c" drops it
  CHECK(parse_prompt_attention("(unbalanced") == std::vector<F>{{"unbalanced", 1.1}});
  CHECK(parse_prompt_attention("[a (b") == std::vector<F>{{"a ", 1 / 1.1}, {"b", 1.1 / 1.1}});
  CHECK(parse_prompt_attention("a) b] c") == std::vector<F>{{"a) b] c", 1.0}});
  CHECK(parse_prompt_attention("(unnecessary)(parens)") == std::vector<F>{{"unnecessaryparens", 1.1}});
  CHECK(parse_prompt_attention("time 10:30, ratio:2)") == std::vector<F>{{"time 10:30, ratio:2)", 1.0}});
  CHECK(parse_prompt_attention("") == std::vector<F>{{"", 1.0}});
  CHECK(parse_prompt_attention("()") == std::vector<F>{{"", 1.0}});
  CHECK_THROWS_AS(parse_prompt_attention("(a:1.2.3)"), FormatError);
  CHECK_THROWS_AS(parse_prompt_attention("(a:.)"), FormatError);
}

TEST_CASE("BREAK is a whole word that splits fragments", "[prompt]") {
  const auto r = parse_prompt_attention("a cat BREAK\ta dog");
  REQUIRE(r.size() == 3);
  CHECK(r[0] == F{"a cat", 1.0});
  CHECK(r[1].is_break());
  CHECK(r[2] == F{"a dog", 1.0});
  CHECK(parse_prompt_attention("BREAKfast, aBREAK") == std::vector<F>{{"BREAKfast, aBREAK", 1.0}});
  CHECK(parse_prompt_attention("(x)BREAK") == std::vector<F>{{"x", 1.1}, {"", 1.0}, {"BREAK", -1.0}, {"", 1.0}});
  const auto inside = parse_prompt_attention("(a BREAK b)");  // scaled by the bracket: no longer a BREAK
  REQUIRE(inside.size() == 3);
  CHECK_FALSE(inside[1].is_break());
  CHECK(inside[1].weight == -1.1);
}

TEST_CASE("prompts become 77-token chunks with per-token weights", "[prompt]") {
  const auto& tok = tokenizer();
  const std::int32_t cat = tok.encode("cat")[0];
  const auto one = tokenize_prompt(tok, "(cat:1.5) cat");
  REQUIRE(one.chunks.size() == 1);
  CHECK(one.token_count == 2);
  const auto& c = one.chunks[0];
  REQUIRE(c.tokens.size() == 77);
  CHECK(c.tokens[0] == 49406);
  CHECK(c.tokens[1] == cat);
  CHECK(c.tokens[2] == cat);
  CHECK(std::all_of(c.tokens.begin() + 3, c.tokens.end(), [](auto t) { return t == 49407; }));
  CHECK(c.weights[1] == 1.5f);
  CHECK(c.weights[2] == 1.0f);
  CHECK(std::count(c.weights.begin(), c.weights.end(), 1.0f) == 76);

  const auto two = tokenize_prompt(tok, repeat("cat ", 80));  // 75 + 5
  REQUIRE(two.chunks.size() == 2);
  CHECK(two.token_count == 80);
  CHECK(std::count(two.chunks[0].tokens.begin(), two.chunks[0].tokens.end(), cat) == 75);
  CHECK(std::count(two.chunks[1].tokens.begin(), two.chunks[1].tokens.end(), cat) == 5);
  CHECK(tokenize_prompt(tok, repeat("cat ", 75)).chunks.size() == 1);
  CHECK(tokenize_prompt(tok, repeat("cat ", 76)).chunks.size() == 2);
}

TEST_CASE("a full chunk breaks after a comma within the last 20 tokens", "[prompt]") {
  const auto& tok = tokenizer();
  const std::int32_t cat = tok.encode("cat")[0], comma = *tok.token_id(",</w>");
  // comma at position 70: the 4 tokens after it move to the next chunk
  const auto near = tokenize_prompt(tok, repeat("cat ", 70) + ", " + repeat("cat ", 10));
  REQUIRE(near.chunks.size() == 2);
  const auto& first = near.chunks[0].tokens;
  CHECK(first[71] == comma);
  CHECK(std::all_of(first.begin() + 72, first.end(), [](auto t) { return t == 49407; }));
  CHECK(std::count(near.chunks[1].tokens.begin(), near.chunks[1].tokens.end(), cat) == 10);
  CHECK(near.token_count == 75 + 10);
  // comma at position 10: too far back, the chunk is cut at 75 tokens
  const auto far = tokenize_prompt(tok, repeat("cat ", 10) + ", " + repeat("cat ", 70));
  REQUIRE(far.chunks.size() == 2);
  CHECK(std::count(far.chunks[0].tokens.begin(), far.chunks[0].tokens.end(), cat) == 74);
  // the rule can be switched off
  PromptChunkOptions no_backtrack;
  no_backtrack.comma_backtrack = 0;
  const auto off = tokenize_prompt(tok, repeat("cat ", 70) + ", " + repeat("cat ", 10), no_backtrack);
  CHECK(std::count(off.chunks[0].tokens.begin(), off.chunks[0].tokens.end(), cat) == 74);
}

TEST_CASE("BREAK starts a new chunk, and cond/uncond are padded with empty chunks", "[prompt]") {
  const auto& tok = tokenizer();
  auto cond = tokenize_prompt(tok, "a cat BREAK a dog");
  REQUIRE(cond.chunks.size() == 2);
  CHECK(cond.token_count == 75 + 2);
  CHECK(cond.chunks[1].tokens[1] == tok.encode("a")[0]);
  CHECK(cond.chunks[1].tokens[2] == tok.encode("dog")[0]);
  auto uncond = tokenize_prompt(tok, "");
  REQUIRE(uncond.chunks.size() == 1);
  CHECK(uncond.chunks[0] == empty_prompt_chunk(tok));
  equalize_chunk_counts(cond, uncond, tok);
  REQUIRE(uncond.chunks.size() == 2);
  CHECK(uncond.chunks[1] == empty_prompt_chunk(tok));
  const auto ids = chunk_token_tensor(cond);
  const auto w = chunk_weight_tensor(cond);
  CHECK(ids.shape() == Dims{2, 77});
  CHECK(w.shape() == Dims{2, 77});
  CHECK(ids(1, 0) == 49406);
  CHECK(ids(1, 2) == cond.chunks[1].tokens[2]);

  PromptChunkOptions openclip;
  openclip.padding = ClipPadding::zero;
  const auto sd2 = tokenize_prompt(tok, "(a cat)", openclip);
  const auto& t = sd2.chunks[0].tokens;
  CHECK(t[3] == 49407);
  CHECK(std::all_of(t.begin() + 4, t.end(), [](auto v) { return v == 0; }));
  CHECK(sd2.chunks[0].weights[1] == static_cast<float>(1.1));
  const auto empty = empty_prompt_chunk(tok, openclip);
  CHECK(empty.tokens[1] == 49407);
  CHECK(empty.tokens[2] == 0);
}

TEST_CASE("weights scale hidden states and the chunk mean is restored", "[prompt]") {
  const index_t tokens = 5, width = 3;
  Tensor<float> h(Dims{tokens, width});
  for (index_t i = 0; i < tokens * width; ++i) h.data()[i] = 0.25f + 0.1f * static_cast<float>((i * 7) % 11) - 0.3f * static_cast<float>(i % 2);
  const auto original = h.clone();
  const std::vector<float> weights{1.0f, 1.5f, 0.5f, 1.21f, 1.0f};
  apply_prompt_weights(h.view(), weights);
  double m0 = 0, m1 = 0, sw = 0;
  for (index_t t = 0; t < tokens; ++t)
    for (index_t c = 0; c < width; ++c) {
      m0 += original(t, c);
      m1 += h(t, c);
      sw += static_cast<double>(original(t, c)) * weights[static_cast<std::size_t>(t)];
    }
  CHECK(m1 == Approx(m0).epsilon(1e-6));
  const double scale = m0 / sw;
  for (index_t t = 0; t < tokens; ++t)
    for (index_t c = 0; c < width; ++c)
      CHECK(h(t, c) == Approx(original(t, c) * weights[static_cast<std::size_t>(t)] * scale).epsilon(1e-6));
  // all-ones weights change nothing, bit for bit
  auto same = original.clone();
  apply_prompt_weights(same.view(), std::vector<float>(tokens, 1.0f));
  CHECK(std::equal(same.data(), same.data() + tokens * width, original.data()));
  CHECK_THROWS_AS(apply_prompt_weights(h.view(), std::vector<float>(4, 1.0f)), ShapeError);
}
