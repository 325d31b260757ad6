// Finding a model's weights in checkpoints: integer fields of a JSON config stored in safetensors metadata, the
// layer count of a "<prefix>N.<rest>" key family, and a diffusers pipeline folder's component file.
#pragma once
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/io/safetensors.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// The JSON object stored as the string metadata value `key` (a model config, e.g. metadata "unet"); nullopt when
/// the key is absent. Malformed JSON or a non-object throws FormatError naming the file and the key.
inline std::optional<nlohmann::json> metadata_config(const SafetensorsFile& file, const std::string& key) {
  const auto it = file.metadata().find(key);
  if (it == file.metadata().end()) return std::nullopt;
  auto config = nlohmann::json::parse(it->second, nullptr, false);
  if (config.is_discarded() || !config.is_object())
    throw FormatError(file.path().string() + ": metadata '" + key + "' is not a JSON object");
  return config;
}

/// `field` of the JSON object stored as the string metadata value `key` (e.g. metadata "clip" =
/// {"heads": 4, ...}); nullopt when the key or field is absent. Malformed JSON or a non-integer field throws
/// FormatError naming the file and the key.
inline std::optional<std::int64_t> metadata_config_int(const SafetensorsFile& file, const std::string& key,
                                                       const std::string& field) {
  const auto config = metadata_config(file, key);
  if (!config) return std::nullopt;
  const auto f = config->find(field);
  if (f == config->end()) return std::nullopt;
  if (!f->is_number_integer())
    throw FormatError(file.path().string() + ": metadata '" + key + "' field '" + field + "' is not an integer");
  return f->get<std::int64_t>();
}

/// Number of blocks N such that keys "<family>0.", ..., "<family>{N-1}." exist (0 when none). A gap (block 2
/// missing while 3 exists) throws FormatError naming the missing block.
inline index_t count_indexed_blocks(const SafetensorsFile& file, const std::string& family) {
  index_t count = 0, highest = -1;
  for (const auto& t : file.tensors()) {
    if (!t.name.starts_with(family)) continue;
    const std::string_view rest = std::string_view(t.name).substr(family.size());
    index_t n = 0;
    std::size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9' && digits < 9)
      n = n * 10 + (rest[digits++] - '0');
    if (digits == 0 || digits >= rest.size() || rest[digits] != '.') continue;
    highest = std::max(highest, n);
  }
  for (index_t i = 0; i <= highest; ++i) {
    const std::string block = family + std::to_string(i) + ".";
    const auto& ts = file.tensors();
    const auto it = std::lower_bound(ts.begin(), ts.end(), block, [](const TensorInfo& t, const std::string& b) { return t.name < b; });
    if (it == ts.end() || !it->name.starts_with(block))
      throw FormatError(file.path().string() + ": block '" + block + "' is missing but block " + std::to_string(highest) +
                        " exists");
    ++count;
  }
  return count;
}

/// The weights file of a diffusers component folder (`<root>/<component>/` or that folder itself):
/// model.safetensors, else model.fp16.safetensors. Throws IoError listing what was tried.
inline std::filesystem::path diffusers_component_file(const std::filesystem::path& folder, std::string_view component) {
  namespace fs = std::filesystem;
  std::string tried;
  for (const fs::path& dir : {folder / std::string(component), folder}) {
    for (const char* name : {"model.safetensors", "model.fp16.safetensors"}) {
      const fs::path p = dir / name;
      if (fs::is_regular_file(p)) return p;
      tried += "\n  " + p.string();
    }
  }
  throw IoError(folder.string() + ": no diffusers '" + std::string(component) + "' weights; tried:" + tried);
}

/// The parsed config.json beside a diffusers component's weights (an empty object when there is none).
inline nlohmann::json diffusers_component_config(const std::filesystem::path& weights_file) {
  const auto path = weights_file.parent_path() / "config.json";
  if (!std::filesystem::is_regular_file(path)) return nlohmann::json::object();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  auto config = nlohmann::json::parse(s.str(), nullptr, false);
  if (config.is_discarded() || !config.is_object()) throw FormatError(path.string() + ": not a JSON object");
  return config;
}

LATENTKIT_NAMESPACE_END
