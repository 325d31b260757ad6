// Text-to-image and image-to-image: the four steps of latent diffusion composed from the library's policies.
//   1. start latent: seeded torch-exact noise (txt2img), or the VAE encoding of an image plus noise at the
//      strength's start sigma (img2img);
//   2. at every sampler step the UNet, guided by the CLIP conditioning (one call on [uncond; cond]), predicts the
//      noise: UNet -> DiscreteTimeDenoiser (eps or v) -> ClassifierFreeGuidance;
//   3. the step policy (any sampler) removes it along the schedule's sigmas;
//   4. the VAE (or TAESD) decodes latent / scale_factor into an image.
// Seeds: image k of a run uses seed + k (A1111 and stable-diffusion.cpp), its own torch generator for the start
// noise and for the fresh noise of stochastic samplers, so a batch gives the same images as single runs.
//
//   txt2img(sd, options)                                  // sampler and schedule by name (options.sampler)
//   txt2img(sd, options, Sampler<DPMpp2M, Karras>{})      // compile-time policies
#pragma once
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <xtensor/xarray.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/names.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/denoisers/guidance.hpp"
#include "latentkit/io/image.hpp"
#include "latentkit/models/tiling.hpp"
#include "latentkit/models/unet_network.hpp"
#include "latentkit/pipelines/conditioning.hpp"
#include "latentkit/pipelines/generation_parameters.hpp"
#include "latentkit/pipelines/stable_diffusion.hpp"
#include "latentkit/samplers/registry.hpp"
#include "latentkit/samplers/sampler.hpp"
#include "latentkit/samplers/torch_noise.hpp"
#include "latentkit/schedules/img2img.hpp"
#include "latentkit/schedules/linspace.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// How img2img turns the encoded image into its start latent.
enum class InitLatent {
  sample,  ///< mean + std * noise (CompVis img2img.py, A1111, diffusers); the noise comes first from the generator
  mean     ///< the posterior mean, deterministic
};
inline InitLatent parse_init_latent(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, InitLatent>, 3> names{
      {{"sample", InitLatent::sample}, {"mean", InitLatent::mean}, {"mode", InitLatent::mean}}};
  return lookup_name("init latent", name, names);
}

/// Everything a generation needs besides the model. Sizes in pixels (multiples of the VAE factor, 8).
struct GenerationOptions {
  std::string prompt;
  std::string negative_prompt;
  int width = 512, height = 512;
  int steps = 20;
  double cfg_scale = 7.0;
  std::uint64_t seed = 0;
  int batch_size = 1;   ///< images per UNet batch
  int batch_count = 1;  ///< batches run one after another
  int clip_skip = 0;    ///< 0: the encoder's default (SD1 1, SD2 2)
  std::optional<double> eta;  ///< the stochastic samplers' eta (only where the sampler has one)
  std::string sampler = "dpmpp_2m";  ///< any name parse_sampler accepts ("dpm++2m", "DPM++ 2M Karras", ...)
  std::string schedule;              ///< any name parse_schedule accepts; empty: the sampler name's, else karras
  TorchRng rng = TorchRng::cpu;
  TorchCpuKernel cpu_kernel = TorchCpuKernel::avx2;
  // image-to-image
  double strength = 0.75;  ///< 0: the image unchanged (no step); 1: pure noise, every step
  Img2ImgConvention convention = Img2ImgConvention::a1111;
  InitLatent init_latent = InitLatent::sample;
  // decoding
  std::optional<TileOptions> vae_tiling;  ///< tile the VAE decode/encode (latent tiles for decode)
  bool taesd_decode = false;              ///< decode with the model's TAESD instead of the VAE
};

