// Resolution changes of the SD networks:
//   Downsample  3x3 stride-2 conv: padding 1 in the UNet (key "op."), (0, 1, 0, 1) in the VAE (key "conv.",
//               ldm pads the bottom and right by one, then convolves without padding)
//   Upsample    nearest 2x, then a 3x3 "same" conv (key "conv.")
#pragma once
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/resample.hpp"
#include "latentkit/nn/conv2d.hpp"

LATENTKIT_NAMESPACE_BEGIN

enum class DownsamplePadding { symmetric, bottom_right };

class Downsample {
 public:
  Downsample() = default;
  Downsample(index_t in_channels, index_t out_channels, DownsamplePadding padding, std::string name)
      : conv(in_channels, out_channels, 3,
             padding == DownsamplePadding::symmetric ? Conv2dGeometry::padded(1, 2) : Conv2dGeometry{2, 2, 0, 1, 0, 1}),
        name_(std::move(name)) {}

  Conv2d conv;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    conv.visit_parameters(visit, prefix + name_);
  }
  void prepare(const WeightOptions& options = {}) { conv.prepare(options); }
  Tensor<float> forward(TensorView<const float> x, Profile* profile = nullptr) const { return conv.forward(x, profile); }

 private:
  std::string name_ = "op.";
};

class Upsample {
 public:
  Upsample() = default;
  Upsample(index_t in_channels, index_t out_channels) : conv(in_channels, out_channels, 3, Conv2dGeometry::padded(1)) {}

  Conv2d conv;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    conv.visit_parameters(visit, prefix + "conv.");
  }
  void prepare(const WeightOptions& options = {}) { conv.prepare(options); }
  Tensor<float> forward(TensorView<const float> x, Profile* profile = nullptr) const {
    Tensor<float> up;
    {
      const ProfileScope scope(profile, LayerKind::other);
      up = upsample_nearest2x(x);
    }
    return conv.forward(up.view(), profile);
  }
};

LATENTKIT_NAMESPACE_END
