// stb_image (Debian's libstb-dev, <stb/stb_image.h>) compiled into the including translation unit: STB_IMAGE_STATIC
// gives every stbi_* function internal linkage, so each object file has a private copy and no link step or
// library is needed. Only the PNG and JPEG decoders are built: those are the formats image.hpp checks
// structurally before decoding, and fewer decoders mean less code exposed to untrusted files. stb's warnings are
// silenced here and nowhere else.
//
// A program that compiles stb_image itself (STB_IMAGE_IMPLEMENTATION without STB_IMAGE_STATIC) must not include
// stb_image.h before this header in the same translation unit: the include guard would then hand this copy
// stb's external declarations.
#pragma once

#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO             // files are read by latentkit (IoError messages, size checks)
#define STBI_NO_LINEAR            // no float (HDR) output
#define STBI_MAX_DIMENSIONS 16384  // = image_max_side; stb's own last line of defence
// A JIT interpreter (clang-repl, cling) may lack thread_local; stb then keeps its failure string in a plain global.
#if defined(__CLANG_REPL__) || defined(__CLING__)
#define STBI_NO_THREAD_LOCALS
#endif
#define STB_IMAGE_IMPLEMENTATION

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Weverything"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#endif

#include <stb/stb_image.h>

#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#undef STB_IMAGE_IMPLEMENTATION
