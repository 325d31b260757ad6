#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "latentkit/core/convert.hpp"

using namespace latentkit;

namespace {
// Index of the first element whose bits differ, or -1 (keeps failure messages short).
template <class T>
long first_mismatch(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if constexpr (std::is_same_v<T, float>) {
      if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) return static_cast<long>(i);
    } else if (a[i].bits != b[i].bits) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

// Floats that stress rounding: random bit patterns (NaN/Inf/subnormal included), values in the f16 range, exact
// ties and near-ties of both f16 (13 dropped bits) and bf16 (16 dropped bits).
std::vector<float> stress_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::uint32_t> any;
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t x = any(rng);
    switch (i % 6) {
      case 0: break;                                                                // any pattern
      case 1: x = (x & 0x807FFFFFu) | ((96u + (x >> 8) % 50u) << 23); break;         // 2^-31 .. 2^18
      case 2: x = (x & 0x807FE000u) | 0x1000u | ((101u + (x >> 8) % 44u) << 23); break;  // f16 ties
      case 3: x = (x & 0xFFFF0000u) | 0x8000u; break;                                // bf16 ties
      case 4: x = (x & 0xFFFF0000u) | (x & 1u ? 0x7FFFu : 0x8001u); break;           // bf16 near-ties
      default: x &= 0x807FFFFFu; break;                                              // float subnormals, zeros
    }
    out[i] = std::bit_cast<float>(x);
  }
  return out;
}
}  // namespace

TEST_CASE("f16 to float conversion matches the scalar reference for all 65536 bit patterns", "[convert]") {
  std::vector<f16> halves(65536);
  for (std::uint32_t b = 0; b < 65536; ++b) halves[b] = f16::from_bits(static_cast<std::uint16_t>(b));
  std::vector<float> vec(halves.size()), ref(halves.size());
  convert(halves.data(), vec.data(), halves.size());
  convert_scalar(halves.data(), ref.data(), halves.size());
  REQUIRE(first_mismatch(vec, ref) == -1);
  // And back: every half, decoded, encodes to the same bits through the vector path (NaNs as the scalar code).
  std::vector<f16> back(halves.size()), back_ref(halves.size());
  convert(vec.data(), back.data(), vec.size());
  convert_scalar(vec.data(), back_ref.data(), vec.size());
  REQUIRE(first_mismatch(back, back_ref) == -1);
  for (std::uint32_t b = 0; b < 65536; ++b)
    if ((b & 0x7C00u) != 0x7C00u) REQUIRE(back[b].bits == b);
}

TEST_CASE("bf16 to float conversion matches the scalar reference for all 65536 bit patterns", "[convert]") {
  std::vector<bf16> in(65536);
  for (std::uint32_t b = 0; b < 65536; ++b) in[b] = bf16::from_bits(static_cast<std::uint16_t>(b));
  std::vector<float> vec(in.size()), ref(in.size());
  convert(in.data(), vec.data(), in.size());
  convert_scalar(in.data(), ref.data(), in.size());
  REQUIRE(first_mismatch(vec, ref) == -1);
  // Every bf16 with each rounding-relevant low half: exact, tie, just below and just above the tie.
  for (std::uint32_t low : {0x0000u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu}) {
    std::vector<float> f(65536);
    for (std::uint32_t b = 0; b < 65536; ++b) f[b] = std::bit_cast<float>((b << 16) | low);
    std::vector<bf16> out(f.size()), out_ref(f.size());
    convert(f.data(), out.data(), f.size());
    convert_scalar(f.data(), out_ref.data(), f.size());
    REQUIRE(first_mismatch(out, out_ref) == -1);
  }
}

