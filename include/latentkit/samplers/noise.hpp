// Noise sources: where stochastic samplers get their fresh Gaussian noise, as a policy.
#pragma once
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/samplers/latent.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// N models NoiseSource<X> when `n(sigma, sigma_next, like)` returns standard Gaussian noise shaped like `like` for
/// the step from sigma to sigma_next (k-diffusion's `noise_sampler(sigma, sigma_next)`; `like` supplies the shape).
/// Samplers call it in a fixed order, so a source that replays recorded tensors reproduces a reference run.
template <class N, class X>
concept NoiseSource = Latent<X> && requires(N& n, double sigma, double sigma_next, const X& like) {
  { n(sigma, sigma_next, like) } -> std::convertible_to<X>;
};

/// For deterministic samplers: any draw is a logic error and throws.
struct NoNoise {
  template <Latent X>
  X operator()(double sigma, double sigma_next, const X&) const {
    throw Error("NoNoise: a noise draw was requested (sigma " + std::to_string(sigma) + " -> " +
                std::to_string(sigma_next) + ") but this run was configured without a noise source");
  }
};

/// Returns pre-drawn tensors in call order (the k-th call returns draws[k]); records the (sigma, sigma_next) of every
/// call so a test can compare them with the reference. Running out of tensors or a shape mismatch throws.
template <Latent X>
class ReplayNoise {
 public:
  explicit ReplayNoise(std::vector<X> draws) : draws_(std::move(draws)) {}
  X operator()(double sigma, double sigma_next, const X& like) {
    if (next_ >= draws_.size())
      throw Error("ReplayNoise: draw " + std::to_string(next_ + 1) + " requested but only " +
                  std::to_string(draws_.size()) + " tensors were recorded");
    const X& draw = draws_[next_];
    if (!std::equal(std::begin(draw.shape()), std::end(draw.shape()), std::begin(like.shape()), std::end(like.shape())))
      throw ShapeError("ReplayNoise: recorded draw " + std::to_string(next_) + " does not have the latent's shape");
    calls_.emplace_back(sigma, sigma_next);
    ++next_;
    return draw;
  }
  std::size_t used() const noexcept { return next_; }
  std::size_t available() const noexcept { return draws_.size(); }
  const std::vector<std::pair<double, double>>& calls() const noexcept { return calls_; }

 private:
  std::vector<X> draws_;
  std::size_t next_ = 0;
  std::vector<std::pair<double, double>> calls_;
};

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit hash with full avalanche; the counter-based generators here hash
/// (key, element index) with it, so values never depend on the thread that computes them.
constexpr std::uint64_t splitmix64(std::uint64_t z) noexcept {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Seeded Gaussian noise, reproducible bit for bit from (seed, call number, element index) whatever the thread count.
/// Generator: element pair p of call c hashes (seed, c, 2p) and (seed, c, 2p+1) with SplitMix64 finalisers into two
/// 53-bit uniforms u1 in (0, 1], u2 in [0, 1); Box-Muller gives sqrt(-2 ln u1) * (cos, sin)(2 pi u2) for elements
/// 2p and 2p+1. It is counter based (no sequential state), so any partition of the elements gives the same values.
/// It does not reproduce torch.randn streams; replay those with ReplayNoise.
class GaussianNoise {
 public:
  explicit GaussianNoise(std::uint64_t seed = 0) : seed_(seed) {}

  template <ContiguousLatent X>
  X operator()(double, double, const X& like) {
    X out = like;
    fill(out.data(), out.size(), calls_++);
    return out;
  }
  /// Standard normal values for call `call` (what the call-th draw of this source returns).
  template <class T>
  void fill(T* out, std::size_t n, std::uint64_t call) const {
    const long pairs = static_cast<long>((n + 1) / 2);
    // The (seed, call) part of the hash is the same for every element: computed once, the loop keeps one SplitMix64
    // per uniform instead of three (same bits). Small draws stay serial: OpenMP start-up would dominate them.
    const std::uint64_t key = call_key(call);
    const bool parallel = pairs >= parallel_min_pairs;
    (void)parallel;  // unused when OpenMP is off
    LATENTKIT_OMP(parallel for schedule(static) if(parallel))
    for (long p = 0; p < pairs; ++p) {
      const std::uint64_t i0 = 2 * static_cast<std::uint64_t>(p);
      const double u1 = (static_cast<double>(splitmix64(key ^ i0) >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
      const double u2 = static_cast<double>(splitmix64(key ^ (i0 + 1)) >> 11) * 0x1.0p-53;    // [0, 1)
      const double radius = std::sqrt(-2.0 * std::log(u1));
      const double angle = 2.0 * std::numbers::pi * u2;
      out[i0] = static_cast<T>(radius * std::cos(angle));
      if (i0 + 1 < n) out[i0 + 1] = static_cast<T>(radius * std::sin(angle));
    }
  }
  std::uint64_t seed() const noexcept { return seed_; }
  std::uint64_t calls() const noexcept { return calls_; }

 private:
  /// The element hash is splitmix64(call_key(call) ^ index).
  std::uint64_t call_key(std::uint64_t call) const noexcept { return splitmix64(splitmix64(seed_) ^ call); }
  static constexpr long parallel_min_pairs = 2048;

  std::uint64_t seed_;
  std::uint64_t calls_ = 0;
};

LATENTKIT_NAMESPACE_END
