// PyTorch's CPU random generator (CPUGeneratorImpl, torch 1.13) and its torch.randn for float32, bit for bit, so a
// seed gives the same initial latent and the same ancestral noise as a PyTorch script on the CPU.
#pragma once
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/core/names.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Which build of PyTorch's CPU normal kernel (aten/src/ATen/native/cpu/DistributionTemplates.h) to reproduce. They
/// agree in the first bits only: the AVX2 build (what torch runs on any AVX2 CPU) evaluates log and sin/cos with the
/// Cephes polynomials of avx_mathfun.h; the DEFAULT build (ATEN_CPU_CAPABILITY=default, or a CPU without AVX2)
/// calls the C library's logf and sincosf.
enum class TorchCpuKernel { avx2, scalar };

inline constexpr std::array<std::pair<std::string_view, TorchCpuKernel>, 3> torch_cpu_kernel_names{{
    {"avx2", TorchCpuKernel::avx2}, {"scalar", TorchCpuKernel::scalar}, {"default", TorchCpuKernel::scalar}}};

/// "avx2", or "scalar" / "default" (the name of torch's capability); anything else throws UnknownNameError.
inline TorchCpuKernel parse_torch_cpu_kernel(std::string_view name) {
  return lookup_name("torch CPU kernel", name, torch_cpu_kernel_names);
}

