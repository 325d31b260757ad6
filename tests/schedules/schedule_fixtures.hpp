// Helpers shared by the schedules tests: fixture loading and the README's tolerances.
#pragma once
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/io/safetensors.hpp"
#include "latentkit/schedules/training.hpp"
#include "support/fixtures.hpp"

namespace schedules_test {

inline nlohmann::json load_json(const std::string& relative) {
  return nlohmann::json::parse(latentkit_test::read_text(latentkit_test::fixture(relative)));
}

template <class T>
std::vector<T> to_vector(const latentkit::SafetensorsFile& f, const std::string& key) {
  const latentkit::Tensor<T> t = f.load<T>(key);
  return std::vector<T>(t.data(), t.data() + t.numel());
}

/// The README's tolerances: float32 values recomputed in float32 rtol 2e-6, float64 rtol 1e-12.
inline double rtol_for(const std::string& dtype) {
  if (dtype == "float32" || dtype == "F32") return 2e-6;
  if (dtype == "float64" || dtype == "F64") return 1e-12;
  FAIL("unexpected dtype " << dtype);
  return 0;
}

/// Element-wise |got - want| <= rtol * |want| (so an expected 0 must be exactly 0), with the first failure
/// reported by index.
template <class A, class B>
void require_close(const std::vector<A>& got, const std::vector<B>& want, double rtol, const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (!(std::fabs(g - w) <= rtol * std::fabs(w))) {
      INFO("index " << i << ": got " << std::setprecision(17) << g << ", expected " << w << ", rtol " << rtol);
      CHECK(std::fabs(g - w) <= rtol * std::fabs(w));
      return;
    }
  }
  SUCCEED();
}

template <class A>
void require_equal(const std::vector<A>& got, const std::vector<std::int64_t>& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("index " << i);
    REQUIRE(static_cast<std::int64_t>(got[i]) == want[i]);
  }
}

/// The training schedule the fixtures were generated with (schedules.json "train").
inline latentkit::TrainingSchedule fixture_training(const nlohmann::json& doc) {
  const auto& t = doc.at("train");
  latentkit::TrainingSchedule s;
  s.beta_schedule = latentkit::parse_beta_schedule(t.at("beta_schedule").get<std::string>());
  s.num_train_timesteps = t.at("num_train_timesteps").get<latentkit::index_t>();
  s.beta_start = t.at("beta_start").get<double>();
  s.beta_end = t.at("beta_end").get<double>();
  return s;
}

}  // namespace schedules_test

namespace schedules_test {
template <class T>
std::vector<double> to_double(const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); }
}  // namespace schedules_test
