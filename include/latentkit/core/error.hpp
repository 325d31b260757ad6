// Typed exceptions. Messages name the file, the key and what was expected.
#pragma once
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Base of every latentkit error.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// A tensor had the wrong shape, rank or stride for an operation.
struct ShapeError : Error {
  using Error::Error;
};
/// A dtype name or value was not the one expected.
struct DTypeError : Error {
  using Error::Error;
};
/// A file could not be read or written (missing, unreadable, I/O failure).
struct IoError : Error {
  using Error::Error;
};
/// A file's contents are malformed (bad header, bad offsets, truncated data, ...).
struct FormatError : Error {
  using Error::Error;
};
/// A name (sampler, schedule, key) that is not known; the message lists the valid ones.
struct UnknownNameError : Error {
  using Error::Error;
};

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

LATENTKIT_NAMESPACE_END
