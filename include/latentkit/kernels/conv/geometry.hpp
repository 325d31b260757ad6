// Geometry of a 2-D convolution: stride and zero padding (asymmetric padding allowed, as the SD VAE's
// downsampling convolution pads only the bottom and right by one).
#pragma once
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/shape.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct Conv2dGeometry {
  index_t stride_h = 1, stride_w = 1;
  index_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;

  /// Symmetric padding `pad` on every side with stride `stride` (3x3 "same": padded(1)).
  static constexpr Conv2dGeometry padded(index_t pad, index_t stride = 1) noexcept {
    return {stride, stride, pad, pad, pad, pad};
  }

  /// Output extent along one axis; throws ShapeError when the kernel does not fit or a parameter is invalid.
  index_t output_extent(index_t input, index_t kernel, bool vertical) const {
    const index_t stride = vertical ? stride_h : stride_w;
    const index_t padded = input + (vertical ? pad_top + pad_bottom : pad_left + pad_right);
    if (stride < 1 || kernel < 1 || pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0)
      throw ShapeError("conv2d: stride and kernel size must be >= 1 and padding >= 0");
    if (padded < kernel)
      throw ShapeError(std::string("conv2d: ") + (vertical ? "height " : "width ") + std::to_string(input) +
                       " plus padding is smaller than the kernel (" + std::to_string(kernel) + ")");
    return (padded - kernel) / stride + 1;
  }
};

LATENTKIT_NAMESPACE_END
