// `latentkit inspect FILE [--json]`: what a .safetensors file holds, without loading any tensor data; for a PNG
// (recognised by its signature), its header, chunks and text, with AUTOMATIC1111's "parameters" read into fields.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "latentkit/io/detail/png_chunks.hpp"
#include "latentkit/io/mapped_file.hpp"
#include "latentkit/io/png_text.hpp"
#include "latentkit/io/safetensors.hpp"
#include "latentkit/models/sd_checkpoint.hpp"
#include "latentkit/pipelines/generation_parameters.hpp"

namespace latentkit_cli {

inline constexpr std::string_view inspect_usage =
    "usage: latentkit inspect FILE [--json]\n"
    "\n"
    "Validates a .safetensors file and lists every tensor (name, dtype, shape, bytes), the totals (tensor\n"
    "count, parameters, bytes, and the same per dtype) and the __metadata__ entries (long values shortened).\n"
    "For a Stable Diffusion checkpoint it also names the family (SD1.x, SD2.x, SDXL), the components (UNet, VAE,\n"
    "text encoder) with their configs and where each came from (metadata or tensor shapes), the default\n"
    "prediction (SD2.x: v), and every missing, unexpected or mis-shaped key.\n"
    "A PNG file (recognised by its signature) is checked chunk by chunk (lengths, CRCs) and its size, colour\n"
    "type, chunks and text chunks (tEXt, zTXt, iTXt) are listed; an AUTOMATIC1111 \"parameters\" text is also\n"
    "shown field by field (prompt, negative prompt, steps, sampler, ..., and any other keys).\n"
    "  --json   print the same as one JSON object (metadata and text values in full)\n"
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

// ---- PNG files -------------------------------------------------------------------------------------------------

/// True when `path` starts with the PNG signature (a file that cannot be read is left to the safetensors path,
/// which reports why).
inline bool is_png_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<char, 8> head{};
  if (!in.read(head.data(), head.size())) return false;
  return latentkit::detail::has_png_signature({reinterpret_cast<const std::uint8_t*>(head.data()), head.size()});
}

inline const char* png_color_name(int color_type) {
  switch (color_type) {
    case 0: return "gray";
    case 2: return "RGB";
    case 3: return "palette";
    case 4: return "gray + alpha";
    case 6: return "RGBA";
    default: return "?";
  }
}

/// Everything `inspect` reports about a PNG, as JSON: header, chunks by type (first-seen order), text chunks,
/// and the A1111 parameters (null without a "parameters" text; {"error": ...} when it cannot be read).
inline nlohmann::ordered_json png_summary(const std::filesystem::path& path) {
  using namespace latentkit;
  const MappedFile file(path);
  const std::span<const std::uint8_t> bytes{reinterpret_cast<const std::uint8_t*>(file.bytes().data()), file.size()};
  const std::string name = path.string();
  latentkit::detail::PngHeader header;
  std::vector<std::pair<std::string, std::pair<std::uint64_t, std::uint64_t>>> chunks;  // type -> (count, bytes)
  const std::size_t end = latentkit::detail::walk_png_chunks(bytes, name, [&](const latentkit::detail::PngChunk& c) {
    if (c.index == 0) header = latentkit::detail::parse_png_header(c, name);
    auto it = std::find_if(chunks.begin(), chunks.end(), [&](const auto& e) { return e.first == c.type; });
    if (it == chunks.end()) it = chunks.insert(chunks.end(), {std::string(c.type), {0, 0}});
    ++it->second.first;
    it->second.second += c.data.size();
  });
  const auto text = png_text_from_bytes(bytes, name);

  nlohmann::ordered_json out;
  out["file"] = name;
  out["format"] = "PNG";
  out["file_bytes"] = bytes.size();
  out["width"] = header.width;
  out["height"] = header.height;
  out["bit_depth"] = header.bit_depth;
  out["color_type"] = png_color_name(header.color_type);
  out["interlaced"] = header.interlace == 1;
  out["bytes_after_iend"] = bytes.size() - end;
  auto& list = out["chunks"] = nlohmann::ordered_json::array();
  for (const auto& [type, stats] : chunks) list.push_back({{"type", type}, {"count", stats.first}, {"bytes", stats.second}});
  auto& texts = out["text"] = nlohmann::ordered_json::array();
  for (const auto& [key, value] : text) texts.push_back({{"key", key}, {"value", value}});
  out["parameters"] = nullptr;
  for (const auto& [key, value] : text) {
    if (key != "parameters") continue;
    try {
      const GenerationParameters p = parse_a1111_parameters(value);
      nlohmann::ordered_json f;
      f["prompt"] = p.prompt;
      f["negative_prompt"] = p.negative_prompt;
      f["steps"] = p.steps;
      f["sampler"] = p.sampler;
      f["schedule"] = p.schedule;
      f["cfg_scale"] = p.cfg_scale;
      f["seed"] = p.seed;
      f["width"] = p.width;
      f["height"] = p.height;
      f["model_hash"] = p.model_hash;
      f["model_name"] = p.model_name;
      f["denoising_strength"] = p.denoising_strength ? nlohmann::ordered_json(*p.denoising_strength) : nullptr;
      f["clip_skip"] = p.clip_skip;
      f["rng"] = p.rng;
      f["version"] = p.version;
      auto& extra = f["extra"] = nlohmann::ordered_json::array();
      for (const auto& [k, v] : p.extra) extra.push_back({{"key", k}, {"value", v}});
      out["parameters"] = f;
    } catch (const latentkit::Error& e) {
      out["parameters"] = {{"error", e.what()}};
    }
    break;  // the first "parameters" chunk is the one readers use
  }
  return out;
}

