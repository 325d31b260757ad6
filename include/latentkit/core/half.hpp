// Storage types f16 (IEEE binary16) and bf16 (bfloat16), with exact round-to-nearest-even conversion.
// These are storage formats: arithmetic happens in float. The scalar conversions here are the reference
// that every vectorised path (core/convert.hpp) must match bit for bit.
#pragma once
#include <bit>
#include <cstdint>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN

namespace detail {

/// float -> binary16 bits, round to nearest even; NaN stays NaN (quieted, top payload bits kept, as F16C does).
constexpr std::uint16_t float_to_half_bits(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));  // NaN
  if (ax >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to inf
  if (ax < 0x38800000u) {                                                      // below 2^-14: subnormal
    if (ax <= 0x33000000u) return sign;                                        // <= 2^-25 ties to +-0
    const std::uint32_t exponent = ax >> 23;
    const std::uint32_t mantissa = (ax & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126u - exponent;  // 14..24
    std::uint32_t r = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (r & 1u))) ++r;  // may carry into the smallest normal: fine
    return static_cast<std::uint16_t>(sign | r);
  }
  const std::uint32_t rebiased = ax - 0x38000000u;  // exponent bias 127 -> 15
  std::uint32_t h = rebiased >> 13;
  const std::uint32_t rest = rebiased & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is correct rounding
  return static_cast<std::uint16_t>(sign | h);
}

/// binary16 bits -> float (exact: every binary16 value is a float).
constexpr float half_bits_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;  // subnormal or zero, exact
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) | sign);
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

/// float -> bfloat16 bits, round to nearest even; NaN stays NaN (quieted). Subnormals are kept, not flushed.
constexpr std::uint16_t float_to_bf16_bits(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  const std::uint32_t rounding_bias = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>((x + rounding_bias) >> 16);
}

constexpr float bf16_bits_to_float(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

}  // namespace detail

/// IEEE 754 binary16 storage. Converts from float with round-to-nearest-even.
struct f16 {
  std::uint16_t bits = 0;
  constexpr f16() noexcept = default;
  constexpr explicit f16(float f) noexcept : bits(detail::float_to_half_bits(f)) {}
  static constexpr f16 from_bits(std::uint16_t b) noexcept { f16 h; h.bits = b; return h; }
  constexpr operator float() const noexcept { return detail::half_bits_to_float(bits); }
  friend constexpr bool operator==(f16 a, f16 b) noexcept { return a.bits == b.bits; }
};

/// bfloat16 storage (the top half of a float). Converts from float with round-to-nearest-even.
struct bf16 {
  std::uint16_t bits = 0;
  constexpr bf16() noexcept = default;
  constexpr explicit bf16(float f) noexcept : bits(detail::float_to_bf16_bits(f)) {}
  static constexpr bf16 from_bits(std::uint16_t b) noexcept { bf16 h; h.bits = b; return h; }
  constexpr operator float() const noexcept { return detail::bf16_bits_to_float(bits); }
  friend constexpr bool operator==(bf16 a, bf16 b) noexcept { return a.bits == b.bits; }
};

static_assert(sizeof(f16) == 2 && sizeof(bf16) == 2);

LATENTKIT_NAMESPACE_END
