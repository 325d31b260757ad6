// img2img strength: where in a schedule an img2img run starts, and the noisy start latent. Two conventions exist
// and they disagree by one step for the same strength s in [0, 1]:
//  * diffusers (`StableDiffusionImg2ImgPipeline.get_timesteps` @58eb52c): init_timestep = min(int(N*s), N),
//    t_start = N - init_timestep; runs the last init_timestep steps. s = 0 leaves no step, and upstream fails in
//    add_noise, so that is an error here.
//  * AUTOMATIC1111 (`sd_samplers_common.setup_img2img_steps`, `sd_samplers_kdiffusion.sample_img2img`):
//    t_enc = int(min(s, 0.999) * N), sigma_sched = sigmas[N - t_enc - 1:]; runs t_enc + 1 steps (one even at s=0).
//    With `img2img_fix_steps` it instead builds a longer schedule of int(N / min(s, 0.999)) steps and runs its
//    last N, so the step count does not shrink with s.
// `diffusers_like` applies the diffusers rule to a k-diffusion sigma list: sigma_sched = sigmas[t_start:].
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/names.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/schedules/linspace.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Which rule maps a strength to a start index in a sigma list.
enum class Img2ImgConvention {
  diffusers_like,  ///< diffusers' get_timesteps rule on a sigma list: N - int(N*s) skipped steps
  a1111,           ///< A1111 default: t_enc = int(min(s, 0.999) * N), t_enc + 1 steps run
  a1111_fix_steps  ///< A1111 with img2img_fix_steps: a longer schedule, exactly N steps run (s > 0 only)
};

inline Img2ImgConvention parse_img2img_convention(std::string_view name) {
  using C = Img2ImgConvention;
  static constexpr std::array<std::pair<std::string_view, C>, 4> names{{{"diffusers_like", C::diffusers_like},
                                                                        {"diffusers", C::diffusers_like},
                                                                        {"a1111", C::a1111},
                                                                        {"a1111_fix_steps", C::a1111_fix_steps}}};
  return lookup_name("img2img convention", name, names);
}

namespace detail {
inline void check_strength(double strength, index_t num_inference_steps) {
  if (!(strength >= 0.0 && strength <= 1.0))
    throw Error("img2img: strength must be in [0, 1], got " + std::to_string(strength));
  if (num_inference_steps < 1)
    throw Error("img2img: num_inference_steps must be >= 1, got " + std::to_string(num_inference_steps));
}
}  // namespace detail

/// diffusers' get_timesteps indices for N inference steps and strength s.
struct DiffusersImg2ImgStart {
  index_t init_timestep = 0;  ///< min(int(N*s), N): the steps that run
  index_t t_start = 0;        ///< N - init_timestep: the steps skipped
  index_t begin_index = 0;    ///< t_start * order: first index into the scheduler's timesteps (and Euler sigmas)
  index_t num_steps_run = 0;  ///< scheduler entries that run: len(timesteps) - begin_index
  bool can_run() const noexcept { return num_steps_run > 0; }
};

/// `order` is the scheduler's order attribute (1 for DDIM, Euler and DPM-Solver multistep in diffusers).
inline DiffusersImg2ImgStart diffusers_img2img_start(index_t num_inference_steps, double strength, index_t order = 1) {
  detail::check_strength(strength, num_inference_steps);
  if (order < 1) throw Error("img2img: scheduler order must be >= 1");
  DiffusersImg2ImgStart s;
  // int(N * s) in Python: a float64 product, then truncation (int(0.29 * 100) == 28)
  s.init_timestep = std::min(static_cast<index_t>(static_cast<double>(num_inference_steps) * strength), num_inference_steps);
  s.t_start = std::max<index_t>(num_inference_steps - s.init_timestep, 0);
  s.begin_index = s.t_start * order;
  s.num_steps_run = std::max<index_t>(num_inference_steps * order - s.begin_index, 0);
  return s;
}

/// The timesteps that run: all_timesteps[begin_index:].
template <class Timestep>
std::vector<Timestep> diffusers_img2img_timesteps(std::span<const Timestep> all_timesteps, const DiffusersImg2ImgStart& s) {
  const auto begin = static_cast<std::size_t>(std::min<index_t>(s.begin_index, static_cast<index_t>(all_timesteps.size())));
  return std::vector<Timestep>(all_timesteps.begin() + static_cast<std::ptrdiff_t>(begin), all_timesteps.end());
}

/// The timestep the initial latent is noised to (timesteps[begin_index]). Strength 0 leaves nothing to run:
/// diffusers fails there too (inside add_noise), so this throws Error.
template <class Timestep>
Timestep diffusers_latent_timestep(std::span<const Timestep> all_timesteps, const DiffusersImg2ImgStart& s) {
  if (!s.can_run() || s.begin_index >= static_cast<index_t>(all_timesteps.size()))
    throw Error("img2img: strength " + std::string(s.init_timestep == 0 ? "0" : "too small") +
                " leaves no denoising step (init_timestep = int(N * strength) = " + std::to_string(s.init_timestep) +
                "); diffusers cannot run img2img there: use strength > 0 or the a1111 convention");
  return all_timesteps[static_cast<std::size_t>(s.begin_index)];
}

/// The square roots DDIM's add_noise uses: sqrt(abar_t) and sqrt(1 - abar_t), in double from the (float32)
/// table entry, as diffusers does for float64 latents.
struct VpNoiseScales {
  double sqrt_alpha_prod = 1.0;
  double sqrt_one_minus_alpha_prod = 0.0;
};
template <std::floating_point A>
VpNoiseScales vp_noise_scales(std::span<const A> alphas_cumprod, std::int64_t timestep) {
  if (timestep < 0 || timestep >= static_cast<std::int64_t>(alphas_cumprod.size()))
    throw Error("img2img: timestep " + std::to_string(timestep) + " is outside the training table [0, " +
                std::to_string(alphas_cumprod.size()) + ")");
  const double a = static_cast<double>(alphas_cumprod[static_cast<std::size_t>(timestep)]);
  return {std::sqrt(a), std::sqrt(1.0 - a)};
}