inline void print_png_text(const nlohmann::ordered_json& s) {
  const auto str = [](const nlohmann::ordered_json& j) { return j.get<std::string>(); };
  const auto u64 = [](const nlohmann::ordered_json& j) { return j.get<std::uint64_t>(); };
  std::printf("%s: PNG, %llux%llu, %lld-bit %s%s, %s bytes (%s)\n", str(s["file"]).c_str(),
              static_cast<unsigned long long>(u64(s["width"])), static_cast<unsigned long long>(u64(s["height"])),
              s["bit_depth"].get<long long>(), str(s["color_type"]).c_str(), s["interlaced"].get<bool>() ? ", interlaced" : "",
              grouped(u64(s["file_bytes"])).c_str(), human_bytes(u64(s["file_bytes"])).c_str());
  std::printf("\nchunks (CRCs checked):\n");
  for (const auto& c : s["chunks"])
    std::printf("  %s  x%llu  %s bytes\n", str(c["type"]).c_str(), static_cast<unsigned long long>(u64(c["count"])),
                grouped(u64(c["bytes"])).c_str());
  if (u64(s["bytes_after_iend"]) > 0) std::printf("  (%s bytes after IEND, ignored)\n", grouped(u64(s["bytes_after_iend"])).c_str());
  if (s["text"].empty()) {
    std::printf("\ntext: none\n");
  } else {
    std::printf("\ntext (%zu entries):\n", s["text"].size());
    for (const auto& t : s["text"]) std::printf("  %s: %s\n", one_line(str(t["key"]), 60).c_str(), one_line(str(t["value"])).c_str());
  }
  const auto& p = s["parameters"];
  if (p.is_null()) return;
  if (p.contains("error")) {
    std::printf("\nparameters: not readable as AUTOMATIC1111 parameters: %s\n", str(p["error"]).c_str());
    return;
  }
  std::printf("\nparameters (AUTOMATIC1111):\n");
  for (const auto& [k, v] : p.items()) {
    if (k == "extra") continue;
    if ((v.is_string() && v.get<std::string>().empty()) || v.is_null()) continue;
    std::printf("  %-20s %s\n", (k + ":").c_str(), v.is_string() ? one_line(v.get<std::string>(), 400).c_str() : v.dump().c_str());
  }
  for (const auto& e : p["extra"])
    std::printf("  %-20s %s\n", (str(e["key"]) + ":").c_str(), one_line(str(e["value"]), 400).c_str());
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
    if (detail::is_png_file(std::filesystem::path(file))) {
      const auto summary = detail::png_summary(std::filesystem::path(file));
      if (json) std::printf("%s\n", summary.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
      else detail::print_png_text(summary);
      return exit_ok;
    }
    const latentkit::SafetensorsFile f{std::filesystem::path(file)};
    if (json) detail::print_inspect_json(f);
    else detail::print_inspect_text(f);
    return exit_ok;
  });
}

}  // namespace latentkit_cli
