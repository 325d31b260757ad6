// The noise of torch.randn(..., device="cuda") on the CPU: Philox4x32-10 (Salmon et al. 2011, the generator behind
// curand and PyTorch's CUDA sampling) plus a Box-Muller step, as AUTOMATIC1111's modules/rng_philox.py computes it
// (the web UI's "NV" random source), so a seed gives the same latents on any machine, with or without a GPU.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Philox4x32 with 10 rounds: a keyed bijection of a 128-bit counter. Each round multiplies words 0 and 2 by the
/// Philox constants into 64-bit products, and the key is bumped by the Weyl constants between rounds.
inline std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                                  std::array<std::uint32_t, 2> key) noexcept {
  constexpr std::uint64_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;  // multipliers
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;  // key increments (golden ratio, sqrt(3) - 1)
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += w0;
      key[1] += w1;
    }
    const std::uint64_t p0 = m0 * counter[0];
    const std::uint64_t p1 = m1 * counter[2];
    counter = {static_cast<std::uint32_t>(p1 >> 32) ^ counter[1] ^ key[0], static_cast<std::uint32_t>(p1),
               static_cast<std::uint32_t>(p0 >> 32) ^ counter[3] ^ key[1], static_cast<std::uint32_t>(p0)};
  }
  return counter;
}

/// A1111's Generator (modules/rng_philox.py): randn call k (k = 0, 1, ...) gives element i from the counter
/// (k, 0, i, 0) under the key (low, high 32 bits of the seed), then the first Box-Muller output of words 0 and 1:
/// sqrt(-2 ln u) sin(v), u = (w0 + 1/2) c, v = (w1 + 1/2) c', with c = float32(2^-32) and c' = float32(2^-32 * 2 pi)
/// as A1111 writes them (float32 arrays that numpy promotes to float64), evaluated in float64 and rounded to float32
/// at the end. Each call advances the offset by one, whatever its size.
class TorchCudaGenerator {
 public:
  explicit TorchCudaGenerator(std::uint64_t seed) : seed_(seed) {}

  std::uint64_t seed() const noexcept { return seed_; }
  /// The counter's word 0 of the next call (A1111's Generator.offset).
  std::uint64_t offset() const noexcept { return offset_; }

  /// One Generator.randn of n elements (n < 2^32: A1111 keeps the element index in one counter word).
  void randn(float* out, std::size_t n) {
    const std::array<std::uint32_t, 2> key{static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)};
    const auto word0 = static_cast<std::uint32_t>(offset_);
    for (std::size_t i = 0; i < n; ++i) {
      const auto r = philox4x32_10({word0, 0u, static_cast<std::uint32_t>(i), 0u}, key);
      out[i] = box_muller(r[0], r[1]);
    }
    ++offset_;
  }

 private:
  static float box_muller(std::uint32_t a, std::uint32_t b) noexcept {
    // float32(2.3283064e-10) and float32(2.3283064e-10 * 6.2831855), A1111's constants (2^-32 and 2pi * 2^-32 to
    // float precision); their halves are exact.
    constexpr double c = static_cast<float>(2.3283064e-10);
    constexpr double c_2pi = static_cast<float>(2.3283064e-10 * 6.2831855);
    const double u = product(static_cast<double>(a), c) + c / 2;  // numpy: x * c, then + c/2 (two roundings)
    const double v = product(static_cast<double>(b), c_2pi) + c_2pi / 2;
    const double s = std::sqrt(-2.0 * std::log(u));
    return static_cast<float>(s * std::sin(v));
  }
  /// a*b rounded on its own (numpy's separate ufuncs), never contracted with the following addition.
  static double product(double a, double b) noexcept {
    volatile double p = a * b;
    return p;
  }

  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

LATENTKIT_NAMESPACE_END