namespace detail {
template <class U, class V>
void check_same_shape(const TensorView<U>& x0, const TensorView<V>& noise) {
  if (!(x0.shape() == noise.shape()))
    throw ShapeError("img2img add_noise: x0 has shape " + x0.shape().str() + " but noise has shape " + noise.shape().str());
}
template <class U>
using plain_t = std::remove_const_t<U>;
}  // namespace detail

/// VE noising (Euler, k-diffusion): x0 + noise * sigma, computed in the latents' precision.
template <class U, class V>
  requires std::same_as<detail::plain_t<U>, detail::plain_t<V>> && std::floating_point<detail::plain_t<U>>
Tensor<detail::plain_t<U>> add_noise_sigma(TensorView<U> x0, TensorView<V> noise, double sigma) {
  using T = detail::plain_t<U>;
  detail::check_same_shape(x0, noise);
  Tensor<T> out = Tensor<T>::copy_of(x0);
  T* o = out.data();
  const T s = static_cast<T>(sigma);
  noise.for_each([&o, s](const T& n) { *o = *o + mul_rounded(n, s), ++o; });
  return out;
}

/// VP noising (DDIM/DDPM add_noise): sqrt(abar) * x0 + sqrt(1 - abar) * noise.
template <class U, class V>
  requires std::same_as<detail::plain_t<U>, detail::plain_t<V>> && std::floating_point<detail::plain_t<U>>
Tensor<detail::plain_t<U>> add_noise_vp(TensorView<U> x0, TensorView<V> noise, const VpNoiseScales& scales) {
  using T = detail::plain_t<U>;
  detail::check_same_shape(x0, noise);
  Tensor<T> out = Tensor<T>::copy_of(x0);
  T* o = out.data();
  const T a = static_cast<T>(scales.sqrt_alpha_prod);
  const T b = static_cast<T>(scales.sqrt_one_minus_alpha_prod);
  noise.for_each([&o, a, b](const T& n) { *o = mul_rounded(a, *o) + mul_rounded(b, n), ++o; });
  return out;
}

/// Where an img2img run starts in a sigma list (k-diffusion style samplers).
template <std::floating_point T>
struct SigmaImg2ImgStart {
  index_t steps = 0;          ///< length of the schedule built (N, or the longer one for a1111_fix_steps)
  index_t t_enc = 0;          ///< A1111's t_enc (diffusers_like: the steps that run)
  index_t start_index = 0;    ///< first index into that schedule
  index_t num_steps_run = 0;  ///< sigma_sched.size() - 1
  std::vector<T> sigma_sched; ///< the sigmas the sampler runs over, ending in 0
  bool can_run() const noexcept { return num_steps_run > 0; }
  /// The noise level of the start latent x0 + noise * sigma_sched[0]; throws when no step runs.
  T start_sigma() const {
    if (!can_run()) throw Error("img2img: strength 0 with this convention runs no step, so there is no start noise level");
    return sigma_sched.front();
  }
};

/// Applies `convention` to N steps and strength s. `schedule_for_steps(n)` returns the n+1 sigmas (ending in 0) of the
/// chosen spacing, e.g. [&](index_t n) { return Karras{}.sigmas<double>(n, model); }; a1111_fix_steps calls it
/// with the longer step count.
template <class MakeSigmas>
  requires std::invocable<MakeSigmas&, index_t>
auto img2img_sigmas(Img2ImgConvention convention, index_t num_inference_steps, double strength, MakeSigmas&& schedule_for_steps)
    -> SigmaImg2ImgStart<typename std::invoke_result_t<MakeSigmas&, index_t>::value_type> {
  using T = typename std::invoke_result_t<MakeSigmas&, index_t>::value_type;
  detail::check_strength(strength, num_inference_steps);
  const index_t n = num_inference_steps;
  SigmaImg2ImgStart<T> r;
  switch (convention) {
    case Img2ImgConvention::diffusers_like: {
      const DiffusersImg2ImgStart d = diffusers_img2img_start(n, strength);
      r.steps = n;
      r.t_enc = d.init_timestep;
      r.start_index = d.t_start;
      break;
    }
    case Img2ImgConvention::a1111:
      r.steps = n;
      r.t_enc = static_cast<index_t>(std::min(strength, 0.999) * static_cast<double>(n));
      r.start_index = n - r.t_enc - 1;
      break;
    case Img2ImgConvention::a1111_fix_steps:
      if (!(strength > 0.0))
        throw Error("img2img: the a1111_fix_steps convention needs strength > 0 (it divides N by the strength)");
      r.steps = static_cast<index_t>(static_cast<double>(n) / std::min(strength, 0.999));
      r.t_enc = n - 1;
      r.start_index = r.steps - r.t_enc - 1;
      break;
  }
  const std::vector<T> sigmas = schedule_for_steps(r.steps);
  if (static_cast<index_t>(sigmas.size()) != r.steps + 1)
    throw Error("img2img: the sigma schedule for " + std::to_string(r.steps) + " steps has " +
                std::to_string(sigmas.size()) + " values; expected " + std::to_string(r.steps + 1));
  r.sigma_sched.assign(sigmas.begin() + static_cast<std::ptrdiff_t>(r.start_index), sigmas.end());
  r.num_steps_run = static_cast<index_t>(r.sigma_sched.size()) - 1;
  return r;
}

LATENTKIT_NAMESPACE_END
