// Typed exceptions. Messages name the file, the key and what was expected.
#pragma once
#include <stdexcept>
#include <string>

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

LATENTKIT_NAMESPACE_END
