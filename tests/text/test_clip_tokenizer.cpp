// CLIP tokenizer against openai's SimpleTokenizer (fixtures/clip_tokenizer/*.json), both vocabulary formats,
// and the behaviour on malformed or hostile input.
#include <catch2/catch.hpp>

#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "latentkit/io/safetensors.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"
#include "support/fixtures.hpp"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {

const ClipTokenizer& gz_tokenizer() {
  static const ClipTokenizer tok = ClipTokenizer::load(latentkit_test::fixture("clip_tokenizer/bpe_simple_vocab_16e6.txt.gz"));
  return tok;
}
const ClipTokenizer& hf_tokenizer() {
  static const ClipTokenizer tok = ClipTokenizer::load(latentkit_test::fixture("clip_tokenizer/vocab.json"));
  return tok;
}

// Every *.json under clip_tokenizer/ that holds a "cases" array.
std::vector<std::pair<std::string, nlohmann::json>> case_files() {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  for (const auto& e : fs::directory_iterator(latentkit_test::fixture("clip_tokenizer"))) {
    if (e.path().extension() != ".json") continue;
    auto j = nlohmann::json::parse(latentkit_test::read_text(e.path()));
    if (j.is_object() && j.contains("cases")) out.emplace_back(e.path().filename().string(), std::move(j));
  }
  return out;
}

std::vector<std::int32_t> ints(const nlohmann::json& a) { return a.get<std::vector<std::int32_t>>(); }

}  // namespace

TEST_CASE("the tokenizer reproduces ids, tokens, SD1 rows and decoding of every fixture case", "[clip_tokenizer]") {
  const auto files = case_files();
  REQUIRE(!files.empty());
  std::size_t checked = 0;
  for (const auto& [file, doc] : files) {
    const auto bos = doc.value("bos", 49406), eos = doc.value("eos", 49407);
    const auto context = doc.value("context_length", std::size_t{77});
    for (const auto& c : doc["cases"]) {
      const std::string text = c.at("text");
      INFO(file << " case " << c.value("name", std::string("?")) << ": " << text);
      for (const ClipTokenizer* tok : {&gz_tokenizer(), &hf_tokenizer()}) {
        REQUIRE(tok->bos_id() == bos);
        REQUIRE(tok->eos_id() == eos);
        const auto ids = tok->encode(text);
        CHECK(ids == ints(c.at("ids")));
        if (c.contains("n_ids")) CHECK(static_cast<std::int64_t>(ids.size()) == c["n_ids"].get<std::int64_t>());
        if (c.contains("tokens")) CHECK(tok->tokens(ids) == c["tokens"].get<std::vector<std::string>>());
        if (c.contains("decoded")) CHECK(tok->decode(ids) == c["decoded"].get<std::string>());
        if (c.contains("sd_input_ids")) {
          CHECK(tok->input_ids(text, ClipPadding::end_token, context) == ints(c["sd_input_ids"]));
          // OpenCLIP row: same truncation, padded with 0 after the end token.
          auto row = ints(c["sd_input_ids"]);
          const auto first_eos = std::find(row.begin() + 1, row.end(), eos);
          std::fill(first_eos + 1, row.end(), 0);
          if (ids.size() <= context - 2 && std::find(ids.begin(), ids.end(), eos) == ids.end())
            CHECK(tok->input_ids(text, ClipPadding::zero, context) == row);
        }
        for (const char* key : {"openclip_input_ids", "open_clip_input_ids"})  // rows padded with 0, if a file has them
          if (c.contains(key)) CHECK(tok->input_ids(text, ClipPadding::zero, context) == ints(c[key]));
      }
      ++checked;
    }
  }
  CHECK(checked >= 1);
}

TEST_CASE("both vocabulary formats load the same vocabulary", "[clip_tokenizer]") {
  const auto& a = gz_tokenizer();
  const auto& b = hf_tokenizer();
  REQUIRE(a.vocab_size() == 49408);
  REQUIRE(b.vocab_size() == a.vocab_size());
  for (std::int32_t id = 0; id < static_cast<std::int32_t>(a.vocab_size()); ++id) REQUIRE(a.token(id) == b.token(id));
  CHECK(a.token_id(",</w>") == std::optional<std::int32_t>(267));
  CHECK(a.token(49406) == "<|startoftext|>");
}

TEST_CASE("the SD1 and OpenCLIP rows of the model fixtures' prompts", "[clip_tokenizer]") {
  // models/README.md sections 4-5: first row = 49406 320 8853 539 550 18376 6765 320 4558 49407 ...
  const auto& tok = gz_tokenizer();
  const auto sd1 = tok.sd_input_ids("a photograph of an astronaut riding a horse");
  const std::vector<std::int32_t> head{49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407};
  REQUIRE(sd1.size() == 77);
  CHECK(std::vector<std::int32_t>(sd1.begin(), sd1.begin() + 10) == head);
  CHECK(std::all_of(sd1.begin() + 10, sd1.end(), [](auto v) { return v == 49407; }));
  const auto oc = tok.openclip_input_ids("a photograph of an astronaut riding a horse");
  CHECK(std::vector<std::int32_t>(oc.begin(), oc.begin() + 10) == head);
  CHECK(std::all_of(oc.begin() + 10, oc.end(), [](auto v) { return v == 0; }));
  const auto empty = tok.openclip_input_ids("");
  CHECK(empty[0] == 49406);
  CHECK(empty[1] == 49407);
  CHECK(empty[2] == 0);
}

