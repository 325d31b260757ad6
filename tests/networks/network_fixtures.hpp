// Shared by the networks tests: the model io fixtures (inputs, reference outputs, the config and the weights file
// named in their metadata), comparisons and thread-count scopes.
#pragma once
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/io/safetensors.hpp"
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

inline double max_abs_diff(latentkit::TensorView<const float> a, latentkit::TensorView<const float> b) {
  REQUIRE(a.shape() == b.shape());
  const auto ad = latentkit::contiguous(a), bd = latentkit::contiguous(b);
  double m = 0;
  for (latentkit::index_t i = 0; i < ad.numel(); ++i)
    m = std::max(m, std::abs(static_cast<double>(ad.data()[i]) - bd.data()[i]));
  return m;
}
inline double max_abs(latentkit::TensorView<const float> a) {
  const auto ad = latentkit::contiguous(a);
  double m = 0;
  for (latentkit::index_t i = 0; i < ad.numel(); ++i) m = std::max(m, std::abs(static_cast<double>(ad.data()[i])));
  return m;
}
inline bool bit_identical(const latentkit::Tensor<float>& a, const latentkit::Tensor<float>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(float)) == 0;
}

/// Sets the OpenMP thread count for a scope (no-op without OpenMP).
struct ThreadScope {
  explicit ThreadScope(int n) : saved(latentkit::max_threads()) { set(n); }
  ~ThreadScope() { set(saved); }
  static void set([[maybe_unused]] int n) {
#if LATENTKIT_HAS_OPENMP
    omp_set_num_threads(n);
#endif
  }
  int saved;
};

}  // namespace network_test
