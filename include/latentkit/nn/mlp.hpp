// Transformer feed-forward block: fc2(act(fc1(x))). The activation is a policy chosen per model: QuickGELU for the
// openai CLIP text tower (SD1), exact GELU for OpenCLIP (SD2/SDXL) and HF configs saying hidden_act "gelu".
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/core/names.hpp"
#include "latentkit/kernels/activation.hpp"
#include "latentkit/nn/linear.hpp"

LATENTKIT_NAMESPACE_BEGIN

enum class Activation { quick_gelu, gelu, gelu_tanh };

/// The HF `hidden_act` spelling of an activation.
inline std::string_view activation_name(Activation a) noexcept {
  switch (a) {
    case Activation::quick_gelu: return "quick_gelu";
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu_new";
  }
  return "?";
}

/// Parses an HF `hidden_act` value ("quick_gelu", "gelu", "gelu_new"/"gelu_pytorch_tanh").
inline Activation parse_activation(std::string_view name) {
  using A = Activation;
  static constexpr std::array<std::pair<std::string_view, A>, 4> names{
      {{"quick_gelu", A::quick_gelu}, {"gelu", A::gelu}, {"gelu_new", A::gelu_tanh}, {"gelu_pytorch_tanh", A::gelu_tanh}}};
  return lookup_name("activation", name, names);
}

/// y = act(x), elementwise; y may be x.
inline void apply_activation(Activation a, TensorView<const float> x, TensorView<float> y) {
  switch (a) {
    case Activation::quick_gelu: quick_gelu(x, y); return;
    case Activation::gelu: gelu(x, y); return;
    case Activation::gelu_tanh: gelu_tanh(x, y); return;
  }
}

/// State-dict names of the two projections (HF CLIP: fc1/fc2; OpenCLIP and openai CLIP: c_fc/c_proj).
struct MlpNames {
  std::string_view fc1 = "fc1.";
  std::string_view fc2 = "fc2.";
};

class Mlp {
 public:
  Mlp() = default;
  Mlp(index_t width, index_t hidden, Activation activation, MlpNames names = {})
      : fc1(width, hidden), fc2(hidden, width), activation(activation), names(names) {}

  Linear fc1, fc2;
  Activation activation = Activation::gelu;
  MlpNames names;

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    fc1.visit_parameters(visit, prefix + std::string(names.fc1));
    fc2.visit_parameters(visit, prefix + std::string(names.fc2));
  }
  void prepare() {
    fc1.prepare();
    fc2.prepare();
  }

  /// y [rows, width] = fc2(act(fc1(x))) for x [rows, width].
  void forward(TensorView<const float> x, TensorView<float> y) const {
    Tensor<float> h({x.size(0), fc1.out_features()});
    fc1.forward(x, h.view());
    apply_activation(activation, h.view(), h.view());
    fc2.forward(h.view(), y);
  }
};

LATENTKIT_NAMESPACE_END
