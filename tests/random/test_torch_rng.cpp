// torch-compatible generators: every recorded torch.randn (both CPU kernels) bit for bit, the fixture's initial noise,
// A1111's Philox example, and TorchNoise as a sampler's noise source.
#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <xtensor/xarray.hpp>

#include "latentkit/io/safetensors.hpp"
#include "latentkit/random/philox.hpp"
#include "latentkit/random/torch_cpu_generator.hpp"
#include "latentkit/samplers/noise.hpp"
#include "latentkit/samplers/torch_noise.hpp"
#include "support/fixtures.hpp"

namespace {
namespace lk = latentkit;

const nlohmann::json& recorded() {
  static const nlohmann::json j =
      nlohmann::json::parse(latentkit_test::read_text(std::string(LATENTKIT_RANDOM_TEST_DATA) + "/torch_randn_cpu.json"));
  return j;
}

std::vector<std::uint32_t> parse_bits(const std::string& text) {
  std::vector<std::uint32_t> out;
  std::istringstream in(text);
  std::string word;
  while (in >> word) out.push_back(static_cast<std::uint32_t>(std::stoul(word, nullptr, 16)));
  return out;
}

std::size_t numel(const nlohmann::json& shape) {
  std::size_t n = 1;
  for (const auto& d : shape) n *= d.get<std::size_t>();
  return n;
}

std::string hex(std::uint32_t u) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", u);
  return buf;
}

/// Empty when `got` has exactly the bits `expected`, else where and how they first differ and how many differ.
std::string bit_mismatch(const std::vector<float>& got, const std::vector<std::uint32_t>& expected) {
  if (got.size() != expected.size())
    return "size " + std::to_string(got.size()) + " vs recorded " + std::to_string(expected.size());
  std::size_t count = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::bit_cast<std::uint32_t>(got[i]) != expected[i] && count++ == 0) first = i;
  if (count == 0) return {};
  return std::to_string(count) + " of " + std::to_string(got.size()) + " differ; first at " + std::to_string(first) +
         ": got " + hex(std::bit_cast<std::uint32_t>(got[first])) + ", torch " + hex(expected[first]);
}

std::vector<float> randn(lk::TorchCpuGenerator& g, std::size_t n, lk::TorchCpuKernel kernel) {
  std::vector<float> out(n);
  g.randn(out.data(), n, kernel);
  return out;
}

}  // namespace

TEST_CASE("TorchCpuGenerator reproduces every recorded torch.randn bit for bit, on both CPU kernels", "[random]") {
  const auto& kernels = recorded().at("kernels");
  REQUIRE(kernels.contains("avx2"));
  REQUIRE(kernels.contains("scalar"));
  std::size_t cases = 0, values = 0;
  for (const auto& [name, k] : kernels.items()) {
    const lk::TorchCpuKernel kernel = lk::parse_torch_cpu_kernel(name);
    for (const auto& c : k.at("cases")) {
      const std::uint64_t seed = std::stoull(c.at("seed").get<std::string>());
      const std::size_t n = numel(c.at("shape"));
      const auto expected = parse_bits(c.at("bits").get<std::string>());
      lk::TorchCpuGenerator g(seed);
      INFO("kernel " << name << ", seed " << seed << ", n " << n);
      CHECK(bit_mismatch(randn(g, n, kernel), expected) == "");
      ++cases;
      values += n;
    }
  }
  CHECK(cases == 2 * 5 * 16);
  CHECK(values > 10000);
}

TEST_CASE("TorchCpuGenerator continues the stream across randn calls like torch, cached normal included", "[random]") {
  std::size_t sequences = 0;
  for (const auto& [name, k] : recorded().at("kernels").items()) {
    const lk::TorchCpuKernel kernel = lk::parse_torch_cpu_kernel(name);
    for (const auto& s : k.at("sequences")) {
      const std::uint64_t seed = std::stoull(s.at("seed").get<std::string>());
      lk::TorchCpuGenerator g(seed);
      std::size_t call = 0;
      for (const auto& c : s.at("calls")) {
        const std::size_t n = numel(c.at("shape"));
        INFO("kernel " << name << ", seed " << seed << ", call " << call << " (n " << n << ")");
        CHECK(bit_mismatch(randn(g, n, kernel), parse_bits(c.at("bits").get<std::string>())) == "");
        ++call;
      }
      CHECK(call >= 4);
      ++sequences;
    }
  }
  CHECK(sequences >= 4);
}