TEST_CASE("the token rows stored with the text-encoder fixtures are reproduced for every prompt", "[clip_tokenizer]") {
  // SD1 (openai tokenizer, pad 49407) and SD2 (open_clip.tokenize, pad 0); prompts are in the metadata.
  for (const auto& [file, padding] : {std::pair{"models/clip_text_tiny_io.safetensors", ClipPadding::end_token},
                                      std::pair{"models/openclip_text_tiny_io.safetensors", ClipPadding::zero}}) {
    const SafetensorsFile f(latentkit_test::fixture(file));
    const auto prompts = nlohmann::json::parse(f.metadata().at("prompts")).get<std::vector<std::string>>();
    const auto rows = f.view<std::int64_t>("tokens");
    REQUIRE(rows.size(0) == static_cast<index_t>(prompts.size()));
    const auto tok = ClipTokenizer::load(latentkit_test::fixture("clip_tokenizer/bpe_simple_vocab_16e6.txt.gz"),
                                         padding == ClipPadding::zero ? ClipFlavor::open_clip : ClipFlavor::openai);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      INFO(file << " prompt " << i << ": " << prompts[i]);
      const auto row = tok.input_ids(prompts[i], padding, static_cast<std::size_t>(rows.size(1)));
      for (index_t k = 0; k < rows.size(1); ++k) CHECK(row[static_cast<std::size_t>(k)] == rows(static_cast<index_t>(i), k));
    }
  }
}

TEST_CASE("long inputs are truncated to 75 ids between the start and end tokens", "[clip_tokenizer]") {
  const auto& tok = gz_tokenizer();
  std::string text;
  for (int i = 0; i < 200; ++i) text += "dog ";
  const auto ids = tok.encode(text);
  REQUIRE(ids.size() == 200);
  for (auto padding : {ClipPadding::end_token, ClipPadding::zero}) {
    const auto row = tok.input_ids(text, padding);
    REQUIRE(row.size() == 77);
    CHECK(row.front() == 49406);
    CHECK(row.back() == 49407);
    CHECK(std::equal(row.begin() + 1, row.end() - 1, ids.begin()));
  }
  const auto short_row = make_clip_input_row(ids, 1, 2, ClipPadding::zero, 5);
  CHECK(short_row == std::vector<std::int32_t>{1, ids[0], ids[1], ids[2], 2});
  CHECK_THROWS_AS(make_clip_input_row(ids, 1, 2, ClipPadding::zero, 1), ShapeError);
}

TEST_CASE("open_clip spells the special tokens differently", "[clip_tokenizer]") {
  const auto oc = ClipTokenizer::load(latentkit_test::fixture("clip_tokenizer/bpe_simple_vocab_16e6.txt.gz"), ClipFlavor::open_clip);
  CHECK(oc.encode("<start_of_text>x<end_of_text>") == std::vector<std::int32_t>{49406, oc.encode("x")[0], 49407});
  const auto literal = oc.encode("<|endoftext|>");
  CHECK(literal.size() > 1);
  CHECK(std::find(literal.begin(), literal.end(), 49407) == literal.end());
  CHECK(gz_tokenizer().encode("<|endoftext|>") == std::vector<std::int32_t>{49407});
}

