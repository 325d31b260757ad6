// The SD VAE (AutoencoderKL): parity of moments, mean, log-variance and decode with the CompVis reference for every
// VAE io fixture, tiled encode/decode (exact for one tile, the seam measured for many), seeded sampling, thread-count
// determinism and input checks.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "latentkit/models/autoencoder_kl.hpp"
#include "latentkit/nn/parameters.hpp"
#include "network_fixtures.hpp"

using namespace latentkit;
using namespace network_test;

namespace {

const std::vector<std::string>& vae_io_files() {
  static const std::vector<std::string> files{"models/vae_tiny_io.safetensors"};
  return files;
}

AutoencoderKL vae_of(const SafetensorsFile& io) {
  const auto [file, prefix] = weights_of(io);
  AutoencoderKL vae(AutoencoderKLConfig::sd().with_json(config_of(io), io.path().string()));
  load_parameters(vae, SafetensorsFile(file), prefix);
  return vae;
}

Tensor<float> random_tensor(const Dims& shape, unsigned seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  Tensor<float> t(shape);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = dist(rng);
  return t;
}

}  // namespace

TEST_CASE("VAE matches the reference moments, mean, log-variance and decode of every VAE fixture (max abs <= 1e-4)") {
  for (const auto& name : vae_io_files()) {
    DYNAMIC_SECTION(name) {
      const SafetensorsFile io(latentkit_test::fixture(name));
      const AutoencoderKL vae = vae_of(io);
      const Tensor<float> image = io.load<float>("image");
      const Tensor<float> moments = vae.moments(image.view());
      const DiagonalGaussian posterior = vae.encode(image.view());
      const Tensor<float> decoded = vae.decode(io.load<float>("mean").view());
      const std::pair<const char*, const Tensor<float>*> checks[] = {
          {"moments", &moments}, {"mean", &posterior.mean}, {"logvar", &posterior.logvar}, {"decoded_from_mean", &decoded}};
      for (const auto& [key, got] : checks) {
        const double err = max_abs_diff(got->view(), io.load<float>(key).view());
        INFO(name << ", " << key << ": max |got - want| = " << err);
        CHECK(err <= 1e-4);
      }
    }
  }
}

TEST_CASE("VAE: a tile covering the whole input gives the untiled result bit for bit") {
  const SafetensorsFile io(latentkit_test::fixture(vae_io_files()[0]));
  const AutoencoderKL vae = vae_of(io);
  const Tensor<float> image = io.load<float>("image"), mean = io.load<float>("mean");
  CHECK(bit_identical(vae.decode_tiled(mean.view(), {mean.size(2), 0}), vae.decode(mean.view())));
  CHECK(bit_identical(vae.moments_tiled(image.view(), {image.size(2), 0}), vae.moments(image.view())));
}

TEST_CASE("VAE: tiled decode and encode over many tiles: the seam, with and without blending") {
  const SafetensorsFile io(latentkit_test::fixture(vae_io_files()[0]));
  const AutoencoderKL vae = vae_of(io);
  const index_t f = vae.downsampling_factor();
  // A latent of 3 x 2 tiles of 16 latent pixels and the image it decodes to.
  const Tensor<float> z = random_tensor({1, vae.latent_channels(), 40, 24}, 7, 1.0f);
  const Tensor<float> whole = vae.decode(z.view());
  const double range = max_abs(whole.view());
  const double blended = max_abs_diff(vae.decode_tiled(z.view(), {16, 8}).view(), whole.view());
  const double hard = max_abs_diff(vae.decode_tiled(z.view(), {12, 0}).view(), whole.view());
  const Tensor<float> m_whole = vae.moments(whole.view());
  const double m_range = max_abs(m_whole.view());
  const double m_blended = max_abs_diff(vae.moments_tiled(whole.view(), {16 * f, 8 * f}).view(), m_whole.view());
  const double m_hard = max_abs_diff(vae.moments_tiled(whole.view(), {12 * f, 0}).view(), m_whole.view());
  WARN("tiny VAE seam (max |tiled - untiled|): decode " << blended << " blended / " << hard << " hard tiles (max |untiled| "
                                                       << range << "); encode " << m_blended << " / " << m_hard
                                                       << " (max |untiled| " << m_range << ")");
  CHECK(blended > 0.0);  // the tiles really were separate evaluations
  CHECK(blended < hard);
  CHECK(m_blended < m_hard);
}

TEST_CASE("VAE: seeded samples of the posterior are reproducible and follow mean + std * noise") {
  const SafetensorsFile io(latentkit_test::fixture(vae_io_files()[0]));
  const AutoencoderKL vae = vae_of(io);
  const DiagonalGaussian posterior = vae.encode(io.load<float>("image").view());
  const Tensor<float> a = posterior.sample(std::uint64_t{42}), b = posterior.sample(std::uint64_t{42}),
                      c = posterior.sample(std::uint64_t{43});
  CHECK(bit_identical(a, b));
  CHECK_FALSE(bit_identical(a, c));
  const Tensor<float> zero = Tensor<float>::zeros(posterior.mean.shape());
  CHECK(bit_identical(posterior.sample(zero.view()), posterior.mean));
}

TEST_CASE("VAE outputs are bit-identical for 1, 2 and 3 threads") {
  const SafetensorsFile io(latentkit_test::fixture(vae_io_files()[0]));
  const AutoencoderKL vae = vae_of(io);
  const Tensor<float> image = io.load<float>("image"), mean = io.load<float>("mean");
  std::vector<Tensor<float>> moments, decoded;
  for (int threads : {1, 2, 3}) {
    const ThreadScope scope(threads);
    moments.push_back(vae.moments(image.view()));
    decoded.push_back(vae.decode(mean.view()));
  }
  for (std::size_t i = 1; i < moments.size(); ++i) {
    CHECK(bit_identical(moments[0], moments[i]));
    CHECK(bit_identical(decoded[0], decoded[i]));
  }
}

TEST_CASE("VAE rejects images and latents of the wrong shape by name") {
  const SafetensorsFile io(latentkit_test::fixture(vae_io_files()[0]));
  const AutoencoderKL vae = vae_of(io);
  const index_t f = vae.downsampling_factor();
  REQUIRE_THROWS_WITH(vae.encode(Tensor<float>({1, 3, f + 1, f}).view()), Catch::Contains("multiples of"));
  REQUIRE_THROWS_WITH(vae.encode(Tensor<float>({1, 4, f, f}).view()), Catch::Contains("AutoencoderKL: image"));
  REQUIRE_THROWS_WITH(vae.decode(Tensor<float>({1, vae.latent_channels() + 1, 2, 2}).view()), Catch::Contains("latent"));
  REQUIRE_THROWS_AS(vae.decode_tiled(Tensor<float>({1, vae.latent_channels(), 8, 8}).view(), {4, 4}), Error);
}