namespace detail::torch_cpu {

/// a*b rounded before any addition sees it: the upstream code multiplies and adds separately at these places,
/// while GCC would contract a*b+c into one FMA here (-march=native). A volatile store forbids that portably.
template <class T>
inline T product(T a, T b) noexcept {
  volatile T p = a * b;
  return p;
}

inline std::uint32_t bits(float x) noexcept { return std::bit_cast<std::uint32_t>(x); }
inline float from_bits(std::uint32_t u) noexcept { return std::bit_cast<float>(u); }
/// x where the lane mask is all ones, +0 where it is zero (_mm256_and_ps with a comparison mask).
inline float select_or_zero(bool mask, float x) noexcept { return mask ? x : 0.0f; }

/// One lane of avx_mathfun.h's log256_ps as torch 1.13's AVX2 kernel runs it. torch compiles that file with -mfma and
/// GCC's default -ffp-contract=fast, so the compiler fused the multiply-adds it could (read off the shipped
/// libtorch_cpu.so): the Horner steps, y*z + e*q1, y - z/2 and x + e*q2 are single roundings (std::fma here); the
/// products x*x, y*x and e*q1 are rounded on their own. Constants are the Cephes logf coefficients as float.
inline float log256_lane(float x) noexcept {
  const bool invalid = x <= 0.0f;
  if (!(x > 0x1p-126f)) x = 0x1p-126f;  // _mm256_max_ps(x, min_norm_pos): denormals are cut off
  const auto exponent = static_cast<std::int32_t>(bits(x) >> 23) - 0x7f;
  x = from_bits((bits(x) & ~0x7f800000u) | bits(0.5f));  // the mantissa, in [0.5, 1)
  float e = static_cast<float>(exponent) + 1.0f;
  const bool below = x < 0x1.6a09e6p-1f;  // sqrt(1/2): keep x in [sqrt(1/2) - 1, sqrt(2) - 1)
  const float tmp = select_or_zero(below, x);
  x = x + -1.0f;
  e = e - select_or_zero(below, 1.0f);
  x = tmp + x;
  const float e_q1 = product(e, -0x1.bd0106p-13f);
  float y = 0x1.204376p-4f;
  y = std::fma(y, x, -0x1.d7a370p-4f);
  y = std::fma(y, x, 0x1.de4a34p-4f);
  y = std::fma(y, x, -0x1.fcba9ep-4f);
  y = std::fma(y, x, 0x1.23d37ep-3f);
  y = std::fma(y, x, -0x1.555ca0p-3f);
  y = std::fma(y, x, 0x1.999d58p-3f);
  y = std::fma(y, x, -0x1.fffff8p-3f);
  y = std::fma(y, x, 0x1.555554p-2f);
  const float z = product(x, x);
  y = product(y, x);
  y = std::fma(y, z, e_q1);
  y = std::fma(-z, 0.5f, y);
  x = x + y;
  x = std::fma(e, 0x1.63p-1f, x);  // + e * (log 2, high part)
  return invalid ? from_bits(bits(x) | 0xffffffffu) : x;
}

/// One lane of avx_mathfun.h's sincos256_ps as torch 1.13's AVX2 kernel runs it (the same contraction rule as
/// log256_lane: the three-part reduction by pi/4 and the Horner steps are fused). Returns {sin, cos}.
inline std::pair<float, float> sincos256_lane(float x) noexcept {
  std::uint32_t sign_sin = bits(x) & 0x80000000u;
  x = from_bits(bits(x) & 0x7fffffffu);
  const float scaled = product(x, 0x1.45f306p+0f);  // 4 / pi
  // cvttps2dq (truncation; out of range gives INT_MIN), then j = (j + 1) & ~1 as in Cephes sinf.
  const std::int32_t truncated = scaled < 0x1p31f ? static_cast<std::int32_t>(scaled)
                                                  : std::numeric_limits<std::int32_t>::min();
  const std::uint32_t j = (static_cast<std::uint32_t>(truncated) + 1u) & ~1u;
  const float y = static_cast<float>(static_cast<std::int32_t>(j));
  const std::uint32_t swap_sin = (j & 4u) << 29;
  const bool sine_poly = (j & 2u) == 0;  // the sine polynomial gives the sine (and the cosine polynomial the cosine)
  const std::uint32_t sign_cos = (~(j - 2u) & 4u) << 29;
  sign_sin ^= swap_sin;
  x = std::fma(y, -0x1.92p-1f, x);  // x - y * pi/4, in three parts
  x = std::fma(y, -0x1.fb4p-13f, x);
  x = std::fma(y, -0x1.4442d2p-25f, x);
  const float z = product(x, x);
  float yc = std::fma(z, 0x1.99eb9cp-16f, -0x1.6c0c34p-10f);
  yc = std::fma(z, yc, 0x1.55554ap-5f);
  yc = product(z, yc);
  yc = std::fma(yc, z, -product(z, 0.5f));
  yc = yc + 1.0f;
  float ys = std::fma(-0x1.9943f2p-13f, z, 0x1.11073cp-7f);
  ys = std::fma(z, ys, -0x1.555546p-3f);
  ys = product(z, ys);
  ys = std::fma(ys, x, x);
  const float sin_from_s = select_or_zero(sine_poly, ys);
  const float sin_from_c = select_or_zero(!sine_poly, yc);
  const float cos_from_s = ys - sin_from_s;
  const float cos_from_c = yc - sin_from_c;
  const float s = sin_from_c + sin_from_s;
  const float c = cos_from_c + cos_from_s;
  return {from_bits(bits(s) ^ sign_sin), from_bits(bits(c) ^ sign_cos)};
}

/// normal_fill_16_AVX2: 8 Box-Muller pairs in place, u1 = 1 - data[j] and u2 = data[j + 8], data holding uniforms.
/// The result is fma(n, std, mean) with std = 1, mean = 0: n + 0, so a -0 comes out as +0.
inline void normal_fill_16_avx2(float* data) noexcept {
  const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];
    const float u2 = data[j + 8];
    const float radius = std::sqrt(product(-2.0f, log256_lane(u1)));
    const auto [s, c] = sincos256_lane(product(two_pi, u2));
    data[j] = std::fma(product(radius, c), 1.0f, 0.0f);
    data[j + 8] = std::fma(product(radius, s), 1.0f, 0.0f);
  }
}

/// normal_fill_16<float> of the DEFAULT build: float logf / sinf / cosf (torch's binary calls sincosf, which gives the
/// same values); theta = 2*pi*u2 is computed in double (2.0f * c10::pi<double> * u2) and rounded to float.
inline void normal_fill_16_scalar(float* data) noexcept {
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];
    const float u2 = data[j + 8];
    const float radius = std::sqrt(product(-2.0f, std::log(u1)));
    const auto theta = static_cast<float>(product(2.0 * std::numbers::pi, static_cast<double>(u2)));
    data[j] = product(radius, std::cos(theta)) + 0.0f;
    data[j + 8] = product(radius, std::sin(theta)) + 0.0f;
  }
}

}  // namespace detail::torch_cpu

