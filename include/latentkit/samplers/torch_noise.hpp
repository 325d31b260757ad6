// Noise that replays PyTorch's seeded stream: the initial latent and every ancestral draw of a script that calls
// torch.manual_seed(seed), draws torch.randn for the latent, then runs a k-diffusion sampler whose default noise
// sampler is torch.randn_like (k_diffusion/sampling.py, default_noise_sampler), all from one generator.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/names.hpp"
#include "latentkit/random/philox.hpp"
#include "latentkit/random/torch_cpu_generator.hpp"
#include "latentkit/samplers/latent.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Which torch device's generator to reproduce: cpu (mt19937, TorchCpuGenerator) or cuda (Philox, as A1111's "NV"
/// source computes it, TorchCudaGenerator).
enum class TorchRng { cpu, cuda };

inline constexpr std::array<std::pair<std::string_view, TorchRng>, 2> torch_rng_names{{
    {"cpu", TorchRng::cpu}, {"cuda", TorchRng::cuda}}};

/// "cpu" or "cuda"; anything else throws UnknownNameError listing both.
inline TorchRng parse_torch_rng(std::string_view name) { return lookup_name("torch RNG", name, torch_rng_names); }

/// A NoiseSource drawing from one seeded torch generator in call order: the first draw (fill, or operator()) is the
/// initial noise, each later one continues the stream, as torch.randn_like does inside a sampler. Draws are float32
/// (what torch gives a float32 latent) widened to the latent's scalar type.
class TorchNoise {
 public:
  explicit TorchNoise(std::uint64_t seed, TorchRng rng = TorchRng::cpu, TorchCpuKernel kernel = TorchCpuKernel::avx2)
      : rng_(rng), kernel_(kernel), cpu_(seed), cuda_(seed) {}

  /// randn_like(like): the next draw, shaped like `like` (sigma and sigma_next do not change the stream).
  template <ContiguousLatent X>
  X operator()(double, double, const X& like) {
    X out = like;
    fill(out.data(), out.size());
    return out;
  }

  /// The next torch.randn of n elements into out.
  template <class T>
  void fill(T* out, std::size_t n) {
    if constexpr (std::is_same_v<T, float>) {
      draw(out, n);
    } else {
      std::vector<float> buffer(n);
      draw(buffer.data(), n);
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(buffer[i]);
    }
    ++calls_;
  }

  TorchRng rng() const noexcept { return rng_; }
  TorchCpuKernel kernel() const noexcept { return kernel_; }
  /// Draws so far.
  std::uint64_t calls() const noexcept { return calls_; }

 private:
  void draw(float* out, std::size_t n) {
    if (rng_ == TorchRng::cpu)
      cpu_.randn(out, n, kernel_);
    else
      cuda_.randn(out, n);
  }

  TorchRng rng_;
  TorchCpuKernel kernel_;
  TorchCpuGenerator cpu_;
  TorchCudaGenerator cuda_;
  std::uint64_t calls_ = 0;
};

LATENTKIT_NAMESPACE_END
