// Small helpers shared by the command headers: argument checks, one-line errors, number formatting.
#pragma once
#include <sys/resource.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <string_view>

#include "latentkit/core/error.hpp"

namespace latentkit_cli {

/// Exit codes: 0 success, 1 bad command line, 2 bad input file (or any other latentkit error).
inline constexpr int exit_ok = 0;
inline constexpr int exit_usage = 1;
inline constexpr int exit_bad_input = 2;

/// True when the arguments ask for a command's help (how `latentkit help CMD` reaches the command).
inline bool wants_help(std::span<const std::string_view> args) {
  for (auto a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

/// Prints "latentkit CMD: message" on one line to stderr (newlines in the message become spaces).
inline void print_error(std::string_view command, std::string_view message) {
  std::string line(message);
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  std::fprintf(stderr, "latentkit %.*s: %s\n", static_cast<int>(command.size()), command.data(), line.c_str());
}

/// Runs a command body, turning exceptions into one clear line and an exit code.
template <class F>
int guarded(std::string_view command, F&& body) {
  try {
    return body();
  } catch (const latentkit::Error& e) {
    print_error(command, e.what());
    return exit_bad_input;
  } catch (const std::exception& e) {
    print_error(command, e.what());
    return exit_bad_input;
  }
}

/// Parses the whole of `text` as a number (no sign, space or suffix left over); false if it is not one.
template <class T>
bool parse_number(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

/// "1.5 MiB" style size for people; exact byte counts are printed beside it.
inline std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

/// "1,234,567": parameter counts of real checkpoints are long.
inline std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

/// The process's peak resident memory so far (getrusage's ru_maxrss), in GiB.
inline double peak_rss_gib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
}

}  // namespace latentkit_cli
