// Loading a model's weights: every layer and model exposes
//   template <class Visit> void visit_parameters(Visit&& visit, const std::string& prefix);
// which calls visit(state_dict_name, TensorView<float> target) once per parameter. The target already has the
// shape the model expects, so a single generic function loads any model from any safetensors file and reports
// every missing key, wrong shape or non-float dtype by name (KeyReport). A target may be a strided view (a row block of a packed
// q|k|v projection, a transposed projection), which is how one layer serves two checkpoint layouts.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/io/safetensors.hpp"
#include "latentkit/nn/weights.hpp"

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

/// Every problem between a model's parameters and a file's tensors, by name, found before anything is copied.
struct KeyReport {
  struct Mismatch {
    std::string key;
    Dims found, expected;
    DType dtype = DType::f32;
  };
  std::string file;
  std::vector<Mismatch> missing;     ///< found is empty
  std::vector<Mismatch> mis_shaped;  ///< found != expected
  std::vector<Mismatch> not_float;   ///< dtype is not F32, F16 or BF16
  std::vector<std::string> unexpected;
  index_t matched = 0;  ///< parameters found with the expected shape and a float dtype

  bool ok() const noexcept { return missing.empty() && unexpected.empty() && mis_shaped.empty() && not_float.empty(); }
  /// One line per problem, each naming the file, the key and what was expected.
  std::string str() const {
    std::string s;
    const auto line = [&](const std::string& text) { s += (s.empty() ? "" : "\n") + text; };
    for (const auto& m : missing) line(file + ": missing tensor '" + m.key + "' (expected float " + m.expected.str() + ")");
    for (const auto& m : mis_shaped)
      line(file + ", tensor '" + m.key + "': shape " + m.found.str() + "; expected " + m.expected.str());
    for (const auto& m : not_float)
      line(file + ", tensor '" + m.key + "': stored as " + std::string(dtype_name(m.dtype)) +
           "; expected F32, F16 or BF16 of shape " + m.expected.str());
    for (const auto& k : unexpected) line(file + ": unexpected tensor '" + k + "'");
    return s.empty() ? file + ": " + std::to_string(matched) + " tensors matched" : s;
  }
};

/// Adds the parameters of `model` (keys = prefix + name) to `report`; `claimed` collects the keys it accounts for.
template <HasParameters Model>
void check_parameters(Model& model, const SafetensorsFile& file, const std::string& prefix, KeyReport& report,
                      std::vector<std::string>* claimed = nullptr) {
  model.visit_parameters(
      [&](const std::string& key, TensorView<float> target) {
        if (claimed) claimed->push_back(key);
        if (!file.contains(key)) return report.missing.push_back({key, Dims{}, target.shape()});
        const TensorInfo& info = file.info(key);
        if (!(info.shape == target.shape())) return report.mis_shaped.push_back({key, info.shape, target.shape()});
        if (info.dtype != DType::f32 && info.dtype != DType::f16 && info.dtype != DType::bf16)
          return report.not_float.push_back({key, info.shape, target.shape(), info.dtype});
        ++report.matched;
      },
      prefix);
}

/// Copies every parameter of `model` from `file` (key = prefix + name), widening F16/BF16 to float, then packs the
/// weights with model.prepare(options) when the model has a prepare. Every missing, mis-shaped or non-float tensor
/// is found first and reported at once (FormatError naming the file, each key and its expected shape); nothing is
/// copied then.
template <HasParameters Model>
void load_parameters(Model& model, const SafetensorsFile& file, const std::string& prefix = "",
                     const WeightOptions& options = {}) {
  KeyReport report;
  report.file = file.path().string();
  check_parameters(model, file, prefix, report);
  if (!report.ok()) throw FormatError(report.str());
  model.visit_parameters(
      [&](const std::string& key, TensorView<float> target) {
        copy(file.load<float>(key).view(), target);
        file.release(key);  // the file's pages need not stay resident beside the model
      },
      prefix);
  if constexpr (requires { model.prepare(options); }) model.prepare(options);
  else if constexpr (requires { model.prepare(); }) model.prepare();
}

LATENTKIT_NAMESPACE_END