/// What a progress callback sees once per sampler step. Return false from the callback to cancel the run.
struct StepProgress {
  int image = 0;           ///< index of the first image of the current batch
  std::size_t step = 0;    ///< 0-based step of this batch
  std::size_t steps = 0;   ///< steps this batch runs
  double sigma = 0;
  double elapsed_s = 0;    ///< since the batch's sampling started
  const xt::xarray<float>* x = nullptr;         ///< [B, 4, h, w] latent entering the step
  const xt::xarray<float>* denoised = nullptr;  ///< the guided prediction of the clean latent at this step
};
using ProgressCallback = std::function<bool(const StepProgress&)>;

/// Thrown out of txt2img / img2img when the progress callback returns false.
struct GenerationCancelled : Error {
  GenerationCancelled() : Error("generation cancelled by the progress callback") {}
};

struct GeneratedImage {
  std::uint64_t seed = 0;
  Tensor<float> latent;   ///< [1, 4, h, w], the sampler's result (UNet space)
  Tensor<float> decoded;  ///< [1, 3, H, W], the decoder's raw output (about [-1, 1])
  Image image;            ///< 8-bit RGB, truncated as CompVis scripts/txt2img.py saves it
  GenerationParameters parameters;  ///< for the PNG's A1111 "parameters" text (model hash left to the caller)
};

struct GenerationTimings {
  double text_s = 0, unet_s = 0, vae_encode_s = 0, decode_s = 0, total_s = 0;
  std::size_t unet_calls = 0;
  std::size_t steps = 0;  ///< sampler steps run, summed over the batches
};

struct GenerationResult {
  std::vector<GeneratedImage> images;
  GenerationTimings timings;
};

/// A sampler latent (xt::xarray<float>, what the progress callback shows) as a Tensor of the same shape.
inline Tensor<float> latent_to_tensor(const xt::xarray<float>& x) {
  Dims shape;
  for (const auto d : x.shape()) shape.push_back(static_cast<index_t>(d));
  Tensor<float> t(shape);
  std::copy(x.data(), x.data() + x.size(), t.data());
  return t;
}

namespace generation_detail {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Row `i` of a [B, ...] latent as [1, ...].
inline Tensor<float> row(const xt::xarray<float>& x, std::size_t i) { return latent_to_tensor(batch_rows(x, i, 1)); }

/// `rows` copies of a [tokens, width] conditioning as [rows, tokens, width].
inline xt::xarray<float> repeat_context(const Tensor<float>& c, std::size_t rows) {
  xt::xarray<float> out = xt::xarray<float>::from_shape({rows, static_cast<std::size_t>(c.size(0)), static_cast<std::size_t>(c.size(1))});
  for (std::size_t r = 0; r < rows; ++r) std::copy(c.data(), c.data() + c.numel(), out.data() + r * static_cast<std::size_t>(c.numel()));
  return out;
}

/// The fresh noise of stochastic samplers for a batch: row k from image k's own torch generator.
class BatchNoise {
 public:
  explicit BatchNoise(std::vector<TorchNoise>* generators) : generators_(generators) {}
  xt::xarray<float> operator()(double, double, const xt::xarray<float>& like) {
    xt::xarray<float> out = xt::xarray<float>::from_shape(like.shape());
    const std::size_t rows = generators_->size(), per_row = out.size() / rows;
    for (std::size_t k = 0; k < rows; ++k) (*generators_)[k].fill(out.data() + k * per_row, per_row);
    return out;
  }

 private:
  std::vector<TorchNoise>* generators_;
};

/// Times every call of the guided denoiser (the UNet's share of a run).
template <class Inner>
class TimedDenoiser {
 public:
  TimedDenoiser(Inner& inner, GenerationTimings& timings) : inner_(&inner), timings_(&timings) {}
  xt::xarray<float> operator()(const xt::xarray<float>& x, double sigma) {
    const auto t0 = Clock::now();
    xt::xarray<float> d = (*inner_)(x, sigma);
    timings_->unet_s += seconds_since(t0);
    ++timings_->unet_calls;
    return d;
  }
  double sigma_min() const { return inner_->sigma_min(); }
  double sigma_max() const { return inner_->sigma_max(); }
  decltype(auto) schedule() const { return inner_->schedule(); }

