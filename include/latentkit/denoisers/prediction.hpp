// What a discrete-time network predicts: the noise (epsilon), the velocity v, or the clean sample x0.
#pragma once
#include <string>
#include <string_view>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// epsilon: the added noise (SD 1.x, SD 2 base); v_prediction: v = sqrt(a) eps - sqrt(1-a) x0 (SD 2 768-v);
/// sample: x0 itself. Names are diffusers' `prediction_type` strings.
enum class Prediction { epsilon, v_prediction, sample };

inline std::string_view prediction_name(Prediction p) noexcept {
  switch (p) {
    case Prediction::epsilon: return "epsilon";
    case Prediction::v_prediction: return "v_prediction";
    case Prediction::sample: return "sample";
  }
  return "epsilon";
}

inline Prediction parse_prediction(std::string_view name) {
  if (name == "epsilon" || name == "eps") return Prediction::epsilon;
  if (name == "v_prediction" || name == "v") return Prediction::v_prediction;
  if (name == "sample" || name == "x0") return Prediction::sample;
  throw unknown_name("prediction type", name, {"epsilon", "eps", "v_prediction", "v", "sample", "x0"});
}

LATENTKIT_NAMESPACE_END