TEST_CASE("cleaning follows Python: html.unescape twice, whitespace, str.lower", "[clip_tokenizer]") {
  auto norm = [](std::string_view s) { return unicode::encode_utf8(ClipTokenizer::normalize(s)); };
  CHECK(norm("  A&amp;amp;B \t\n C  ") == "a&b c");
  CHECK(norm("&#65;&#x42;&#X63") == "abc");
  CHECK(norm("&#128;&#0;&#1;") == "\xe2\x82\xac\xef\xbf\xbd");  // cp1252 euro, U+FFFD, dropped
  CHECK(norm("&#xD800;&#99999999999999;") == "\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(norm("&ampx &notit; &copy &unknown; &") == "&x \xc2\xacit; \xc2\xa9 &unknown; &");
  CHECK(norm("&NotNestedGreaterGreater;") == "\xe2\xaa\xa2\xcc\xb8");  // two code points
  CHECK(norm("\xc4\xb0") == "i\xcc\x87");                               // U+0130 -> i + U+0307
  CHECK(norm("\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3") == "\xce\xbf\xce\xb4\xce\xbf\xcf\x82 \xcf\x83");  // final sigma
  CHECK(norm("a\x1c" "b\x1f") == "a\x1c" "b");  // str.strip() removes U+001F, `\s` does not collapse U+001C
}

TEST_CASE("malformed UTF-8 reads as U+FFFD and never fails", "[clip_tokenizer]") {
  const auto& tok = gz_tokenizer();
  const std::string bad = "cat \xff\xfe dog \xe2\x82 \xed\xa0\x80 \xf0\x9f\x90";
  const auto ids = tok.encode(bad);
  const auto replaced = tok.encode("cat \xef\xbf\xbd\xef\xbf\xbd dog \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd");
  CHECK(ids == replaced);
  CHECK(unicode::decode_utf8("\xe0\x80\xaf") == std::u32string{0xFFFD, 0xFFFD, 0xFFFD});  // overlong: 3 subparts
  CHECK(unicode::decode_utf8("\xf4\x90\x80\x80") == std::u32string(4, 0xFFFD));            // above U+10FFFF
  // decode() of a split multi-byte character also yields U+FFFD, like errors="replace".
  std::string lead_byte_symbol;
  unicode::append_utf8(lead_byte_symbol, byte_to_unicode(0xF0));
  const auto lead = tok.token_id(lead_byte_symbol);
  REQUIRE(lead.has_value());
  CHECK(tok.decode(std::vector<std::int32_t>{*lead, tok.encode("cat")[0]}) == "\xef\xbf\xbd" "cat ");
  CHECK_THROWS_AS(tok.decode(std::vector<std::int32_t>{49408}), UnknownNameError);
  CHECK_THROWS_AS(tok.tokens(std::vector<std::int32_t>{-1}), UnknownNameError);
}

TEST_CASE("very long input and concurrent calls give consistent results", "[clip_tokenizer]") {
  const auto& tok = gz_tokenizer();
  const std::string word(100000, 'a');  // one 100k-letter pre-token: BPE must stay fast
  const auto ids = tok.encode(word);
  CHECK(tok.decode(ids) == word + " ");
  std::string many;
  for (int i = 0; i < 20000; ++i) many += "photo of a cat, ";
  auto run = [&] { return tok.encode(many); };
  auto f1 = std::async(std::launch::async, run), f2 = std::async(std::launch::async, run);
  const auto a = f1.get(), b = f2.get();
  CHECK(a == b);
  CHECK(a.size() == 20000 * 5);
}

TEST_CASE("missing or malformed vocabularies give clear errors", "[clip_tokenizer]") {
  const fs::path dir = fs::temp_directory_path() / "latentkit_tokenizer_test";
  fs::create_directories(dir);
  CHECK_THROWS_AS(ClipVocabulary::load(dir / "nope.txt.gz"), IoError);
  try {
    ClipVocabulary::load(dir);
    FAIL("expected IoError");
  } catch (const IoError& e) {
    CHECK(std::string(e.what()).find("vocab.json") != std::string::npos);
  }
  {
    std::ofstream(dir / "vocab.json") << R"({"a": 0, "b": 0})";
    std::ofstream(dir / "merges.txt") << "#version: 0.2\na b\n";
  }
  CHECK_THROWS_AS(ClipVocabulary::load(dir / "vocab.json"), FormatError);
  { std::ofstream(dir / "vocab.json") << R"({"a": 0, "b": 1, "ab": 2})"; }
  const auto v = ClipVocabulary::load(dir);
  try {
    ClipTokenizer tok(v);
    FAIL("expected FormatError");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()).find("vocab.json") != std::string::npos);  // names the file and the token
  }
  { std::ofstream(dir / "bad.txt.gz") << "not gzip at all\n"; }
  CHECK_THROWS_AS(ClipVocabulary::from_bpe_gz(dir / "bad.txt.gz"), FormatError);
  fs::remove_all(dir);
}

TEST_CASE("a moved-from tokenizer throws a clear error instead of crashing", "[clip_tokenizer]") {
  ClipTokenizer source = ClipTokenizer::load(latentkit_test::fixture("clip_tokenizer/bpe_simple_vocab_16e6.txt.gz"));
  const auto expected = source.encode("a photo of a cat");
  ClipTokenizer moved(std::move(source));
  CHECK(moved.encode("a photo of a cat") == expected);
  const std::vector<std::int32_t> ids{moved.bos_id(), expected.front()};
  CHECK_THROWS_AS(source.encode("a photo of a cat"), Error);  // NOLINT(bugprone-use-after-move): the point of the test
  CHECK_THROWS_AS(source.decode(ids), Error);
  CHECK_THROWS_AS(source.tokens(ids), Error);
  CHECK_THROWS_AS(source.token(ids[0]), Error);
  try {
    source.sd_input_ids("x");
    FAIL("expected Error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("moved from") != std::string::npos);
  }
  source = std::move(moved);  // assigning a live tokenizer makes it usable again
  CHECK(source.encode("a photo of a cat") == expected);
}
