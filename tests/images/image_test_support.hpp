// Helpers for the image tests: deterministic pictures, PNG files built chunk by chunk, chunk surgery, and the rule
// that a rejection is an ImageError naming the file.
#pragma once
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "latentkit/io/detail/png_chunks.hpp"
#include "latentkit/io/image.hpp"
#include "latentkit/io/png_writer.hpp"

namespace image_test {

using Bytes = std::vector<std::uint8_t>;

/// A smooth gradient with a little seeded noise: compressible, yet every filter and every byte value occurs.
inline latentkit::Image picture(int width, int height, int channels, unsigned seed = 1) {
  latentkit::Image im{width, height, channels, {}};
  im.pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * static_cast<std::size_t>(channels));
  std::mt19937 rng(seed);
  std::size_t i = 0;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c)
        im.pixels[i++] = static_cast<std::uint8_t>((x * 255 / (width > 1 ? width - 1 : 1) + y * 3 + c * 60 + static_cast<int>(rng() % 5)) & 0xFF);
  return im;
}

/// The byte offset of the first chunk of `type` (its length field); 0 when there is none.
inline std::size_t chunk_offset(const Bytes& png, std::string_view type) {
  std::size_t at = 0;
  latentkit::detail::walk_png_chunks(png, "chunk_offset", [&](const latentkit::detail::PngChunk& c) {
    if (at == 0 && c.type == type) at = c.offset;
  });
  return at;
}

/// Rewrites the CRC of the chunk whose length field is at `offset` (after its bytes were edited).
inline void fix_crc(Bytes& png, std::size_t offset) {
  const std::uint32_t length = latentkit::detail::load_be32(png.data() + offset);
  latentkit::detail::store_be32(png.data() + offset + 8 + length,
                                latentkit::detail::png_crc({png.data() + offset + 4, std::size_t{length} + 4}));
}

/// A PNG from the signature, a valid IHDR for `width` x `height` RGB, the given extra chunks and IEND; no IDAT
/// unless one is passed.
inline Bytes png_with_chunks(std::uint32_t width, std::uint32_t height,
                             const std::vector<std::pair<std::string, Bytes>>& chunks) {
  Bytes out(latentkit::detail::png_signature.begin(), latentkit::detail::png_signature.end());
  std::uint8_t ihdr[13] = {};
  latentkit::detail::store_be32(ihdr, width);
  latentkit::detail::store_be32(ihdr + 4, height);
  ihdr[8] = 8;
  ihdr[9] = 2;
  latentkit::detail::append_png_chunk(out, "IHDR", ihdr);
  for (const auto& [type, data] : chunks) latentkit::detail::append_png_chunk(out, type.c_str(), data);
  latentkit::detail::append_png_chunk(out, "IEND", {});
  return out;
}

inline Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

/// `f()` must throw ImageError whose message contains `name` and every entry of `words`.
template <class F>
void require_image_error(F&& f, const std::string& name, const std::vector<std::string>& words = {}) {
  std::string message;
  try {
    f();
  } catch (const latentkit::ImageError& e) {
    message = e.what();
  }
  INFO("message: " << message);
  REQUIRE_FALSE(message.empty());
  CHECK_THAT(message, Catch::Contains(name));
  for (const auto& w : words) CHECK_THAT(message, Catch::Contains(w));
}

}  // namespace image_test