TEST_CASE("float to f16 and bf16 match the scalar reference bit for bit on millions of stress values", "[convert]") {
  const std::vector<float> f = stress_floats(std::size_t{3} << 20, 12345);  // large: the threaded path runs
  std::vector<f16> h(f.size()), h_ref(f.size());
  convert(f.data(), h.data(), f.size());
  convert_scalar(f.data(), h_ref.data(), f.size());
  REQUIRE(first_mismatch(h, h_ref) == -1);
  std::vector<bf16> b(f.size()), b_ref(f.size());
  convert(f.data(), b.data(), f.size());
  convert_scalar(f.data(), b_ref.data(), f.size());
  REQUIRE(first_mismatch(b, b_ref) == -1);
  // Spot checks against known values, so the reference itself is pinned.
  CHECK(h_ref[0].bits == f16(f[0]).bits);
  CHECK(f16(65520.0f).bits == 0x7C00);
}

TEST_CASE("conversions handle every length and misalignment around the vector width", "[convert]") {
  const std::vector<float> f = stress_floats(200, 99);
  for (std::size_t offset = 0; offset < 4; ++offset) {
    for (std::size_t n = 0; n + offset <= 67; ++n) {
      std::vector<f16> h(n + 1, f16::from_bits(0xABCD)), h_ref(n);
      convert(f.data() + offset, h.data(), n);
      convert_scalar(f.data() + offset, h_ref.data(), n);
      REQUIRE(std::equal(h_ref.begin(), h_ref.end(), h.begin()));
      REQUIRE(h[n].bits == 0xABCD);  // nothing written past the end
      std::vector<bf16> b(n + 1, bf16::from_bits(0xABCD)), b_ref(n);
      convert(f.data() + offset, b.data(), n);
      convert_scalar(f.data() + offset, b_ref.data(), n);
      REQUIRE(std::equal(b_ref.begin(), b_ref.end(), b.begin()));
      REQUIRE(b[n].bits == 0xABCD);
      std::vector<float> back(n + 1, -7.0f), back_ref(n);
      convert(h.data(), back.data(), n);
      convert_scalar(h.data(), back_ref.data(), n);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(std::bit_cast<std::uint32_t>(back[i]) == std::bit_cast<std::uint32_t>(back_ref[i]));
      REQUIRE(back[n] == -7.0f);
      std::vector<float> from_bf16(n + 1, -7.0f), from_bf16_ref(n);
      convert(b.data(), from_bf16.data(), n);
      convert_scalar(b.data(), from_bf16_ref.data(), n);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(std::bit_cast<std::uint32_t>(from_bf16[i]) == std::bit_cast<std::uint32_t>(from_bf16_ref[i]));
      REQUIRE(from_bf16[n] == -7.0f);
    }
  }
}

TEST_CASE("integer and double conversions to float round to nearest even", "[convert]") {
  std::mt19937 rng(7);
  std::vector<std::int32_t> i32(1001);
  for (auto& v : i32) v = static_cast<std::int32_t>(rng());
  i32[0] = (1 << 24) + 1;  // a tie: rounds to the even 2^24
  i32[1] = std::numeric_limits<std::int32_t>::min();
  std::vector<float> out(i32.size());
  convert(i32.data(), out.data(), i32.size());
  CHECK(out[0] == 16777216.0f);
  CHECK(out[1] == -2147483648.0f);
  for (std::size_t i = 0; i < i32.size(); ++i) REQUIRE(out[i] == static_cast<float>(static_cast<double>(i32[i])));

  const std::vector<std::int64_t> i64{0, -5, (std::int64_t{1} << 40) + 1, std::numeric_limits<std::int64_t>::max()};
  std::vector<float> f64out(i64.size());
  convert(i64.data(), f64out.data(), i64.size());
  CHECK(f64out[1] == -5.0f);
  CHECK(f64out[2] == 0x1p40f);
  CHECK(f64out[3] == 0x1p63f);

  const std::vector<std::uint8_t> u8{0, 1, 128, 255};
  const std::vector<bool> flags{true, false};
  std::vector<float> u8out(u8.size());
  convert(u8.data(), u8out.data(), u8.size());
  CHECK(u8out == std::vector<float>{0, 1, 128, 255});

  const std::vector<double> d{1.0 + 0x1p-24, 1.0 + 0x1p-24 + 0x1p-40, 1e300, -0.0};
  std::vector<float> dout(d.size());
  convert(d.data(), dout.data(), d.size());
  CHECK(dout[0] == 1.0f);  // tie to even
  CHECK(dout[1] == 1.0f + 0x1p-23f);
  CHECK(std::isinf(dout[2]));
  CHECK(std::signbit(dout[3]));
}

