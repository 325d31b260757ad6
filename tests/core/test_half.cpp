#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "latentkit/core/half.hpp"

using namespace latentkit;

namespace {
// Reference: round a double to the nearest binary16 value, ties to even, by searching the neighbours.
double nearest_half_value(double x, std::uint16_t& bits) {
  double best = std::numeric_limits<double>::infinity();
  std::uint16_t best_bits = 0;
  for (std::uint32_t b = 0; b < 0x7C00u; ++b) {  // every finite positive half
    const double v = static_cast<float>(f16::from_bits(static_cast<std::uint16_t>(b)));
    const double d = std::abs(v - std::abs(x));
    if (d < best || (d == best && (b & 1u) == 0)) { best = d; best_bits = static_cast<std::uint16_t>(b); }
  }
  bits = best_bits;
  return best;
}
}  // namespace

TEST_CASE("f16 decodes every finite half exactly and re-encodes it to the same bits", "[half]") {
  for (std::uint32_t b = 0; b <= 0xFFFFu; ++b) {
    const auto h = f16::from_bits(static_cast<std::uint16_t>(b));
    const float f = h;
    if (std::isnan(f)) {
      REQUIRE(std::isnan(static_cast<float>(f16(f))));
      continue;
    }
    REQUIRE(f16(f).bits == b);
  }
  CHECK(static_cast<float>(f16::from_bits(0x3C00)) == 1.0f);
  CHECK(static_cast<float>(f16::from_bits(0x7BFF)) == 65504.0f);
  CHECK(static_cast<float>(f16::from_bits(0x0001)) == 0x1p-24f);
}

TEST_CASE("f16 rounds floats to nearest even, including subnormals, ties and overflow", "[half]") {
  // Ties: halfway between 1 and the next half (1 + 2^-10) rounds to the even one (1).
  CHECK(f16(1.0f + 0x1p-11f).bits == 0x3C00);
  CHECK(f16(1.0f + 3 * 0x1p-11f).bits == 0x3C02);  // halfway between odd 0x3C01 and 0x3C02 -> even
  CHECK(f16(65519.0f).bits == 0x7BFF);
  CHECK(f16(65520.0f).bits == 0x7C00);  // the tie above the largest finite half goes to infinity
  CHECK(f16(-1e9f).bits == 0xFC00);
  CHECK(f16(0x1p-25f).bits == 0x0000);                      // tie between 0 and the smallest subnormal
  CHECK(f16(std::nextafter(0x1p-25f, 1.0f)).bits == 0x0001);
  CHECK(f16(3 * 0x1p-25f).bits == 0x0002);                  // tie between subnormals 1 and 2 -> even
  CHECK(f16(-0.0f).bits == 0x8000);
  CHECK(f16(std::numeric_limits<float>::infinity()).bits == 0x7C00);
  CHECK(std::isnan(static_cast<float>(f16(std::numeric_limits<float>::quiet_NaN()))));

  // A sweep of floats against a brute-force nearest-value search.
  std::uint32_t state = 12345;
  for (int i = 0; i < 300; ++i) {
    state = state * 1664525u + 1013904223u;
    const float x = std::ldexp(static_cast<float>(state >> 8) / 16777216.0f, static_cast<int>(state % 44) - 28);
    std::uint16_t expected = 0;
    nearest_half_value(x, expected);
    INFO("x = " << x);
    REQUIRE(f16(x).bits == expected);
    REQUIRE(f16(-x).bits == (expected | 0x8000));
  }
}

TEST_CASE("bf16 keeps the top half of a float with round to nearest even", "[half]") {
  CHECK(bf16(1.0f).bits == 0x3F80);
  CHECK(bf16(std::bit_cast<float>(0x3F808000u)).bits == 0x3F80);  // tie, even stays
  CHECK(bf16(std::bit_cast<float>(0x3F818000u)).bits == 0x3F82);  // tie, odd rounds up
  CHECK(bf16(std::bit_cast<float>(0x3F808001u)).bits == 0x3F81);
  CHECK(bf16(std::bit_cast<float>(0x00018000u)).bits == 0x0002);  // subnormals are rounded, not flushed
  CHECK(bf16(std::bit_cast<float>(0x7F7FFFFFu)).bits == 0x7F80);  // max float rounds to inf
  CHECK(std::isnan(static_cast<float>(bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(static_cast<float>(bf16(std::bit_cast<float>(0x7F800001u)))));  // signalling NaN stays NaN
  for (std::uint32_t b = 0; b <= 0xFFFFu; ++b) {
    const float f = bf16::from_bits(static_cast<std::uint16_t>(b));
    if (!std::isnan(f)) REQUIRE(bf16(f).bits == b);
  }
}
