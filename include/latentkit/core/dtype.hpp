// Element types: the run-time tag (DType) that files carry, and its mapping to C++ types.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "latentkit/config/config.hpp"
#include "latentkit/core/half.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// The element types latentkit stores. Names and sizes follow the safetensors format.
enum class DType : std::uint8_t { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

inline constexpr std::array<DType, 10> all_dtypes{DType::f64, DType::f32, DType::f16, DType::bf16, DType::i64,
                                                  DType::i32, DType::i16, DType::i8,  DType::u8,  DType::boolean};

/// Bytes per element.
constexpr std::size_t dtype_size(DType t) noexcept {
  switch (t) {
    case DType::f64: case DType::i64: return 8;
    case DType::f32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: case DType::i16: return 2;
    case DType::i8: case DType::u8: case DType::boolean: return 1;
  }
  return 0;
}

/// The safetensors spelling: "F64", "F32", "F16", "BF16", "I64", ..., "BOOL".
constexpr std::string_view dtype_name(DType t) noexcept {
  switch (t) {
    case DType::f64: return "F64";
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::i16: return "I16";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
  }
  return "?";
}

/// Parses a safetensors dtype name; nullopt for names latentkit does not read.
constexpr std::optional<DType> parse_dtype(std::string_view name) noexcept {
  for (DType t : all_dtypes)
    if (dtype_name(t) == name) return t;
  return std::nullopt;
}

constexpr bool is_floating(DType t) noexcept {
  return t == DType::f64 || t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

/// The DType of a C++ element type (compile error for types latentkit does not store).
template <class T> struct dtype_of;
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<std::int16_t> { static constexpr DType value = DType::i16; };
template <> struct dtype_of<std::int8_t> { static constexpr DType value = DType::i8; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <class T> inline constexpr DType dtype_of_v = dtype_of<std::remove_cv_t<T>>::value;

/// A type latentkit can store as a tensor element.
template <class T>
concept Element = requires { dtype_of<std::remove_cv_t<T>>::value; };

LATENTKIT_NAMESPACE_END
