// The UNet as the network of a DiscreteTimeDenoiser: net(x_in, t, context) for latents that sampler code works on
// (xt::xarray<float> or any contiguous BatchableLatent). Every item of the batch gets the same float32 timestep, as
// in k-diffusion's CompVisDenoiser; the float32 latent and context go to the UNet without a copy.
//
//   UNet unet = load_unet(file);
//   auto model = make_unet_denoiser(unet, DiscreteSchedule::compvis());   // epsilon or v from the UNet's config
//   ClassifierFreeGuidance cfg(model, uncond, cond, 7.5);                  // one UNet call on [uncond; cond]
#pragma once
#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/denoisers/discrete_time.hpp"
#include "latentkit/denoisers/guidance.hpp"
#include "latentkit/models/unet.hpp"

LATENTKIT_NAMESPACE_BEGIN

class UNetNetwork {
 public:
  explicit UNetNetwork(const UNet& unet, Profile* profile = nullptr) : unet_(&unet), profile_(profile) {}

  template <BatchableLatent X>
  X operator()(const X& x, double t, const X& context) const {
    const auto view_of = [](const X& v) {
      Dims shape;
      for (const auto d : v.shape()) shape.push_back(static_cast<index_t>(d));
      return std::pair{shape, v.data()};
    };
    const auto [xs, xd] = view_of(x);
    const auto [cs, cd] = view_of(context);
    if (xs.rank() != 4 || cs.rank() != 3)
      throw ShapeError("UNetNetwork: latent " + xs.str() + " must be [B, C, H, W] and context " + cs.str() + " [B, tokens, D]");
    const std::vector<float> steps(static_cast<std::size_t>(xs[0]), static_cast<float>(t));
    Tensor<float> out;
    if constexpr (std::is_same_v<typename X::value_type, float>) {
      out = unet_->forward(TensorView<const float>(xd, xs), steps, TensorView<const float>(cd, cs), profile_);
    } else {
      Tensor<float> xf(xs), cf(cs);
      std::copy(xd, xd + xs.numel(), xf.data());
      std::copy(cd, cd + cs.numel(), cf.data());
      out = unet_->forward(xf.view(), steps, cf.view(), profile_);
    }
    X result = X::from_shape(x.shape());
    std::copy(out.data(), out.data() + out.numel(), result.data());
    return result;
  }

  const UNet& unet() const noexcept { return *unet_; }

 private:
  const UNet* unet_;
  Profile* profile_;
};

/// D(x, sigma, context) for `unet` on `schedule`, predicting what the UNet's config says (epsilon or v).
template <DiscreteTimeSchedule Schedule>
DiscreteTimeDenoiser<UNetNetwork, Schedule> make_unet_denoiser(const UNet& unet, Schedule schedule, Profile* profile = nullptr,
                                                                bool quantize = false) {
  return {UNetNetwork(unet, profile), std::move(schedule), unet.config().prediction, quantize};
}

LATENTKIT_NAMESPACE_END
