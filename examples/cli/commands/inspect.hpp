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

namespace latentkit_cli {

inline constexpr std::string_view inspect_usage =
    "usage: latentkit inspect FILE [--json]\n"
    "\n"
    "Validates a .safetensors file and lists every tensor (name, dtype, shape, bytes), the totals (tensor\n"
    "count, parameters, bytes, and the same per dtype) and the __metadata__ entries (long values shortened).\n"
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
