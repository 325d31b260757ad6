// Reading a model config stored as JSON (safetensors metadata, a diffusers config.json): typed fields that keep
// their current value when absent and throw FormatError naming the source, the model and the field when mistyped.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/shape.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// The error of an invalid model config: "<where>: <model> config: <what>".
[[noreturn]] inline void config_error(const std::string& where, const std::string& model, const std::string& what) {
  throw FormatError(where + ": " + model + " config: " + what);
}

class ConfigFields {
 public:
  /// `where` names the file (or other source), `model` the config ("UNet", "VAE") in messages.
  ConfigFields(const nlohmann::json& j, std::string where, std::string model)
      : j_(j), where_(std::move(where)), model_(std::move(model)) {
    if (!j_.is_object()) fail("the config is not a JSON object");
  }

  bool has(const char* field) const { return j_.contains(field); }
  const nlohmann::json& json() const noexcept { return j_; }

  void integer(const char* field, index_t& out) const {
    if (const auto it = j_.find(field); it != j_.end()) {
      if (!it->is_number_integer()) fail(std::string("field '") + field + "' is not an integer");
      out = it->get<index_t>();
    }
  }
  void number(const char* field, double& out) const {
    if (const auto it = j_.find(field); it != j_.end()) {
      if (!it->is_number()) fail(std::string("field '") + field + "' is not a number");
      out = it->get<double>();
    }
  }
  void boolean(const char* field, bool& out) const {
    if (const auto it = j_.find(field); it != j_.end()) {
      if (!it->is_boolean()) fail(std::string("field '") + field + "' is not a boolean");
      out = it->get<bool>();
    }
  }
  /// A list of integers; `allow_empty` for lists such as attn_resolutions that may be [].
  void integers(const char* field, std::vector<index_t>& out, bool allow_empty = false) const {
    if (const auto it = j_.find(field); it != j_.end()) {
      if (!it->is_array() || (it->empty() && !allow_empty)) fail(std::string("field '") + field + "' is not a list");
      out.clear();
      for (const auto& v : *it) {
        if (!v.is_number_integer()) fail(std::string("field '") + field + "' holds a non-integer");
        out.push_back(v.get<index_t>());
      }
    }
  }

  [[noreturn]] void fail(const std::string& what) const { config_error(where_, model_, what); }

 private:
  const nlohmann::json& j_;
  std::string where_, model_;
};

LATENTKIT_NAMESPACE_END
