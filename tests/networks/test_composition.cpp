// The networks composed as a text-to-image run composes them, checked step by step against the recorded
// CompVis / k-diffusion run (txt2img fixture): the UNet on each step's [uncond; cond] batch, the classifier-free
// guided denoiser (UNet inside DiscreteTimeDenoiser inside ClassifierFreeGuidance) at each step's sigma, and the
// VAE decode of the final latent. Tolerances: README section 12 (1e-4 * max(1, max |ref|)).
#include <catch2/catch.hpp>

#include "latentkit/denoisers/guidance.hpp"
#include "latentkit/models/sd_checkpoint.hpp"
#include "latentkit/models/unet_network.hpp"
#include "latentkit/schedules/discrete.hpp"
#include "network_fixtures.hpp"

using namespace latentkit;
using namespace network_test;

namespace {


double bound(TensorView<const float> ref) { return 1e-4 * std::max(1.0, max_abs(ref)); }

}  // namespace

TEST_CASE("txt2img run: every step's UNet batch, guided denoiser and the final decode match the reference") {
  const SafetensorsFile run(latentkit_test::fixture("models/txt2img_sd1_tiny.safetensors"));
  const SafetensorsFile weights(run.path().parent_path() / run.metadata().at("weights"));
  const double cfg_scale = nlohmann::json::parse(run.metadata().at("pipeline")).at("cfg_scale").get<double>();
  const UNet unet = load_unet(weights);
  const AutoencoderKL vae = load_vae(weights);

  const Tensor<float> uncond = run.load<float>("uncond"), cond = run.load<float>("cond");
  Tensor<float> context({2, uncond.size(1), uncond.size(2)});  // the batch order of the run: [uncond; cond]
  copy(uncond.view(), context.view().slice(0, 0, 1));
  copy(cond.view(), context.view().slice(0, 1, 2));
  const Tensor<float> inputs = run.load<float>("step_unet_input"), eps = run.load<float>("step_unet_eps");
  const Tensor<float> t = run.load<float>("step_t"), xs = run.load<float>("step_x"), sigmas = run.load<float>("step_sigma");
  const Tensor<float> denoised = run.load<float>("step_denoised");
  const Tensor<float> alphas = run.load<float>("alphas_cumprod");
  auto model = make_unet_denoiser(unet, DiscreteSchedule<float>::from_alphas_cumprod(
                                            std::span<const float>(alphas.data(), static_cast<std::size_t>(alphas.numel()))));
  ClassifierFreeGuidance<decltype(model)&, xt::xarray<float>> guided(model, to_xarray(uncond.view()), to_xarray(cond.view()),
                                                                     cfg_scale);
  const index_t steps = inputs.size(0);
  REQUIRE(steps >= 1);
  for (index_t i = 0; i < steps; ++i) {
    INFO("step " << i << ", sigma " << sigmas(i));
    const TensorView<const float> want = eps.view().slice(0, i, i + 1).reshape({eps.size(1), eps.size(2), eps.size(3), eps.size(4)});
    const Tensor<float> in = contiguous(inputs.view().slice(0, i, i + 1).reshape(want.shape()));
    const std::vector<float> ti{t(i, 0), t(i, 1)};
    const Tensor<float> got = unet.forward(in.view(), ti, context.view());
    CHECK(max_abs_diff(got.view(), want) <= bound(want));

    const TensorView<const float> d_want =
        denoised.view().slice(0, i, i + 1).reshape({denoised.size(1), denoised.size(2), denoised.size(3), denoised.size(4)});
    const xt::xarray<float> x = to_xarray(xs.view().slice(0, i, i + 1).reshape(d_want.shape()));
    const xt::xarray<float> d = guided(x, static_cast<double>(sigmas(i)));
    const Tensor<float> d_tensor = Tensor<float>::copy_of(TensorView<const float>(d.data(), d_want.shape()));
    CHECK(max_abs_diff(d_tensor.view(), d_want) <= bound(d_want));
  }
  const Tensor<float> image = vae.decode(run.load<float>("decoder_input").view());
  const Tensor<float> image_want = run.load<float>("image_raw");
  CHECK(max_abs_diff(image.view(), image_want.view()) <= bound(image_want.view()));
}
