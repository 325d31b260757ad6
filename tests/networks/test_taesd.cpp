// TAESD: parity of the encoder and decoder with taesd.py for every TAESD io fixture, structure from the keys,
// thread-count determinism and errors.
#include <catch2/catch.hpp>

#include <vector>

#include "latentkit/io/safetensors_writer.hpp"
#include "latentkit/models/taesd.hpp"
#include "network_fixtures.hpp"

using namespace latentkit;
using namespace network_test;

namespace {

struct TaesdCase {
  std::string io_file, encoder_file, decoder_file;
};
const std::vector<TaesdCase>& taesd_cases() {
  static const std::vector<TaesdCase> cases{{"models/taesd_random_io.safetensors", "models/taesd_random_encoder.safetensors",
                                             "models/taesd_random_decoder.safetensors"}};
  return cases;
}

}  // namespace

TEST_CASE("TAESD decoder and encoder match taesd.py on every TAESD fixture (max abs <= 5e-5)") {
  for (const auto& c : taesd_cases()) {
    const SafetensorsFile io(latentkit_test::fixture(c.io_file));
    const SafetensorsFile enc_file(latentkit_test::fixture(c.encoder_file)), dec_file(latentkit_test::fixture(c.decoder_file));
    TaesdNetwork decoder = load_taesd(dec_file), encoder = load_taesd(enc_file);
    // Every tensor of each file is a parameter of the network built from it.
    CHECK(parameter_names(decoder).size() == dec_file.tensors().size());
    CHECK(parameter_names(encoder).size() == enc_file.tensors().size());
    const Tensor<float> latent = io.load<float>("latent"), image01 = io.load<float>("image01");
    CHECK(decoder.in_channels() == latent.size(1));
    CHECK(encoder.out_channels() == latent.size(1));
    const double dec_err = max_abs_diff(decoder.forward(latent.view()).view(), io.load<float>("decoded").view());
    const double enc_err = max_abs_diff(encoder.forward(image01.view()).view(), io.load<float>("encoded").view());
    INFO(c.io_file << ": decoder max abs " << dec_err << ", encoder " << enc_err);
    CHECK(dec_err <= 5e-5);
    CHECK(enc_err <= 5e-5);

    std::vector<Tensor<float>> decoded;
    for (int threads : {1, 2, 3}) {
      const ThreadScope scope(threads);
      decoded.push_back(decoder.forward(latent.view()));
    }
    CHECK(bit_identical(decoded[0], decoded[1]));
    CHECK(bit_identical(decoded[0], decoded[2]));
  }
}

TEST_CASE("TAESD: wrong inputs and files that are not TAESD are reported") {
  const auto& c = taesd_cases()[0];
  const TaesdNetwork decoder = load_taesd(SafetensorsFile(latentkit_test::fixture(c.decoder_file)));
  const TaesdNetwork encoder = load_taesd(SafetensorsFile(latentkit_test::fixture(c.encoder_file)));
  REQUIRE_THROWS_WITH(decoder.forward(Tensor<float>({1, decoder.in_channels() + 1, 4, 4}).view()), Catch::Contains("TAESD decoder"));
  REQUIRE_THROWS_WITH(encoder.forward(Tensor<float>({1, 3, 12, 16}).view()), Catch::Contains("multiples of 8"));
  REQUIRE_THROWS_AS(load_taesd(SafetensorsFile(latentkit_test::fixture("models/vae_tiny_io.safetensors"))), FormatError);
}
