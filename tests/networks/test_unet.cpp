// The SD UNet: parity with the CompVis / Stability-AI reference outputs for every UNet io fixture (config and weights
// named in its metadata), determinism across thread counts, and input checks.
#include <catch2/catch.hpp>

#include <vector>

#include "latentkit/denoisers/guidance.hpp"
#include "latentkit/models/unet.hpp"
#include "latentkit/models/unet_network.hpp"
#include "latentkit/schedules/discrete.hpp"
#include "latentkit/nn/parameters.hpp"
#include "network_fixtures.hpp"

using namespace latentkit;
using namespace network_test;

namespace {

struct UNetCase {
  std::string io_file;     ///< models/unet_*_io.safetensors
  std::string output_key;  ///< "eps" (SD1) or "out" (SD2, v)
};
const std::vector<UNetCase>& unet_cases() {
  static const std::vector<UNetCase> cases{{"models/unet_sd1_tiny_io.safetensors", "eps"},
                                           {"models/unet_sd2_tiny_io.safetensors", "out"}};
  return cases;
}

/// The UNet of an io fixture: its metadata config over the SD1.5 preset, weights from the file it names.
UNet unet_of(const SafetensorsFile& io) {
  const auto [file, prefix] = weights_of(io);
  UNet unet(UNetConfig::sd15().with_json(config_of(io), io.path().string()));
  load_parameters(unet, SafetensorsFile(file), prefix);
  return unet;
}

std::vector<float> timesteps_of(const SafetensorsFile& io) {
  const Tensor<float> t = io.load<float>("timesteps");
  return {t.data(), t.data() + t.numel()};
}

}  // namespace

TEST_CASE("UNet matches the reference output of every UNet fixture (max abs <= 1e-4)") {
  for (const auto& c : unet_cases()) {
    DYNAMIC_SECTION(c.io_file) {
      const SafetensorsFile io(latentkit_test::fixture(c.io_file));
      const UNet unet = unet_of(io);
      const Tensor<float> x = io.load<float>("x"), context = io.load<float>("context"), want = io.load<float>(c.output_key);
      const auto t = timesteps_of(io);
      const Tensor<float> got = unet.forward(x.view(), t, context.view());
      const double err = max_abs_diff(got.view(), want.view());
      INFO(c.io_file << ": max |got - want| = " << err << " (max |want| = " << max_abs(want.view()) << ")");
      CHECK(err <= 1e-4);
      // Each item alone gives the same numbers as in the batch (per-item time embedding and context).
      for (index_t b = 0; b < x.size(0); ++b) {
        const Tensor<float> xb = contiguous(x.view().slice(0, b, b + 1)), cb = contiguous(context.view().slice(0, b, b + 1));
        const Tensor<float> one = unet.forward(xb.view(), std::span<const float>(&t[b], 1), cb.view());
        CHECK(max_abs_diff(one.view(), want.view().slice(0, b, b + 1)) <= 1e-4);
      }
    }
  }
}

TEST_CASE("UNet outputs are bit-identical for 1, 2 and 3 threads") {
  for (const auto& c : unet_cases()) {
    const SafetensorsFile io(latentkit_test::fixture(c.io_file));
    const UNet unet = unet_of(io);
    const Tensor<float> x = io.load<float>("x"), context = io.load<float>("context");
    const auto t = timesteps_of(io);
    std::vector<Tensor<float>> results;
    for (int threads : {1, 2, 3}) {
      const ThreadScope scope(threads);
      results.push_back(unet.forward(x.view(), t, context.view()));
    }
    for (std::size_t i = 1; i < results.size(); ++i) CHECK(bit_identical(results[0], results[i]));
  }
}

TEST_CASE("UNet rejects inputs of the wrong shape by name") {
  const SafetensorsFile io(latentkit_test::fixture(unet_cases()[0].io_file));
  const UNet unet = unet_of(io);
  const Tensor<float> x = io.load<float>("x"), context = io.load<float>("context");
  const auto t = timesteps_of(io);
  const index_t f = unet.downsampling_factor();
  const Tensor<float> odd({x.size(0), x.size(1), x.size(2) + 1, x.size(3)});
  if (f > 1) REQUIRE_THROWS_AS(unet.forward(odd.view(), t, context.view()), ShapeError);
  REQUIRE_THROWS_WITH(unet.forward(x.view(), std::span<const float>(t.data(), 1), context.view()), Catch::Contains("timesteps"));
  const Tensor<float> wide({context.size(0), context.size(1), context.size(2) + 1});
  REQUIRE_THROWS_WITH(unet.forward(x.view(), t, wide.view()), Catch::Contains("context"));
}

TEST_CASE("UNet as the network of DiscreteTimeDenoiser and classifier-free guidance") {
  for (const auto& c : unet_cases()) {
    const SafetensorsFile io(latentkit_test::fixture(c.io_file));
    UNet unet = unet_of(io);
    const Tensor<float> x = io.load<float>("x"), context = io.load<float>("context");
    const auto t = timesteps_of(io);
    const xt::xarray<float> x0 = to_xarray(x.view().slice(0, 0, 1)), c0 = to_xarray(context.view().slice(0, 0, 1));
    const xt::xarray<float> c1 = to_xarray(context.view().slice(0, 1, 2));
    // The network form: one timestep for the batch, no copies, the same numbers as forward().
    const UNetNetwork net(unet);
    const xt::xarray<float> out = net(x0, t[0], c0);
    const Tensor<float> direct = unet.forward(contiguous(x.view().slice(0, 0, 1)).view(), std::span<const float>(&t[0], 1),
                                              contiguous(context.view().slice(0, 0, 1)).view());
    CHECK(std::equal(direct.data(), direct.data() + direct.numel(), out.data()));

    for (const Prediction p : {Prediction::epsilon, Prediction::v_prediction}) {
      UNetConfig config = unet.config();
      config.prediction = p;
      UNet typed(config);
      const auto [file, prefix] = weights_of(io);
      load_parameters(typed, SafetensorsFile(file), prefix);
      auto model = make_unet_denoiser(typed, DiscreteSchedule<double>::compvis());
      const double sigma = 3.0;
      const double c_in = 1.0 / std::sqrt(sigma * sigma + 1.0);
      const double tt = DiscreteSchedule<double>::compvis().sigma_to_t(sigma);
      const xt::xarray<float> scaled = x0 * c_in;
      const xt::xarray<float> raw = UNetNetwork(typed)(scaled, tt, c0);
      const xt::xarray<float> want = p == Prediction::epsilon
                                         ? xt::xarray<float>(x0 - sigma * raw)
                                         : xt::xarray<float>(x0 / (sigma * sigma + 1.0) - sigma * c_in * raw);
      const xt::xarray<float> got = model(x0, sigma, c0);
      CHECK(xt::amax(xt::abs(got - want))() <= 1e-5f * (1.0f + xt::amax(xt::abs(want))()));
      // Guidance: one doubled-batch call, u + s (c - u).
      ClassifierFreeGuidance<decltype(model)&, xt::xarray<float>> cfg(model, c0, c1, 7.5);
      const xt::xarray<float> guided = cfg(x0, sigma);
      const xt::xarray<float> u = model(x0, sigma, c0), k = model(x0, sigma, c1);
      const xt::xarray<float> expect = u + 7.5 * (k - u);
      CHECK(xt::amax(xt::abs(guided - expect))() <= 1e-4f * (1.0f + xt::amax(xt::abs(expect))()));
    }
  }
}