 private:
  Inner* inner_;
  GenerationTimings* timings_;
};

/// The sampler callback: reports progress and turns a false from the user's callback into GenerationCancelled.
struct ProgressAdapter {
  const ProgressCallback* callback;
  int image;
  std::size_t steps;
  Clock::time_point start;
  void operator()(std::size_t step, double sigma, const xt::xarray<float>& x, const xt::xarray<float>& denoised) const {
    if (!callback || !*callback) return;
    const StepProgress p{image, step, steps, sigma, seconds_since(start), &x, &denoised};
    if (!(*callback)(p)) throw GenerationCancelled();
  }
};

/// A1111's label of a schedule for the "Schedule type" field.
inline std::string schedule_label(const AnySigmaSchedule& schedule) {
  const std::string_view name = sigma_schedule_name(schedule);
  if (name == "karras") return "Karras";
  if (name == "exponential") return "Exponential";
  if (name == "polyexponential") return "Polyexponential";
  if (name == "sgm_uniform") return "SGM Uniform";
  if (name == "simple") return "Simple";
  return "Automatic";  // k-diffusion's get_sigmas, A1111's default discretisation
}

}  // namespace generation_detail

/// The sampler and schedule `options` name: options.schedule when given, else the one the sampler's name pins
/// ("DPM++ 2M Karras"), else karras (the common front-end default for DPM++ samplers).
inline SamplerChoice resolve_sampler(const GenerationOptions& options) {
  SamplerChoice choice = parse_sampler(options.sampler);
  if (!options.schedule.empty()) choice.schedule = parse_schedule(options.schedule);
  else if (!sampler_name_has_schedule(options.sampler)) choice.schedule = Karras{};
  return choice;
}

/// Throws a clear Error for options no run could satisfy.
inline void validate_generation_options(const GenerationOptions& o, const StableDiffusionModel& model) {
  const index_t f = model.vae.downsampling_factor();
  const auto check = [](bool ok, const std::string& message) {
    if (!ok) throw Error(message);
  };
  check(o.width > 0 && o.height > 0 && o.width % f == 0 && o.height % f == 0,
        "width and height must be positive multiples of " + std::to_string(f) + ", got " + std::to_string(o.width) + "x" +
            std::to_string(o.height));
  check(o.width <= 16384 && o.height <= 16384, "width and height must be at most 16384");
  check(o.steps >= 1 && o.steps <= 10000, "steps must be in [1, 10000], got " + std::to_string(o.steps));
  check(o.batch_size >= 1 && o.batch_count >= 1, "batch size and batch count must be >= 1");
  check(std::isfinite(o.cfg_scale), "cfg scale must be finite");
  check(o.strength >= 0.0 && o.strength <= 1.0, "strength must be in [0, 1], got " + std::to_string(o.strength));
  check(!o.taesd_decode || model.taesd.has_value(), "a TAESD decode was asked for but no TAESD decoder is loaded");
  check(!o.eta || std::isfinite(*o.eta), "eta must be finite");
}