TEST_CASE("cast converts strided views into new contiguous tensors", "[convert]") {
  Tensor<float> t({3, 4});
  for (index_t i = 0; i < 12; ++i) t.data()[i] = 0.5f * static_cast<float>(i) - 2.0f;
  const Tensor<f16> h = cast<f16>(t.view().transpose());
  REQUIRE(h.shape() == Dims{4, 3});
  for (index_t r = 0; r < 4; ++r)
    for (index_t c = 0; c < 3; ++c) REQUIRE(static_cast<float>(h(r, c)) == t(c, r));
  const Tensor<double> d = cast<double>(h);
  CHECK(d(3, 2) == 3.5);
  const Tensor<float> back = cast<float>(cast<bf16>(t));
  CHECK(back(2, 3) == 3.5f);
  const Tensor<float> same = cast<float>(t.view().slice(1, 1, 4, 2));
  REQUIRE(same.shape() == Dims{3, 2});
  CHECK(same(2, 1) == t(2, 3));
}

TEST_CASE("double to f16 and bf16 round once, to nearest even, around every representable value", "[convert]") {
  // For each pair of neighbours lo < hi: the midpoint ties to the even one, and points 2^-30 of the gap above or
  // below it go to hi or lo. Through float, the points near a midpoint would round twice and land on the tie.
  auto check = [](auto tag, std::uint16_t max_finite_bits, double overflow_value) {
    using Half = decltype(tag);
    std::vector<double> points;
    std::vector<std::uint16_t> expected;
    for (std::uint32_t bits = 0; bits <= max_finite_bits; ++bits) {
      const double lo = static_cast<float>(Half::from_bits(static_cast<std::uint16_t>(bits)));
      const double hi = bits == max_finite_bits ? overflow_value
                                                : static_cast<float>(Half::from_bits(static_cast<std::uint16_t>(bits + 1)));
      const double mid = 0.5 * (lo + hi), nudge = (hi - lo) * 0x1p-30;
      const auto lo_bits = static_cast<std::uint16_t>(bits), hi_bits = static_cast<std::uint16_t>(bits + 1);
      for (const double sign : {1.0, -1.0}) {
        const std::uint16_t sign_bit = sign < 0 ? 0x8000 : 0;
        points.insert(points.end(), {sign * lo, sign * (mid - nudge), sign * mid, sign * (mid + nudge)});
        expected.insert(expected.end(), {static_cast<std::uint16_t>(lo_bits | sign_bit),
                                         static_cast<std::uint16_t>(lo_bits | sign_bit),
                                         static_cast<std::uint16_t>(((bits & 1u) ? hi_bits : lo_bits) | sign_bit),
                                         static_cast<std::uint16_t>(hi_bits | sign_bit)});
      }
    }
    std::vector<Half> out(points.size()), scalar(points.size());
    convert(points.data(), out.data(), points.size());
    convert_scalar(points.data(), scalar.data(), points.size());
    for (std::size_t i = 0; i < points.size(); ++i) {
      INFO("value " << points[i]);
      REQUIRE(out[i].bits == expected[i]);
      REQUIRE(scalar[i].bits == expected[i]);
    }
  };
  check(f16{}, 0x7BFF, 65536.0);         // the tie above 65504 goes to inf (0x7C00)
  check(bf16{}, 0x7F7F, 0x1p128);         // likewise above bf16's largest finite value
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<f16> h(1);
  convert(&nan, h.data(), 1);
  CHECK(std::isnan(static_cast<float>(h[0])));
}
