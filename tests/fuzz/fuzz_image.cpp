// libFuzzer target for the image readers (run with scripts/fuzz image [SECONDS]): arbitrary bytes through
// decode_image (PNG and JPEG, every want_channels) and png_text_from_bytes. Any input must decode, or be refused
// with an ImageError; never crash, hang, leak or read out of bounds. What decodes is checked for consistency and
// written back: the re-encoded PNG must decode to the same pixels and carry the same text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/io/image.hpp"
#include "latentkit/io/png_text.hpp"
#include "latentkit/io/png_writer.hpp"

namespace {

using namespace latentkit;

void check_image(const Image& im, int want) {
  if (im.width < 1 || im.height < 1 || im.width > image_max_side || im.height > image_max_side) std::abort();
  if (want != 0 && im.channels != want) std::abort();
  if (im.channels < 1 || im.channels > 4) std::abort();
  if (im.pixels.size() != static_cast<std::size_t>(im.width) * static_cast<std::size_t>(im.height) * static_cast<std::size_t>(im.channels))
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  std::vector<std::pair<std::string, std::string>> text;
  try {
    text = png_text_from_bytes(bytes, "fuzz-input.png");
  } catch (const ImageError&) {
  }
  for (const int want : {0, 3}) {
    Image im;
    try {
      im = decode_image(bytes, "fuzz-input", want);
    } catch (const ImageError&) {
      continue;  // refused cleanly
    }
    check_image(im, want);
    if (want != 0 || static_cast<std::size_t>(im.width) * static_cast<std::size_t>(im.height) > (1u << 20)) continue;
    std::vector<std::pair<std::string, std::string>> writable;  // text the writer accepts (keywords are ASCII there)
    for (const auto& [k, v] : text) {
      bool ascii_key = !k.empty() && k.size() <= 79 && k.front() != ' ' && k.back() != ' ' && k.find("  ") == std::string::npos;
      for (const char c : k) ascii_key = ascii_key && c >= 32 && c <= 126;
      if (ascii_key && v.find('\0') == std::string::npos) writable.emplace_back(k, v);
    }
    const auto png = encode_png(im, writable);  // must not throw: the image and the kept text are valid
    const Image back = decode_image(png, "round-trip", 0);
    if (back.width != im.width || back.height != im.height || back.channels != im.channels || back.pixels != im.pixels)
      std::abort();
    if (png_text_from_bytes(png, "round-trip") != writable) std::abort();
  }
  return 0;
}
