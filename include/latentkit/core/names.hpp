// Names a user types (sampler, schedule, spacing, prediction type, activation, ...): one lookup over a table of
// accepted names, and one message for a name that is not there.
#pragma once
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// The error for a `kind` called `name` that does not exist, in one format everywhere:
/// unknown sampler "Euler x"; valid names: "euler", "euler_a", ...
template <class Names>
UnknownNameError unknown_name(std::string_view kind, std::string_view name, const Names& valid_names) {
  std::string valid;
  for (const auto& n : valid_names) valid += (valid.empty() ? "\"" : ", \"") + std::string(std::string_view(n)) + "\"";
  return UnknownNameError("unknown " + std::string(kind) + " \"" + std::string(name) + "\"; valid names: " + valid);
}
inline UnknownNameError unknown_name(std::string_view kind, std::string_view name,
                                     std::initializer_list<std::string_view> valid_names) {
  return unknown_name<std::initializer_list<std::string_view>>(kind, name, valid_names);
}

/// The value `name` stands for in `table` (accepted name, value; aliases are rows of their own), or
/// unknown_name listing every accepted name in table order.
template <class Value, std::size_t N>
Value lookup_name(std::string_view kind, std::string_view name,
                  const std::array<std::pair<std::string_view, Value>, N>& table) {
  for (const auto& [accepted, value] : table)
    if (name == accepted) return value;
  std::array<std::string_view, N> names;
  for (std::size_t i = 0; i < N; ++i) names[i] = table[i].first;
  throw unknown_name(kind, name, names);
}

LATENTKIT_NAMESPACE_END
