// `latentkit inspect FILE [--json]`: what a .safetensors file holds, without loading any tensor data.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "latentkit/io/safetensors.hpp"
#include "latentkit/models/sd_checkpoint.hpp"

namespace latentkit_cli {

inline constexpr std::string_view inspect_usage =
    "usage: latentkit inspect FILE [--json]\n"
    "\n"
    "Validates a .safetensors file and lists every tensor (name, dtype, shape, bytes), the totals (tensor\n"
    "count, parameters, bytes, and the same per dtype) and the __metadata__ entries (long values shortened).\n"
    "For a Stable Diffusion checkpoint it also names the family (SD1.x, SD2.x, SDXL), the components (UNet, VAE,\n"
    "text encoder) with their configs and where each came from (metadata or tensor shapes), the default\n"
    "prediction (SD2.x: v), and every missing, unexpected or mis-shaped key.\n"
    "  --json   print the same as one JSON object (metadata values in full)\n"
    "Exit status: 0 on success, 1 on a bad command line, 2 if the file is missing or malformed.\n";

namespace detail {

struct DTypeTotals {
  std::uint64_t count = 0, parameters = 0, bytes = 0;
};

/// Metadata values can be whole JSON configs: show them on one line, control characters escaped, cut after
/// about `limit` bytes (never inside a UTF-8 sequence).
inline std::string one_line(std::string_view text, std::size_t limit = 100) {
  std::size_t cut = text.size();
  if (cut > limit) {
    cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  }
  std::string out;
  for (char c : text.substr(0, cut)) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) out += '?';
    else out += c;
  }
  if (cut < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

inline std::map<latentkit::DType, DTypeTotals> totals_by_dtype(const latentkit::SafetensorsFile& f) {
  std::map<latentkit::DType, DTypeTotals> by;
  for (const auto& t : f.tensors()) {
    auto& s = by[t.dtype];
    ++s.count;
    s.parameters += static_cast<std::uint64_t>(t.numel());
    s.bytes += t.nbytes;
  }
  return by;
}

/// The Stable Diffusion view of a file: family, components, configs and the key report, as JSON (null when the
/// file is no SD checkpoint; {"error": ...} when its configs cannot be read).
inline nlohmann::ordered_json checkpoint_summary(const latentkit::SafetensorsFile& f) {
  using namespace latentkit;
  try {
    const CheckpointInfo info = inspect_checkpoint(f);
    if (info.family == ModelFamily::unknown && !info.has_unet && !info.has_vae) return nullptr;
    nlohmann::ordered_json out;
    out["family"] = std::string(family_name(info.family));
    nlohmann::ordered_json components = nlohmann::ordered_json::array();
    if (info.unet) {
      const UNetConfig& c = *info.unet;
      components.push_back({{"component", "UNet"},
                            {"prefix", std::string(unet_prefix)},
                            {"config_from", info.unet_config_source},
                            {"model_channels", c.model_channels},
                            {"channel_mult", c.channel_mult},
                            {"num_res_blocks", c.num_res_blocks},
                            {"attention_resolutions", c.attention_resolutions},
                            {"num_heads", c.num_heads},
                            {"num_head_channels", c.num_head_channels},
                            {"context_dim", c.context_dim},
                            {"use_linear_in_transformer", c.use_linear_in_transformer},
                            {"transformer_depth", c.transformer_depth},
                            {"prediction", std::string(prediction_name(default_prediction(info)))}});
    }
    if (info.vae) {
      const AutoencoderKLConfig& c = *info.vae;
      components.push_back({{"component", "VAE"},
                            {"prefix", std::string(vae_prefix)},
                            {"config_from", info.vae_config_source},
                            {"ch", c.ch},
                            {"ch_mult", c.ch_mult},
                            {"num_res_blocks", c.num_res_blocks},
                            {"z_channels", c.z_channels},
                            {"scale_factor", c.scale_factor}});
    }
    if (!info.text_encoder.empty()) components.push_back({{"component", "text encoder"}, {"kind", info.text_encoder}});
    out["components"] = components;
    if (info.family != ModelFamily::sdxl) {
      const KeyReport r = checkpoint_key_report(f, info);
      nlohmann::ordered_json missing = nlohmann::ordered_json::array(), mis = nlohmann::ordered_json::array();
      for (const auto& m : r.missing) missing.push_back({{"key", m.key}, {"expected", m.expected.str()}});
      nlohmann::ordered_json not_float = nlohmann::ordered_json::array();
      for (const auto& m : r.mis_shaped) mis.push_back({{"key", m.key}, {"found", m.found.str()}, {"expected", m.expected.str()}});
      for (const auto& m : r.not_float) not_float.push_back({{"key", m.key}, {"dtype", std::string(latentkit::dtype_name(m.dtype))}});
      out["keys"] = {{"matched", r.matched}, {"missing", missing}, {"mis_shaped", mis}, {"unexpected", r.unexpected},
                     {"not_float", not_float}};
    }
    return out;
  } catch (const latentkit::Error& e) {
    return {{"error", e.what()}};
  }
}

inline void print_checkpoint_text(const nlohmann::ordered_json& c) {
  if (c.is_null()) return;
  if (c.contains("error")) {
    std::printf("\ncheckpoint: not readable as Stable Diffusion: %s\n", c["error"].get<std::string>().c_str());
    return;
  }
  std::printf("\ncheckpoint: %s\n", c["family"].get<std::string>().c_str());
  for (const auto& comp : c["components"]) {
    std::string line;
    for (const auto& [k, v] : comp.items())
      if (k != "component") line += (line.empty() ? "" : ", ") + k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
    std::printf("  %s: %s\n", comp["component"].get<std::string>().c_str(), line.c_str());
  }
  if (!c.contains("keys")) {
    std::printf("  keys: not checked (SDXL models are not loadable yet)\n");
    return;
  }
  const auto& k = c["keys"];
  const bool clean = k["missing"].empty() && k["mis_shaped"].empty() && k["unexpected"].empty() && k["not_float"].empty();
  std::printf("  keys: %lld matched%s\n", k["matched"].get<long long>(), clean ? ", none missing, unexpected or mis-shaped" : "");
  for (const auto& m : k["missing"]) std::printf("    missing %s (expected %s)\n", m["key"].get<std::string>().c_str(), m["expected"].get<std::string>().c_str());
  for (const auto& m : k["mis_shaped"])
    std::printf("    mis-shaped %s: %s, expected %s\n", m["key"].get<std::string>().c_str(), m["found"].get<std::string>().c_str(),
                m["expected"].get<std::string>().c_str());
  for (const auto& u : k["unexpected"]) std::printf("    unexpected %s\n", u.get<std::string>().c_str());
  for (const auto& u : k["not_float"])
    std::printf("    not a float tensor: %s (%s)\n", u["key"].get<std::string>().c_str(), u["dtype"].get<std::string>().c_str());
}

inline void print_inspect_json(const latentkit::SafetensorsFile& f) {
  nlohmann::ordered_json out;
  out["file"] = f.path().string();
  out["file_bytes"] = f.file_size();
  out["header_bytes"] = f.header_size();
  auto& tensors = out["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : f.tensors())
    tensors.push_back({{"name", t.name},
                       {"dtype", std::string(latentkit::dtype_name(t.dtype))},
                       {"shape", std::vector<latentkit::index_t>(t.shape.begin(), t.shape.end())},
                       {"bytes", t.nbytes},
                       {"offset", t.offset}});
  DTypeTotals all;
  nlohmann::ordered_json by_dtype = nlohmann::ordered_json::object();
  for (const auto& [dtype, s] : totals_by_dtype(f)) {
    by_dtype[std::string(latentkit::dtype_name(dtype))] = {{"count", s.count}, {"parameters", s.parameters}, {"bytes", s.bytes}};
    all.count += s.count;
    all.parameters += s.parameters;
    all.bytes += s.bytes;
  }
  out["totals"] = {{"count", all.count}, {"parameters", all.parameters}, {"bytes", all.bytes}, {"by_dtype", by_dtype}};
  out["metadata"] = f.metadata();
  out["checkpoint"] = checkpoint_summary(f);
  std::printf("%s\n", out.dump(2).c_str());
}

inline const char* tensors_word(std::uint64_t n) { return n == 1 ? "tensor" : "tensors"; }

inline void print_inspect_text(const latentkit::SafetensorsFile& f) {
  std::printf("%s: %s bytes (%s), header %s bytes\n", f.path().string().c_str(), grouped(f.file_size()).c_str(),
              human_bytes(f.file_size()).c_str(), grouped(f.header_size()).c_str());
  std::size_t name_width = 4, shape_width = 5;
  for (const auto& t : f.tensors()) {
    name_width = std::max(name_width, std::min<std::size_t>(t.name.size(), 72));
    shape_width = std::max(shape_width, t.shape.str().size());
  }
  std::printf("\n%-*s  %-5s  %-*s  %s\n", static_cast<int>(name_width), "name", "dtype", static_cast<int>(shape_width),
              "shape", "bytes");
  for (const auto& t : f.tensors())
    std::printf("%-*s  %-5s  %-*s  %llu\n", static_cast<int>(name_width), t.name.c_str(),
                std::string(latentkit::dtype_name(t.dtype)).c_str(), static_cast<int>(shape_width), t.shape.str().c_str(),
                static_cast<unsigned long long>(t.nbytes));

  DTypeTotals all;
  const auto by = totals_by_dtype(f);
  for (const auto& [dtype, s] : by) {
    all.count += s.count;
    all.parameters += s.parameters;
    all.bytes += s.bytes;
  }
  std::printf("\ntotal: %s %s, %s parameters, %s bytes (%s)\n", grouped(all.count).c_str(), tensors_word(all.count),
              grouped(all.parameters).c_str(), grouped(all.bytes).c_str(), human_bytes(all.bytes).c_str());
  for (const auto& [dtype, s] : by)
    std::printf("  %-5s %s %s, %s parameters, %s bytes (%s)\n", std::string(latentkit::dtype_name(dtype)).c_str(),
                grouped(s.count).c_str(), tensors_word(s.count), grouped(s.parameters).c_str(), grouped(s.bytes).c_str(),
                human_bytes(s.bytes).c_str());

  if (f.metadata().empty()) {
    std::printf("\nmetadata: none\n");
  } else {
    std::printf("\nmetadata (%zu entries):\n", f.metadata().size());
    for (const auto& [key, value] : f.metadata())
      std::printf("  %s: %s\n", one_line(key, 60).c_str(), one_line(value).c_str());
  }
  print_checkpoint_text(checkpoint_summary(f));
}

}  // namespace detail

inline int inspect(std::span<const std::string_view> args) {
  if (wants_help(args)) {
    std::fputs(inspect_usage.data(), stdout);
    return exit_ok;
  }
  std::string_view file;
  bool json = false;
  for (auto a : args) {
    if (a == "--json") {
      json = true;
    } else if (a.starts_with("-") && a.size() > 1) {
      print_error("inspect", "unknown option '" + std::string(a) + "' (see latentkit help inspect)");
      return exit_usage;
    } else if (file.empty()) {
      file = a;
    } else {
      print_error("inspect", "expected one FILE, got '" + std::string(file) + "' and '" + std::string(a) + "'");
      return exit_usage;
    }
  }
  if (file.empty()) {
    std::fputs(inspect_usage.data(), stderr);
    return exit_usage;
  }
  return guarded("inspect", [&] {
    const latentkit::SafetensorsFile f{std::filesystem::path(file)};
    if (json) detail::print_inspect_json(f);
    else detail::print_inspect_text(f);
    return exit_ok;
  });
}

}  // namespace latentkit_cli
