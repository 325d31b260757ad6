// SHA-256 against the FIPS 180-4 example vectors (one-shot, in pieces of every size, from a file), against the
// sha256 sums recorded in the fixture index, and A1111's 10-digit model hash.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/io/sha256.hpp"
#include "support/fixtures.hpp"

using namespace latentkit;

namespace {

const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string two_blocks_text = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";  // 448 bits
const std::string two_blocks = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
const std::string million_a = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

}  // namespace

TEST_CASE("SHA-256 gives the FIPS 180-4 digests of \"abc\", the empty message, 448 bits and a million 'a'", "[sha256]") {
  CHECK(sha256_hex(std::string_view("abc")) == abc);
  CHECK(sha256_hex(std::string_view("")) == empty);
  CHECK(sha256_hex(two_blocks_text) == two_blocks);
  CHECK(sha256_hex(std::string(1000000, 'a')) == million_a);
  // The 896-bit message of the SHA-384/512 examples, through SHA-256.
  CHECK(sha256_hex(std::string_view("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")) ==
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST_CASE("SHA-256 fed in pieces of any size equals the one-shot digest, across every padding boundary", "[sha256]") {
  std::string message;
  for (int i = 0; i < 300; ++i) message += static_cast<char>(i * 7 + 3);
  for (std::size_t length : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 300}) {
    const std::string_view m(message.data(), length);
    const std::string expected = sha256_hex(m);
    for (std::size_t piece : {1, 3, 63, 64, 65, 200}) {
      INFO("length " << length << ", pieces of " << piece);
      Sha256 h;
      for (std::size_t at = 0; at < length; at += piece) h.update(m.substr(at, piece));
      CHECK(to_hex(h.digest()) == expected);
    }
  }
  // Known digests at the padding edges: 55 and 56 bytes of 'a'.
  CHECK(sha256_hex(std::string(55, 'a')) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(sha256_hex(std::string(56, 'a')) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
}

TEST_CASE("sha256_file streams a file and a1111_model_hash is its first 10 hex digits", "[sha256]") {
  latentkit_test::TempDir dir("sha256");
  write_text(dir.path / "million.txt", std::string(1000000, 'a'));
  write_text(dir.path / "three_mib.bin", std::string(3 * 1024 * 1024 + 17, 'a') + "abc");
  write_text(dir.path / "empty.bin", "");
  CHECK(sha256_file(dir.path / "million.txt") == million_a);
  CHECK(sha256_file(dir.path / "three_mib.bin") == sha256_hex(std::string(3 * 1024 * 1024 + 17, 'a') + "abc"));
  CHECK(sha256_file(dir.path / "empty.bin") == empty);
  CHECK(a1111_model_hash(dir.path / "million.txt") == million_a.substr(0, 10));
  CHECK_THROWS_AS(sha256_file(dir.path / "missing.bin"), IoError);
  CHECK_THROWS_WITH(a1111_model_hash(dir.path / "missing.bin"), Catch::Contains("missing.bin"));
  CHECK_THROWS_WITH(sha256_file(dir.path), Catch::Contains("cannot read"));
}

TEST_CASE("sha256_file agrees with the sha256 sums of the fixture index", "[sha256][fixtures]") {
  const auto index = nlohmann::json::parse(latentkit_test::read_text(latentkit_test::fixture("models/index.json")));
  int checked = 0;
  for (const char* name : {"txt2img_sd1_tiny.png", "img2img_sd1_tiny_init.png", "sd1_tiny_pipeline.safetensors"}) {
    INFO(name);
    const std::string expected = index.at(name).at("sha256").get<std::string>();
    CHECK(sha256_file(latentkit_test::fixture(std::string("models/") + name)) == expected);
    CHECK(a1111_model_hash(latentkit_test::fixture(std::string("models/") + name)) == expected.substr(0, 10));
    ++checked;
  }
  CHECK(checked == 3);
}

TEST_CASE("the SHA extension path, when compiled in, computes the scalar compression function bit for bit", "[sha256]") {
#if defined(LATENTKIT_SHA256_SHANI)
  std::mt19937 rng(11);
  std::vector<std::uint8_t> data(64 * 1000);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (std::size_t blocks : {1, 2, 7, 1000}) {
    std::uint32_t a[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::uint32_t b[8];
    std::copy(std::begin(a), std::end(a), std::begin(b));
    detail::sha256_blocks_scalar(a, data.data(), blocks);
    detail::sha256_blocks_shani(b, data.data(), blocks);
    INFO(blocks << " blocks");
    CHECK(std::equal(std::begin(a), std::end(a), std::begin(b)));
  }
#else
  SUCCEED("this build has no SHA extensions: only the scalar path exists");
#endif
}
