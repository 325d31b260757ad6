// Loading a model's weights: every layer and model exposes
//   template <class Visit> void visit_parameters(Visit&& visit, const std::string& prefix);
// which calls visit(state_dict_name, TensorView<float> target) once per parameter. The target already has the
// shape the model expects, so a single generic function loads any model from any safetensors file and reports a
// missing key, a wrong shape or a non-float dtype by name. A target may be a strided view (a row block of a packed
// q|k|v projection, a transposed projection), which is how one layer serves two checkpoint layouts.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/io/safetensors.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Something whose parameters can be walked as (name, float view) pairs.
template <class Model>
concept HasParameters = requires(Model& m) {
  m.visit_parameters([](const std::string&, TensorView<float>) {}, std::string());
};

/// The state-dict names a model expects, in visiting order.
template <HasParameters Model>
std::vector<std::string> parameter_names(Model& model, const std::string& prefix = "") {
  std::vector<std::string> names;
  model.visit_parameters([&](const std::string& name, TensorView<float>) { names.push_back(name); }, prefix);
  return names;
}

/// Copies every parameter of `model` from `file` (key = prefix + name), widening F16/BF16 to float, then calls
/// model.prepare() (weight packing) when the model has one. Throws FormatError naming the file and the key when a
/// tensor is missing, has another shape or is not a floating-point tensor.
template <HasParameters Model>
void load_parameters(Model& model, const SafetensorsFile& file, const std::string& prefix = "") {
  const std::string where = file.path().string();
  model.visit_parameters(
      [&](const std::string& key, TensorView<float> target) {
        if (!file.contains(key))
          throw FormatError(where + ": missing tensor '" + key + "' (expected float " + target.shape().str() + ")");
        const TensorInfo& info = file.info(key);
        if (info.dtype != DType::f32 && info.dtype != DType::f16 && info.dtype != DType::bf16)
          throw FormatError(where + ", tensor '" + key + "': stored as " + std::string(dtype_name(info.dtype)) +
                            "; expected F32, F16 or BF16 of shape " + target.shape().str());
        if (!(info.shape == target.shape()))
          throw FormatError(where + ", tensor '" + key + "': shape " + info.shape.str() + "; expected " +
                            target.shape().str());
        const Tensor<float> value = file.load<float>(key);
        copy(value.view(), target);
      },
      prefix);
  if constexpr (requires { model.prepare(); }) model.prepare();
}

LATENTKIT_NAMESPACE_END