namespace generation_detail {

/// The sigmas of `schedule` for n steps on the model's float32 table, computed in float32 as k-diffusion does,
/// then widened for the sampler.
template <class Schedule>
std::vector<double> float_sigmas(const Schedule& schedule, index_t n, const DiscreteSchedule<float>& table) {
  std::vector<float> s;
  if constexpr (std::is_same_v<Schedule, AnySigmaSchedule>) s = sigmas_for<float>(schedule, n, table);
  else s = schedule.template sigmas<float>(n, table);
  return std::vector<double>(s.begin(), s.end());
}

/// Sets the step policy's eta when the options give one; an eta for a sampler without one is an error.
template <class Step>
void apply_eta(Step& step, const GenerationOptions& o, std::string_view sampler) {
  if (!o.eta) return;
  if constexpr (std::is_same_v<Step, AnyStep>) {
    std::visit([&](auto& policy) { apply_eta(policy, o, sampler); }, step);
  } else if constexpr (requires { step.eta; }) {
    step.eta = *o.eta;
  } else {
    throw Error("sampler '" + std::string(sampler) + "' has no eta");
  }
}

/// The sampler's row of the name table (its A1111 label goes into the image's parameters).
template <class Step>
const SamplerInfo* sampler_row(const Step& step) {
  if constexpr (std::is_convertible_v<Step, AnyStep>) {
    const std::size_t index = AnyStep(step).index();
    for (const auto& row : sampler_table)
      if (make_step(row.kind).index() == index) return &row;
  }
  return nullptr;
}

struct Decoded {
  Tensor<float> raw;
  Image image;
};

inline Decoded decode_latent(const StableDiffusionModel& model, const Tensor<float>& latent, const GenerationOptions& o) {
  if (o.taesd_decode) {
    // TAESD takes UNet-space latents and returns [0, 1]; mapped to [-1, 1] so every decode reads the same.
    Tensor<float> out = model.taesd->forward(latent.view());
    for (index_t i = 0; i < out.numel(); ++i) out.data()[i] = out.data()[i] * 2.0f - 1.0f;
    Image image = tensor_to_image(out.view());
    return {std::move(out), std::move(image)};
  }
  const float scale = static_cast<float>(model.vae.scale_factor());
  Tensor<float> z = Tensor<float>::copy_of(latent.view());
  for (index_t i = 0; i < z.numel(); ++i) z.data()[i] = z.data()[i] / scale;  // CompVis: z / scale_factor in float32
  Tensor<float> raw = o.vae_tiling ? model.vae.decode_tiled(z.view(), *o.vae_tiling) : model.vae.decode(z.view());
  Image image = tensor_to_image(raw.view());
  return {std::move(raw), std::move(image)};
}

inline DiagonalGaussian encode_image(const StableDiffusionModel& model, const Tensor<float>& image, const GenerationOptions& o) {
  if (!o.vae_tiling) return model.vae.encode(image.view());
  const index_t f = model.vae.downsampling_factor();  // the options count latent pixels; the encoder tiles the image
  TileOptions tiles = *o.vae_tiling;
  tiles.tile *= f;
  tiles.overlap *= f;
  return model.vae.encode_tiled(image.view(), tiles);
}

/// An image's start latent (UNet space: times the scale factor, in float32 as CompVis does): the posterior's mean
/// or a sample drawn with `generator`.
inline Tensor<float> init_latent(const StableDiffusionModel& model, const DiagonalGaussian& posterior,
                                 const GenerationOptions& o, TorchNoise& generator) {
  Tensor<float> z;
  if (o.init_latent == InitLatent::mean) {
    z = Tensor<float>::copy_of(posterior.mean.view());
  } else {
    Tensor<float> noise(posterior.mean.shape());
    generator.fill(noise.data(), static_cast<std::size_t>(noise.numel()));
    z = posterior.sample(noise.view());
  }
  const float scale = static_cast<float>(model.vae.scale_factor());
  for (index_t i = 0; i < z.numel(); ++i) z.data()[i] = mul_rounded(z.data()[i], scale);
  return z;
}

/// One generation run: batches of options.batch_size images, each sampled over the sigmas `make_sigmas(n)`
/// gives, from the start latent `start` builds. `init` is the img2img input (nullptr for txt2img).
template <class Step, class Schedule>
GenerationResult generate(const StableDiffusionModel& model, const GenerationOptions& o, Step step, const Schedule& schedule,
                          const Tensor<float>* init, const ProgressCallback& callback) {
  validate_generation_options(o, model);
  apply_eta(step, o, o.sampler);
  const auto run_start = Clock::now();
  GenerationResult result;
  GenerationTimings& timings = result.timings;

  // 1. the conditioning, once for the whole run
  auto t0 = Clock::now();
  ConditioningOptions text_options;
  text_options.clip_skip = o.clip_skip;
  const Conditioning conditioning =
      encode_conditioning(model.text_encoder, model.tokenizer, o.prompt, o.negative_prompt, text_options);
  timings.text_s = seconds_since(t0);

  const index_t f = model.vae.downsampling_factor();
  const std::size_t channels = static_cast<std::size_t>(model.unet.config().in_channels);
  const std::size_t h = static_cast<std::size_t>(o.height / f), w = static_cast<std::size_t>(o.width / f);
  if (init && !(init->rank() == 4 && init->size(0) == 1 && init->size(1) == 3 && init->size(2) == o.height && init->size(3) == o.width))
    throw ShapeError("img2img: the init image is " + init->shape().str() + " but the run asks for [1, 3, " +
                     std::to_string(o.height) + ", " + std::to_string(o.width) + "] (height x width of the options)");

  // The sigmas: all of them for txt2img; the strength's tail for img2img.
  const auto sigmas_for_steps = [&](index_t n) { return float_sigmas(schedule, n, model.schedule); };
  std::vector<double> sigmas;
  if (!init) {
    sigmas = sigmas_for_steps(o.steps);
  } else if (o.strength > 0.0) {
    sigmas = img2img_sigmas(o.convention, o.steps, o.strength, sigmas_for_steps).sigma_sched;
    if (sigmas.size() < 2)
      throw Error("img2img: strength " + std::to_string(o.strength) + " with " + std::to_string(o.steps) +
                  " steps leaves no step to run in the " + std::string(o.convention == Img2ImgConvention::a1111 ? "a1111" : "diffusers") +
                  " convention; raise the strength or the steps");
  }

  std::optional<DiagonalGaussian> posterior;
  if (init) {
    t0 = Clock::now();
    posterior = encode_image(model, *init, o);
    timings.vae_encode_s = seconds_since(t0);
  }
  auto denoiser = make_unet_denoiser(model.unet, model.schedule);
  const SamplerInfo* info = sampler_row(step);

  for (int batch = 0; batch < o.batch_count; ++batch) {
    const std::size_t rows = static_cast<std::size_t>(o.batch_size);
    const int first = batch * o.batch_size;
    std::vector<TorchNoise> generators;
    for (std::size_t k = 0; k < rows; ++k) generators.emplace_back(o.seed + static_cast<std::uint64_t>(first) + k, o.rng, o.cpu_kernel);

    // 2. the start latent
    xt::xarray<float> x = xt::xarray<float>::from_shape({rows, channels, h, w});
    const std::size_t per_row = channels * h * w;
    for (std::size_t k = 0; k < rows; ++k) {
      float* xr = x.data() + k * per_row;
      if (!init) {
        generators[k].fill(xr, per_row);
        const float s0 = static_cast<float>(sigmas.front());
        for (std::size_t i = 0; i < per_row; ++i) xr[i] = xr[i] * s0;  // k-diffusion: noise * sigmas[0] in float32
        continue;
      }
      const Tensor<float> z0 = init_latent(model, *posterior, o, generators[k]);
      if (sigmas.empty()) {
        std::copy(z0.data(), z0.data() + z0.numel(), xr);
        continue;
      }
      Tensor<float> noise(z0.shape());
      generators[k].fill(noise.data(), static_cast<std::size_t>(noise.numel()));
      const Tensor<float> start = add_noise_sigma(z0.view(), noise.view(), sigmas.front());  // x0 + noise * sigma
      std::copy(start.data(), start.data() + start.numel(), xr);
    }

    // 3. the sampler over the sigmas, the UNet guided by the conditioning
    if (sigmas.size() >= 2) {
      ClassifierFreeGuidance<decltype(denoiser)&, xt::xarray<float>> guided(
          denoiser, repeat_context(conditioning.uncond, rows), repeat_context(conditioning.cond, rows), o.cfg_scale);
      TimedDenoiser<decltype(guided)> timed(guided, timings);
      BatchNoise noise(&generators);
      ProgressAdapter progress{&callback, first, sigmas.size() - 1, Clock::now()};
      if constexpr (std::is_same_v<Step, AnyStep>) x = run_steps(step, timed, std::move(x), Sigmas(sigmas), noise, progress);
      else x = step(timed, std::move(x), Sigmas(sigmas), noise, progress);
      timings.steps += sigmas.size() - 1;
    }

    // 4. decode, one image at a time (the decoder's activations dominate memory)
    for (std::size_t k = 0; k < rows; ++k) {
      GeneratedImage out;
      out.seed = o.seed + static_cast<std::uint64_t>(first) + k;
      out.latent = row(x, k);
      t0 = Clock::now();
      if (init && sigmas.empty()) {
        out.decoded = Tensor<float>::copy_of(init->view());  // strength 0: the image as given
        out.image = tensor_to_image(init->view(), PixelRounding::round);
      } else {
        Decoded d = decode_latent(model, out.latent, o);
        out.decoded = std::move(d.raw);
        out.image = std::move(d.image);
      }
      timings.decode_s += seconds_since(t0);
      GenerationParameters& p = out.parameters;
      p.prompt = o.prompt;
      p.negative_prompt = o.negative_prompt;
      p.steps = o.steps;
      p.sampler = info ? std::string(info->a1111) : o.sampler;
      if constexpr (std::is_same_v<Schedule, AnySigmaSchedule>) p.schedule = schedule_label(schedule);
      else p.schedule = schedule_label(AnySigmaSchedule(schedule));
      p.cfg_scale = o.cfg_scale;
      p.seed = static_cast<std::int64_t>(out.seed);
      p.width = o.width;
      p.height = o.height;
      p.model_name = model.name();
      if (init) p.denoising_strength = o.strength;
      p.clip_skip = conditioning.clip_skip;
      p.rng = o.rng == TorchRng::cpu ? "CPU" : "NV";
      result.images.push_back(std::move(out));
    }
  }
  timings.total_s = seconds_since(run_start);
  return result;
}

}  // namespace generation_detail

