// `latentkit txt2img` and `latentkit img2img`: the main job. Flags follow stable-diffusion.cpp and A1111
// (-m, -p, -n, --steps, --cfg-scale, --sampler, --schedule, -s, -W, -H, -b, --strength, -i, -o, ...).
// The PNG carries the generation parameters as an A1111 "parameters" text chunk and is written atomically
// (temporary name, then rename), so a failed or cancelled run never leaves a partial file.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <future>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli_support.hpp"
#include "latentkit/io/image.hpp"
#include "latentkit/io/png_writer.hpp"
#include "latentkit/io/sha256.hpp"
#include "latentkit/pipelines/generation.hpp"
#include "latentkit/pipelines/latent_preview.hpp"

namespace latentkit_cli {

inline constexpr std::string_view generate_options_usage =
    "  -m, --model FILE          single-file SD1.x / SD2.x checkpoint (.safetensors)\n"
    "  -p, --prompt TEXT         the prompt (A1111 syntax: (word:1.2), [word], BREAK)\n"
    "  -n, --negative-prompt T   the negative prompt (default: empty)\n"
    "  --steps N                 sampler steps (default 20)\n"
    "  --cfg-scale S             classifier-free guidance scale (default 7.0)\n"
    "  --sampler NAME            dpm++2m (default), euler_a, \"DPM++ 2M Karras\", ... (see latentkit help compare)\n"
    "  --schedule NAME           karras (default unless the sampler name has one), normal, exponential, ...\n"
    "  -s, --seed N              seed; -1 (default) picks one at random and prints it\n"
    "  -W, --width PX            image width, a multiple of 8 (default 512; img2img: the init image's)\n"
    "  -H, --height PX           image height, a multiple of 8 (default 512; img2img: the init image's)\n"
    "  -b, --batch-count N       images, one after another (seeds seed, seed+1, ...; default 1)\n"
    "  --batch-size N            images per UNet batch (default 1)\n"
    "  -o, --output FILE         PNG to write (default output.png; more images: output_1.png, ...)\n"
    "  --threads N               worker threads (default: all cores)\n"
    "  --tokenizer PATH          CLIP vocabulary (.txt.gz, vocab.json or a folder); default: beside the model,\n"
    "                            then $LATENTKIT_TOKENIZER, ~/.cache/latentkit, /usr/share/latentkit\n"
    "  --clip-skip N             1 = last layer, 2 = penultimate (default: SD1 1, SD2 2)\n"
    "  --weight-type T           f32 (default) or bf16 (UNet and VAE weights kept packed in bf16)\n"
    "  --prediction eps|v        override what the UNet predicts (default: SD2 v, else eps)\n"
    "  --rng cpu|cuda            noise like torch.randn on a CPU generator (default) or on CUDA (Philox)\n"
    "  --rng-kernel avx2|scalar  which torch CPU normal kernel to match: AVX2 (default, what torch runs on x86-64\n"
    "                            CPUs with AVX2) or the scalar one (ATEN_CPU_CAPABILITY=default); they differ in\n"
    "                            the last bits\n"
    "  --eta E                   eta of the ancestral / SDE samplers\n"
    "  --vae-tiling              decode (and encode) the VAE in overlapping tiles: bounded memory at any size\n"
    "  --taesd FILE              a TAESD decoder (.safetensors): used for --preview, and for the final decode with\n"
    "                            --taesd-decode\n"
    "  --preview PATH            write a preview PNG of the current latent after every step\n"
    "  --no-model-hash           leave the model's SHA-256 out of the PNG parameters (saves reading the file)\n";

inline constexpr std::string_view txt2img_usage_head =
    "usage: latentkit txt2img -m MODEL -p PROMPT [options]\n"
    "\n"
    "Generates images from a prompt: seeded noise, the UNet guided by the CLIP conditioning at every sampler\n"
    "step, the VAE decode. Writes PNGs with the parameters embedded (read them back with latentkit inspect).\n";
inline constexpr std::string_view img2img_usage_head =
    "usage: latentkit img2img -m MODEL -i INIT.png -p PROMPT [--strength S] [options]\n"
    "\n"
    "Re-generates an image: the VAE encodes INIT (PNG or JPEG), noise is added at the strength's start sigma and\n"
    "the sampler runs the rest of the schedule. Strength 0 keeps the image, 1 starts from pure noise.\n"
    "  -i, --init-img FILE       the input image (its size must be a multiple of 8)\n"
    "  --strength S              denoising strength in [0, 1] (default 0.75)\n"
    "  --img2img-convention C    a1111 (default), diffusers, a1111_fix_steps: where the strength starts\n"
    "  --init-latent sample|mean sample the VAE posterior (default) or take its mean\n";
inline constexpr std::string_view generate_usage_tail =
    "Exit status: 0 on success, 1 on a bad command line, 2 on a missing or bad file or a run that failed.\n";

namespace generate_detail {

struct Options {
  latentkit::GenerationOptions run;
  latentkit::ModelLoadOptions load;
  std::optional<std::string> model, init, preview;
  std::string output = "output.png";
  std::int64_t seed = -1;
  std::optional<int> threads;
  bool width_given = false, height_given = false, have_prompt = false, model_hash = true;
};

/// "out.png" for image 0, "out_1.png", "out_2.png", ... after it.
inline std::filesystem::path output_path(const std::filesystem::path& first, std::size_t index) {
  if (index == 0) return first;
  return first.parent_path() / (first.stem().string() + "_" + std::to_string(index) + first.extension().string());
}

/// Progress on stderr: a bar with step time and ETA on a terminal, one plain line per step otherwise.
struct Progress {
  bool tty = ::isatty(::fileno(stderr)) != 0;
  int images = 1;
  void operator()(const latentkit::StepProgress& p) const {
    const double per_step = p.elapsed_s / static_cast<double>(p.step + 1);
    const double eta = per_step * static_cast<double>(p.steps - p.step - 1);
    if (tty) {
      const int width = 30, done = static_cast<int>(static_cast<double>(width) * static_cast<double>(p.step + 1) / static_cast<double>(p.steps));
      std::fprintf(stderr, "\r  image %d/%d [%s%s] %zu/%zu  %.2f s/step  ETA %.0f s ", p.image + 1, images,
                   std::string(static_cast<std::size_t>(done), '=').c_str(), std::string(static_cast<std::size_t>(width - done), ' ').c_str(),
                   p.step + 1, p.steps, per_step, eta);
      if (p.step + 1 == p.steps) std::fputc('\n', stderr);
    } else {
      std::fprintf(stderr, "  image %d/%d step %zu/%zu sigma %.4f  %.2f s/step  ETA %.0f s\n", p.image + 1, images, p.step + 1,
                   p.steps, p.sigma, per_step, eta);
    }
    std::fflush(stderr);
  }
};

template <class T>
bool number_in(std::string_view text, T& out, T lo, T hi) {
  if constexpr (std::is_floating_point_v<T>) {
    try {
      std::size_t used = 0;
      const std::string s(text);
      out = static_cast<T>(std::stod(s, &used));
      if (used != s.size()) return false;
    } catch (const std::exception&) {
      return false;
    }
  } else {
    if (!parse_number(text, out)) return false;
  }
  return out >= lo && out <= hi;
}

/// Parses the shared flag vocabulary; returns an error message, empty on success.
inline std::string parse(std::span<const std::string_view> args, bool img2img, Options& o) {
  using latentkit::GenerationOptions;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    const auto value = [&]() -> std::optional<std::string_view> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    const auto bad = [&](std::string_view v, std::string_view what) {
      return std::string(a) + " needs " + std::string(what) + ", got '" + std::string(v) + "'";
    };
    const bool flag_only = a == "--vae-tiling" || a == "--taesd-decode" || a == "--no-model-hash";
    std::optional<std::string_view> v;
    if (!flag_only && a.starts_with("-")) {
      v = value();
      if (!v) return std::string(a) + " needs a value";
    }
    if (a == "-m" || a == "--model") o.model = std::string(*v);
    else if (a == "-p" || a == "--prompt") o.run.prompt = std::string(*v), o.have_prompt = true;
    else if (a == "-n" || a == "--negative-prompt") o.run.negative_prompt = std::string(*v);
    else if (a == "--steps") { if (!number_in(*v, o.run.steps, 1, 10000)) return bad(*v, "an integer in [1, 10000]"); }
    else if (a == "--cfg-scale") { if (!number_in(*v, o.run.cfg_scale, -1000.0, 1000.0)) return bad(*v, "a number"); }
    else if (a == "--sampler") o.run.sampler = std::string(*v);
    else if (a == "--schedule") o.run.schedule = std::string(*v);
    else if (a == "-s" || a == "--seed") {
      if (*v == "-1") o.seed = -1;
      else {
        std::uint64_t s = 0;
        if (!parse_number(*v, s)) return bad(*v, "a non-negative integer or -1");
        o.seed = static_cast<std::int64_t>(s);
      }
    }
    else if (a == "-W" || a == "--width") { if (!number_in(*v, o.run.width, 1, 16384)) return bad(*v, "a size in pixels"); o.width_given = true; }
    else if (a == "-H" || a == "--height") { if (!number_in(*v, o.run.height, 1, 16384)) return bad(*v, "a size in pixels"); o.height_given = true; }
    else if (a == "-b" || a == "--batch-count") { if (!number_in(*v, o.run.batch_count, 1, 100000)) return bad(*v, "a positive integer"); }
    else if (a == "--batch-size") { if (!number_in(*v, o.run.batch_size, 1, 64)) return bad(*v, "an integer in [1, 64]"); }
    else if (a == "-o" || a == "--output") o.output = std::string(*v);
    else if (a == "--threads") { int t = 0; if (!number_in(*v, t, 1, 1024)) return bad(*v, "a positive integer"); o.threads = t; }
    else if (a == "--tokenizer" || a == "--vocab") o.load.tokenizer = std::string(*v);
    else if (a == "--clip-skip") { if (!number_in(*v, o.run.clip_skip, 1, 64)) return bad(*v, "a positive integer"); }
    else if (a == "--weight-type") o.load.weights.weights.type = latentkit::parse_weight_type(*v);
    else if (a == "--prediction") o.load.weights.prediction = latentkit::parse_prediction(*v);
    else if (a == "--rng") o.run.rng = latentkit::parse_torch_rng(*v);
    else if (a == "--rng-kernel") o.run.cpu_kernel = latentkit::parse_torch_cpu_kernel(*v);
    else if (a == "--eta") { double e = 0; if (!number_in(*v, e, 0.0, 100.0)) return bad(*v, "a number in [0, 100]"); o.run.eta = e; }
    else if (a == "--vae-tiling") o.run.vae_tiling = latentkit::TileOptions{};
    else if (a == "--taesd") o.load.taesd = std::string(*v);
    else if (a == "--taesd-decode") o.run.taesd_decode = true;
    else if (a == "--preview") o.preview = std::string(*v);
    else if (a == "--no-model-hash") o.model_hash = false;
    else if (img2img && (a == "-i" || a == "--init-img")) o.init = std::string(*v);
    else if (img2img && a == "--strength") { if (!number_in(*v, o.run.strength, 0.0, 1.0)) return bad(*v, "a number in [0, 1]"); }
    else if (img2img && a == "--img2img-convention") o.run.convention = latentkit::parse_img2img_convention(*v);
    else if (img2img && a == "--init-latent") o.run.init_latent = latentkit::parse_init_latent(*v);
    else return "unknown option '" + std::string(a) + "' (see latentkit help " + (img2img ? "img2img" : "txt2img") + ")";
  }
  if (!o.model) return "-m/--model is required";
  if (!o.have_prompt) return "-p/--prompt is required";
  if (img2img && !o.init) return "-i/--init-img is required";
  if (o.run.taesd_decode && !o.load.taesd) return "--taesd-decode needs --taesd FILE";
  return {};
}

inline int run(std::span<const std::string_view> args, bool img2img) {
  const std::string_view command = img2img ? "img2img" : "txt2img";
  if (wants_help(args)) {
    std::fputs(std::string(img2img ? img2img_usage_head : txt2img_usage_head).c_str(), stdout);
    std::fputs(std::string(generate_options_usage).c_str(), stdout);
    std::fputs(std::string(generate_usage_tail).c_str(), stdout);
    return exit_ok;
  }
  Options o;
  try {  // names (sampler, schedule, rng, ...) are checked here: a bad one is a command-line error
    if (const std::string error = parse(args, img2img, o); !error.empty()) {
      print_error(command, error);
      return exit_usage;
    }
    (void)latentkit::resolve_sampler(o.run);
  } catch (const latentkit::Error& e) {
    print_error(command, e.what());
    return exit_usage;
  }
#if LATENTKIT_HAS_OPENMP
  if (o.threads) omp_set_num_threads(*o.threads);
#endif
  if (o.seed < 0) o.seed = static_cast<std::int64_t>(std::random_device{}() & 0xffffffffu);
  o.run.seed = static_cast<std::uint64_t>(o.seed);
  std::fprintf(stderr, "seed %lld\n", static_cast<long long>(o.seed));

  // Read the init image before the (slow) model load: a bad file fails at once.
  std::optional<latentkit::Image> init;
  if (img2img) {
    init = latentkit::read_image(*o.init, 3);
    if (!o.width_given) o.run.width = init->width;
    if (!o.height_given) o.run.height = init->height;
  }
  if (o.run.width % 8 != 0 || o.run.height % 8 != 0) {
    print_error(command, "width and height must be multiples of 8, got " + std::to_string(o.run.width) + "x" + std::to_string(o.run.height));
    return exit_usage;
  }

  // A1111's "Model hash": the file's SHA-256, read on another thread while the model loads (the load is mostly
  // waiting on the file and converting; the hash reads the same pages).
  std::future<std::string> model_hash;
  if (o.model_hash)
    model_hash = std::async(std::launch::async, [path = std::filesystem::path(*o.model)] { return latentkit::a1111_model_hash(path); });
  const auto t0 = std::chrono::steady_clock::now();
  const latentkit::StableDiffusionModel model = latentkit::load_stable_diffusion(*o.model, o.load);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "model %s: %s, %s, loaded in %.1f s\n", model.name().c_str(),
               std::string(latentkit::family_name(model.info.family)).c_str(),
               model.prediction() == latentkit::Prediction::v_prediction ? "v-prediction" : "epsilon", load_s);

