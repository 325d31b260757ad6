// What a discrete-time network predicts: the noise (epsilon), the velocity v, or the clean sample x0.
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/core/names.hpp"

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
  using P = Prediction;
  static constexpr std::array<std::pair<std::string_view, P>, 6> names{{{"epsilon", P::epsilon},
                                                                        {"eps", P::epsilon},
                                                                        {"v_prediction", P::v_prediction},
                                                                        {"v", P::v_prediction},
                                                                        {"sample", P::sample},
                                                                        {"x0", P::sample}}};
  return lookup_name("prediction type", name, names);
}

LATENTKIT_NAMESPACE_END