/// Text to image with the sampler and schedule named in `options`.
inline GenerationResult txt2img(const StableDiffusionModel& model, const GenerationOptions& options,
                                const ProgressCallback& callback = {}) {
  const SamplerChoice choice = resolve_sampler(options);
  return generation_detail::generate(model, options, make_step(choice.sampler), choice.schedule, nullptr, callback);
}

/// Text to image with compile-time policies: txt2img(sd, options, Sampler<DPMpp2M, Karras>{}).
template <class Step, class Schedule>
GenerationResult txt2img(const StableDiffusionModel& model, const GenerationOptions& options,
                         const Sampler<Step, Schedule>& sampler, const ProgressCallback& callback = {}) {
  return generation_detail::generate(model, options, sampler.step, sampler.schedule, nullptr, callback);
}

/// Image to image: `init` [1, 3, height, width] in [-1, 1] (image_to_tensor of a picture) encoded, noised to the
/// strength's start sigma and denoised over the rest of the schedule.
inline GenerationResult img2img(const StableDiffusionModel& model, const Tensor<float>& init, const GenerationOptions& options,
                                const ProgressCallback& callback = {}) {
  const SamplerChoice choice = resolve_sampler(options);
  return generation_detail::generate(model, options, make_step(choice.sampler), choice.schedule, &init, callback);
}
inline GenerationResult img2img(const StableDiffusionModel& model, const Image& init, const GenerationOptions& options,
                                const ProgressCallback& callback = {}) {
  return img2img(model, image_to_tensor(init), options, callback);
}

template <class Step, class Schedule>
GenerationResult img2img(const StableDiffusionModel& model, const Tensor<float>& init, const GenerationOptions& options,
                         const Sampler<Step, Schedule>& sampler, const ProgressCallback& callback = {}) {
  return generation_detail::generate(model, options, sampler.step, sampler.schedule, &init, callback);
}

LATENTKIT_NAMESPACE_END
