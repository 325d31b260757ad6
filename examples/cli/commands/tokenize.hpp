// `latentkit tokenize [--tokenizer PATH] [--openclip] TEXT...`: CLIP token ids and strings of a prompt, the 77-token
// encoder row, and the A1111 chunks with per-token weights when the prompt uses emphasis syntax or BREAK.
#pragma once
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cli_support.hpp"
#include "latentkit/text/prompt_chunks.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"

namespace latentkit_cli {

inline constexpr std::string_view tokenize_usage =
    "usage: latentkit tokenize [--tokenizer PATH] [--openclip] TEXT...\n"
    "\n"
    "Prints the CLIP token ids and token strings of TEXT (several arguments are joined with spaces) and the\n"
    "77-token encoder row. If TEXT uses emphasis syntax ((word), [word], (word:1.3)) or BREAK, also prints the\n"
    "A1111 chunks of 75 tokens with each token's weight.\n"
    "  --tokenizer PATH  bpe_simple_vocab_16e6.txt.gz, a vocab.json (merges.txt beside it) or a folder holding\n"
    "                    one (alias: --vocab); default: $LATENTKIT_TOKENIZER, then ~/.cache/latentkit,\n"
    "                    /usr/local/share/latentkit, /usr/share/latentkit\n"
    "  --openclip        SD2 conventions: <start_of_text>/<end_of_text> literals, rows padded with 0\n"
    "Exit status: 0 on success, 1 on a bad command line, 2 if the vocabulary is missing or malformed.\n";

namespace detail {

inline void print_ids(std::string_view label, std::span<const std::int32_t> ids) {
  std::printf("%.*s", static_cast<int>(label.size()), label.data());
  for (auto id : ids) std::printf(" %d", id);
  std::printf("\n");
}

inline bool has_prompt_syntax(std::string_view text) {
  const auto fragments = latentkit::parse_prompt_attention(text);
  return !(fragments.size() == 1 && fragments[0].weight == 1.0 && fragments[0].text == text);
}

}  // namespace detail

inline int tokenize(std::span<const std::string_view> args) {
  if (wants_help(args)) {
    std::fputs(std::string(tokenize_usage).c_str(), stdout);
    return exit_ok;
  }
  std::optional<std::string> vocab;
  bool openclip = false;
  std::string text;
  bool have_text = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--tokenizer" || args[i] == "--vocab") {
      if (i + 1 >= args.size()) {
        print_error("tokenize", std::string(args[i]) + " needs a path");
        return exit_usage;
      }
      vocab = std::string(args[++i]);
    } else if (args[i] == "--openclip") {
      openclip = true;
    } else if (args[i].starts_with("--")) {
      print_error("tokenize", "unknown option '" + std::string(args[i]) + "' (see latentkit help tokenize)");
      return exit_usage;
    } else {
      text += (have_text ? " " : "") + std::string(args[i]);
      have_text = true;
    }
  }
  if (!have_text) {
    std::fputs(std::string(tokenize_usage).c_str(), stderr);
    return exit_usage;
  }
  const auto flavor = openclip ? latentkit::ClipFlavor::open_clip : latentkit::ClipFlavor::openai;
  const auto tok = vocab ? latentkit::ClipTokenizer::load(*vocab, flavor) : latentkit::ClipTokenizer::load_default(flavor);
  const auto padding = openclip ? latentkit::ClipPadding::zero : latentkit::ClipPadding::end_token;

  const auto ids = tok.encode(text);
  std::printf("ids (%zu%s):", ids.size(), ids.size() > 75 ? ", truncated to 75 in the row" : "");
  detail::print_ids("", ids);
  std::printf("tokens:");
  for (const auto& t : tok.tokens(ids)) std::printf(" %s", t.c_str());
  std::printf("\n");
  detail::print_ids(openclip ? "row (77, OpenCLIP, pad 0):" : "row (77, SD1, pad 49407):", tok.input_ids(text, padding));

  if (detail::has_prompt_syntax(text)) {
    latentkit::PromptChunkOptions options;
    options.padding = padding;
    const auto prompt = latentkit::tokenize_prompt(tok, text, options);
    std::printf("weighted prompt: %zu chunk(s), %zu tokens\n", prompt.chunks.size(), prompt.token_count);
    for (std::size_t c = 0; c < prompt.chunks.size(); ++c) {
      const auto& chunk = prompt.chunks[c];
      std::printf("chunk %zu:", c);
      // Skip the start token and the padding: show the prompt's own tokens with their weights.
      for (std::size_t k = 1; k + 1 < chunk.tokens.size(); ++k) {
        if (chunk.tokens[k] == tok.eos_id() || chunk.tokens[k] == 0) break;
        std::printf(" %s(%d)*%.6g", tok.token(chunk.tokens[k]).c_str(), chunk.tokens[k], static_cast<double>(chunk.weights[k]));
      }
      std::printf("\n");
    }
  }
  return exit_ok;
}

}  // namespace latentkit_cli
