// libFuzzer target: arbitrary bytes through the CLIP tokenizer (cleaning, pre-tokeniser, BPE, decode, rows)
// and the prompt pipeline (emphasis parser, chunking). Run with: scripts/fuzz tokenizer SECONDS
// The vocabulary comes from $LATENTKIT_FIXTURES/clip_tokenizer (default ../shared/fixtures, then the folder
// beside this checkout), loaded once.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "latentkit/text/prompt_chunks.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"

namespace {

const latentkit::ClipTokenizer& tokenizer() {
  static const latentkit::ClipTokenizer tok = [] {
    namespace fs = std::filesystem;
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("LATENTKIT_FIXTURES"); env && *env) candidates.emplace_back(env);
    candidates.emplace_back("../shared/fixtures");
    candidates.push_back(fs::path(__FILE__).parent_path() / "../../../shared/fixtures");
    for (const auto& dir : candidates)
      if (fs::is_regular_file(dir / "clip_tokenizer/bpe_simple_vocab_16e6.txt.gz"))
        return latentkit::ClipTokenizer::load(dir / "clip_tokenizer/bpe_simple_vocab_16e6.txt.gz");
    std::abort();  // no vocabulary: a setup error, not a finding
  }();
  return tok;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& tok = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto ids = tok.encode(text);
  for (auto id : ids) check(id >= 0 && static_cast<std::size_t>(id) < tok.vocab_size());
  const std::string decoded = tok.decode(ids);
  check(tok.tokens(ids).size() == ids.size());
  const auto row = tok.sd_input_ids(text);
  check(row.size() == 77 && row.front() == tok.bos_id());
  check(tok.openclip_input_ids(text).size() == 77);
  // Decoding is total over valid ids, even byte sequences that are not UTF-8.
  std::vector<std::int32_t> raw;
  for (std::size_t i = 0; i + 1 < size && raw.size() < 64; i += 2)
    raw.push_back(static_cast<std::int32_t>((data[i] | (data[i + 1] << 8)) % tok.vocab_size()));
  (void)tok.decode(raw);

  try {
    const auto prompt = latentkit::tokenize_prompt(tok, text);
    check(!prompt.chunks.empty());
    for (const auto& c : prompt.chunks) check(c.tokens.size() == 77 && c.weights.size() == 77);
  } catch (const latentkit::FormatError&) {
    // "(a:1.2.3)": a weight Python's float() rejects; A1111 fails the same way.
  }
  return 0;
}
