// ImageError: an image or PNG file whose contents cannot be read or written (messages name the file, and the
// chunk or marker where that applies). Its own header so that the PNG text reader and writer need not pull in the
// decoder.
#pragma once
#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Malformed, truncated or unsupported image data, or an Image that cannot be encoded. Failures of the file
/// system itself (missing file, no permission, disk full) are IoError, as everywhere in latentkit.
struct ImageError : Error {
  using Error::Error;
};

LATENTKIT_NAMESPACE_END
