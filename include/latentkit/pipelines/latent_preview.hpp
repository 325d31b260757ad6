// A cheap preview of an SD latent without the VAE: each pixel's 4 latent channels mapped linearly to RGB.
// The factors are the widely used SD1.x/SD2.x latent-to-RGB approximation (A1111's "Approx cheap" preview,
// also used by ComfyUI); they give the colours and layout of the final image at 1/8 resolution for the cost
// of 12 multiply-adds per pixel. For a better preview decode with TAESD.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/io/image.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// rgb = sum over c of latent[c] * factors[c] (about [-1, 1]) for UNet-space SD1/SD2 latents.
inline constexpr std::array<std::array<float, 3>, 4> sd_latent_rgb_factors{{
    {0.298f, 0.207f, 0.208f},
    {0.187f, 0.286f, 0.173f},
    {-0.158f, 0.189f, 0.264f},
    {-0.184f, -0.271f, -0.473f},
}};

/// The preview of one [4, h, w] latent (contiguous) as an h x w RGB image.
inline Image latent_preview(const float* latent, index_t channels, index_t h, index_t w) {
  if (channels != 4) throw ShapeError("latent_preview: the approximation is for 4-channel SD latents, got " + std::to_string(channels));
  Image image;
  image.width = static_cast<int>(w), image.height = static_cast<int>(h), image.channels = 3;
  image.pixels.resize(static_cast<std::size_t>(h * w * 3));
  const index_t plane = h * w;
  for (index_t p = 0; p < plane; ++p) {
    for (int rgb = 0; rgb < 3; ++rgb) {
      float v = 0;
      for (index_t c = 0; c < 4; ++c) v += latent[c * plane + p] * sd_latent_rgb_factors[static_cast<std::size_t>(c)][static_cast<std::size_t>(rgb)];
      const float unit = std::clamp((v + 1.0f) * 0.5f, 0.0f, 1.0f);
      image.pixels[static_cast<std::size_t>(p * 3 + rgb)] = static_cast<std::uint8_t>(unit * 255.0f + 0.5f);
    }
  }
  return image;
}

LATENTKIT_NAMESPACE_END