  const Progress bar{.images = o.run.batch_size * o.run.batch_count};
  const latentkit::ProgressCallback callback = [&](const latentkit::StepProgress& p) {
    bar(p);
    if (o.preview) {
      const auto& shape = p.denoised->shape();
      const latentkit::index_t c = static_cast<latentkit::index_t>(shape[1]), h = static_cast<latentkit::index_t>(shape[2]),
                               w = static_cast<latentkit::index_t>(shape[3]);
      latentkit::Image preview;
      if (model.taesd) {
        latentkit::Tensor<float> z({1, c, h, w});
        std::copy(p.denoised->data(), p.denoised->data() + z.numel(), z.data());
        latentkit::Tensor<float> out = model.taesd->forward(z.view());
        for (latentkit::index_t i = 0; i < out.numel(); ++i) out.data()[i] = out.data()[i] * 2.0f - 1.0f;
        preview = latentkit::tensor_to_image(out.view());
      } else {
        preview = latentkit::latent_preview(p.denoised->data(), c, h, w);
      }
      latentkit::write_png(*o.preview, preview);
    }
    return true;
  };
  const latentkit::GenerationResult result =
      img2img ? latentkit::img2img(model, *init, o.run, callback) : latentkit::txt2img(model, o.run, callback);

  std::string hash;
  if (o.model_hash) {
    try {
      hash = model_hash.get();
    } catch (const std::exception& e) {  // the images are made: write them without the hash rather than lose them
      print_error(command, std::string("the model hash could not be computed (") + e.what() + "); the PNG leaves it out");
    }
  }
  for (std::size_t k = 0; k < result.images.size(); ++k) {
    latentkit::GenerationParameters parameters = result.images[k].parameters;
    parameters.model_hash = hash;
    const std::filesystem::path path = output_path(o.output, k);
    latentkit::write_png(path, result.images[k].image, {{"parameters", latentkit::format_a1111_parameters(parameters)}});
    std::printf("wrote %s (seed %llu)\n", path.string().c_str(), static_cast<unsigned long long>(result.images[k].seed));
  }
  const auto& t = result.timings;
  std::fprintf(stderr,
               "done: %zu image(s) %dx%d in %.1f s: text %.2f s, UNet %.1f s (%zu steps, %.2f s/step), %s%.1f s, "
               "peak RSS %.2f GiB\n",
               result.images.size(), o.run.width, o.run.height, t.total_s, t.text_s, t.unet_s, t.steps,
               t.steps ? t.unet_s / static_cast<double>(t.steps) : 0.0, img2img ? "VAE encode + decode " : "VAE decode ",
               t.vae_encode_s + t.decode_s, peak_rss_gib());
  return exit_ok;
}

}  // namespace generate_detail

inline int txt2img(std::span<const std::string_view> args) { return generate_detail::run(args, false); }
inline int img2img(std::span<const std::string_view> args) { return generate_detail::run(args, true); }

}  // namespace latentkit_cli