TEST_CASE("TorchCpuGenerator(seed).randn equals the fixture's initial noise bit for bit", "[random]") {
  const lk::SafetensorsFile f(latentkit_test::fixture("models/txt2img_sd1_tiny.safetensors"));
  const auto pipeline = nlohmann::json::parse(f.metadata().at("pipeline"));
  const auto seed = pipeline.at("seed").get<std::uint64_t>();
  const lk::Tensor<float> noise = f.load<float>("noise");  // (1, 4, 16, 16)
  const auto n = static_cast<std::size_t>(noise.numel());
  std::vector<std::uint32_t> expected(n);
  for (std::size_t i = 0; i < n; ++i) expected[i] = std::bit_cast<std::uint32_t>(noise.data()[i]);
  lk::TorchCpuGenerator g(seed);
  INFO("seed " << seed << ", " << n << " elements");
  CHECK(bit_mismatch(randn(g, n, lk::TorchCpuKernel::avx2), expected) == "");
}

TEST_CASE("TorchCpuGenerator seeds mt19937 with the low 32 bits of the seed, as torch.manual_seed does", "[random]") {
  lk::TorchCpuGenerator a(1), b((std::uint64_t{1} << 32) + 1), c(5489);
  for (int i = 0; i < 100; ++i) CHECK(a.random() == b.random());
  CHECK(a.seed() == 1);
  CHECK(b.seed() == (std::uint64_t{1} << 32) + 1);
  for (int i = 1; i < 10000; ++i) c.random();
  CHECK(c.random() == 4123659995u);  // the 10000th output of mt19937 seeded with 5489 ([rand.predef])

  lk::TorchCpuGenerator d(7), e(7);
  const std::uint64_t hi = e.random(), lo = e.random();
  CHECK(d.random64() == (hi << 32 | lo));
}

TEST_CASE("TorchCpuGenerator caches the second normal of a pair only on the small-tensor path", "[random]") {
  lk::TorchCpuGenerator g(42);
  CHECK_FALSE(g.next_double_normal_sample().has_value());
  std::vector<float> one(1), two(2), block(16);
  g.randn(one.data(), 1);
  REQUIRE(g.next_double_normal_sample().has_value());
  const double cached = *g.next_double_normal_sample();
  g.randn(block.data(), 16);  // the vectorised path leaves the cache alone
  REQUIRE(g.next_double_normal_sample().has_value());
  CHECK(*g.next_double_normal_sample() == cached);
  g.randn(two.data(), 2);  // the cached value first, then a new pair's cosine, caching its sine
  CHECK(two[0] == static_cast<float>(cached));
  CHECK(g.next_double_normal_sample().has_value());
}

