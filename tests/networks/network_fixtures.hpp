// Shared by the networks tests: the model io fixtures (inputs, reference outputs, the config and the weights file
// named in their metadata); comparisons and thread-count scopes from support/compare.hpp.
#pragma once
#include <string>

#include <nlohmann/json.hpp>
#include <xtensor/xarray.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/interop.hpp"
#include "latentkit/io/safetensors.hpp"
#include "support/compare.hpp"
#include "support/fixtures.hpp"

namespace network_test {

/// An io fixture's metadata "weights" = "<file> (prefix <prefix>)": the weights file beside it and the key prefix.
struct WeightsRef {
  std::filesystem::path file;
  std::string prefix;
};
inline WeightsRef weights_of(const latentkit::SafetensorsFile& io) {
  const std::string text = io.metadata().at("weights");
  const auto open = text.find(" (prefix ");
  REQUIRE(open != std::string::npos);
  const auto close = text.rfind(')');
  return {io.path().parent_path() / text.substr(0, open), text.substr(open + 9, close - open - 9)};
}

inline nlohmann::json config_of(const latentkit::SafetensorsFile& io) { return nlohmann::json::parse(io.metadata().at("config")); }

/// An owning xarray copy of a view (the latent type the samplers' tests use), through core/interop.hpp.
inline xt::xarray<float> to_xarray(latentkit::TensorView<const float> v) { return latentkit::as_xarray(v); }

using latentkit_test::bit_identical;
using latentkit_test::max_abs;
using latentkit_test::max_abs_diff;
using latentkit_test::ThreadScope;

}  // namespace network_test