/// PyTorch's CPUGeneratorImpl (aten/src/ATen/CPUGeneratorImpl.cpp): a 32-bit Mersenne Twister plus the cached second
/// value of the last double Box-Muller pair. torch.manual_seed(seed) builds it from a 64-bit seed but seeds mt19937
/// with its low 32 bits only (at::mt19937::init_with_uint32), so seeds 1 and 2^32 + 1 give the same stream.
class TorchCpuGenerator {
 public:
  explicit TorchCpuGenerator(std::uint64_t seed)
      : seed_(seed), engine_(static_cast<std::mt19937::result_type>(seed & 0xffffffffu)) {}

  /// The seed as torch.initial_seed() reports it (all 64 bits).
  std::uint64_t seed() const noexcept { return seed_; }
  /// CPUGeneratorImpl::random: one mt19937 output.
  std::uint32_t random() { return static_cast<std::uint32_t>(engine_()); }
  /// CPUGeneratorImpl::random64: two outputs, the first in the high half.
  std::uint64_t random64() {
    const std::uint64_t hi = random();
    return hi << 32 | random();
  }

  /// The second normal of the last at::normal_distribution<double> pair, not yet handed out.
  std::optional<double> next_double_normal_sample() const noexcept { return next_double_normal_; }
  void set_next_double_normal_sample(std::optional<double> value) noexcept { next_double_normal_ = value; }

  /// at::uniform_real_distribution<float>(0, 1): 24 random bits of random(), scaled exactly into [0, 1).
  float uniform_float() { return static_cast<float>(random() & 0xffffffu) * 0x1p-24f; }
  /// at::uniform_real_distribution<double>(0, 1): 53 random bits of random64(), scaled exactly into [0, 1).
  double uniform_double() { return static_cast<double>(random64() & 0x1fffffffffffffULL) * 0x1p-53; }

  /// at::normal_distribution<double>(0, 1) in torch 1.13: the cached value if there is one, else a new Box-Muller
  /// pair r * (cos, sin)(2 pi u1), r = sqrt(-2 log(1 - u2)), handing out the cosine and caching the sine.
  double normal() {
    if (next_double_normal_) {
      const double cached = *next_double_normal_;
      next_double_normal_.reset();
      return cached + 0.0;  // transformation::normal: ret * std + mean
    }
    const double u1 = uniform_double();
    const double u2 = uniform_double();
    const double r = std::sqrt(detail::torch_cpu::product(-2.0, std::log(1.0 - u2)));
    const double theta = detail::torch_cpu::product(2.0 * std::numbers::pi, u1);
    next_double_normal_ = detail::torch_cpu::product(r, std::sin(theta));
    return detail::torch_cpu::product(r, std::cos(theta)) + 0.0;
  }

  /// torch.randn(n) into a contiguous float32 buffer (normal_kernel in DistributionTemplates.h). n >= 16: n uniforms,
  /// Box-Muller over blocks of 16, and when n is not a multiple of 16 the last 16 elements drawn again and
  /// transformed, overwriting the tail (the double cache is untouched). n < 16: one normal() per element, as float.
  void randn(float* out, std::size_t n, TorchCpuKernel kernel = TorchCpuKernel::avx2) {
    if (n < 16) {
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(normal());
      return;
    }
    auto fill_16 = kernel == TorchCpuKernel::avx2 ? detail::torch_cpu::normal_fill_16_avx2
                                                  : detail::torch_cpu::normal_fill_16_scalar;
    for (std::size_t i = 0; i < n; ++i) out[i] = uniform_float();
    for (std::size_t i = 0; i + 16 <= n; i += 16) fill_16(out + i);
    if (n % 16 != 0) {
      float* tail = out + n - 16;
      for (std::size_t i = 0; i < 16; ++i) tail[i] = uniform_float();
      fill_16(tail);
    }
  }

 private:
  std::uint64_t seed_;
  std::mt19937 engine_;
  std::optional<double> next_double_normal_;
};

LATENTKIT_NAMESPACE_END