TEST_CASE("parse_torch_cpu_kernel accepts avx2, scalar and default and names them when refusing", "[random]") {
  CHECK(lk::parse_torch_cpu_kernel("avx2") == lk::TorchCpuKernel::avx2);
  CHECK(lk::parse_torch_cpu_kernel("scalar") == lk::TorchCpuKernel::scalar);
  CHECK(lk::parse_torch_cpu_kernel("default") == lk::TorchCpuKernel::scalar);
  CHECK_THROWS_AS(lk::parse_torch_cpu_kernel("avx512"), lk::UnknownNameError);
  CHECK_THROWS_WITH(lk::parse_torch_cpu_kernel("avx512"),
                    Catch::Contains("avx512") && Catch::Contains("\"avx2\"") && Catch::Contains("\"scalar\"") &&
                        Catch::Contains("\"default\""));
}

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors", "[random]") {
  // Salmon et al., Random123 kat_vectors: philox4x32 10 rounds.
  using W = std::array<std::uint32_t, 4>;
  CHECK(lk::philox4x32_10({0, 0, 0, 0}, {0, 0}) == W{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(lk::philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        W{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(lk::philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
        W{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("TorchCudaGenerator gives A1111's Philox example for seed 0, shape 3x4", "[random]") {
  // The docstring of A1111's modules/rng_philox.py (Generator(seed=0).randn((3, 4))), printed to 8 decimals.
  const std::vector<double> docstring{-0.92466259, -0.42534415, -2.6438457,  0.14518388,  -0.12086647, -0.57972564,
                                      -0.62285122, -0.32838709, -1.07454231, -0.36314407, -1.67105067, 2.26550497};
  // What that module's code returns (float32; run with numpy 1.24): its constants are 2^-32 and 2pi * 2^-32 rounded
  // to float32, which moves values by up to 2.6e-7 from the docstring, printed from exact 2^-32 scaling.
  const std::vector<std::uint32_t> first_call = parse_bits(
      "bf6cb6ad bed9c6af c02934c5 3e14ab15 bdf788dc bf1468e7 bf1f732f bea8225c bf898a98 beb9ee06 bfd5e4fb 4010fe09");
  const std::vector<std::uint32_t> second_call = parse_bits(
      "3e392a6c bf0d6117 3f6c7f09 bf3c2704 3fb0a3aa 3f5e1d0c 3e04c486 bf70cdc8 3f4f97c6 3f61ce1f bf81b282 beba0abe");
  lk::TorchCudaGenerator g(0);
  std::vector<float> out(12);
  g.randn(out.data(), out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    INFO("element " << i << ": " << out[i] << " vs " << docstring[i]);
    CHECK(std::abs(static_cast<double>(out[i]) - docstring[i]) < 3e-7);
  }
  CHECK(bit_mismatch(out, first_call) == "");
  CHECK(g.offset() == 1);
  g.randn(out.data(), out.size());  // Generator.offset advanced by one call
  CHECK(bit_mismatch(out, second_call) == "");
  CHECK(g.offset() == 2);

  // The seed's high word is the key's second word.
  lk::TorchCudaGenerator big(123456789012345);
  std::vector<float> b(8);
  big.randn(b.data(), b.size());
  CHECK(bit_mismatch(b, parse_bits("3f6896b0 bf312acd bf1a4816 3fb5e96f 3f04928f 3f46bebc 3f7e5cf2 bf511164")) == "");
}

TEST_CASE("TorchNoise draws the initial latent first and continues the same stream in call order", "[random]") {
  static_assert(lk::NoiseSource<lk::TorchNoise, xt::xarray<float>>);
  static_assert(lk::NoiseSource<lk::TorchNoise, xt::xarray<double>>);
  const std::size_t n = 1024;
  for (const auto kernel : {lk::TorchCpuKernel::avx2, lk::TorchCpuKernel::scalar}) {
    lk::TorchCpuGenerator reference(42);
    const auto first = randn(reference, n, kernel);
    const auto second = randn(reference, n, kernel);
    const auto third = randn(reference, 5, kernel);

    lk::TorchNoise noise(42, lk::TorchRng::cpu, kernel);
    std::vector<float> latent(n);
    noise.fill(latent.data(), n);
    std::vector<std::uint32_t> first_bits(n), second_bits(n);
    for (std::size_t i = 0; i < n; ++i) {
      first_bits[i] = std::bit_cast<std::uint32_t>(first[i]);
      second_bits[i] = std::bit_cast<std::uint32_t>(second[i]);
    }
    CHECK(bit_mismatch(latent, first_bits) == "");
    const xt::xarray<float> like = xt::xarray<float>::from_shape({1, 4, 16, 16});
    const xt::xarray<float> step = noise(14.6, 9.7, like);
    CHECK(step.shape() == like.shape());
    CHECK(bit_mismatch(std::vector<float>(step.begin(), step.end()), second_bits) == "");
    const xt::xarray<double> wide = noise(9.7, 0.0, xt::xarray<double>::from_shape({5}));
    for (std::size_t i = 0; i < 5; ++i) CHECK(wide(i) == static_cast<double>(third[i]));
    CHECK(noise.calls() == 3);
  }

  lk::TorchCudaGenerator cuda(7);
  std::vector<float> a(16), b(16);
  cuda.randn(a.data(), a.size());
  cuda.randn(b.data(), b.size());
  lk::TorchNoise noise(7, lk::parse_torch_rng("cuda"));
  std::vector<float> x(16);
  noise.fill(x.data(), x.size());
  CHECK(x == a);
  const xt::xarray<float> y = noise(1.0, 0.5, xt::xarray<float>::from_shape({16}));
  CHECK(std::vector<float>(y.begin(), y.end()) == b);
}

TEST_CASE("parse_torch_rng accepts cpu and cuda and names them when refusing", "[random]") {
  CHECK(lk::parse_torch_rng("cpu") == lk::TorchRng::cpu);
  CHECK(lk::parse_torch_rng("cuda") == lk::TorchRng::cuda);
  CHECK_THROWS_AS(lk::parse_torch_rng("gpu"), lk::UnknownNameError);
  CHECK_THROWS_WITH(lk::parse_torch_rng("gpu"),
                    Catch::Contains("torch RNG") && Catch::Contains("\"gpu\"") && Catch::Contains("\"cpu\"") &&
                        Catch::Contains("\"cuda\""));
}
