// Every way a safetensors file can be malformed is rejected with a typed exception naming the file, the key
// and the problem, whether the file is memory-mapped or parsed from memory.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "io_test_support.hpp"
#include "latentkit/io/safetensors.hpp"

using namespace latentkit;
using io_test::image;
using io_test::raw_image;

namespace {

/// Opens `bytes` both from a file and from memory; each must throw E whose message names the file and
/// contains every word of `words`.
template <class E>
void require_rejected(const std::vector<std::byte>& bytes, const std::vector<std::string>& words) {
  io_test::ScratchDir dir;
  const auto path = dir / "bad.safetensors";
  io_test::write_file(path, bytes);
  for (const bool from_memory : {false, true}) {
    INFO((from_memory ? "parsed from memory" : "memory-mapped"));
    std::string message;
    try {
      if (from_memory) SafetensorsFile(bytes, path.string());
      else SafetensorsFile{path};
    } catch (const E& e) {
      message = e.what();
    }
    INFO("message: " << message);
    REQUIRE_FALSE(message.empty());
    CHECK_THAT(message, Catch::Contains("bad.safetensors"));
    for (const auto& word : words) CHECK_THAT(message, Catch::Contains(word));
  }
}

const std::string f32x2 = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace

TEST_CASE("a well-formed hand-built file is accepted, so the rejections below are about their one defect", "[io]") {
  const auto bytes = image(R"({"__metadata__":{"k":"v"},"a":)" + f32x2 + "}", 8);
  SafetensorsFile f(bytes, "good.safetensors");
  REQUIRE(f.tensors().size() == 1);
  CHECK(f.metadata().at("k") == "v");
  CHECK(f.info("a").nbytes == 8);
}

TEST_CASE("a file shorter than the 8-byte length prefix is rejected", "[io][malformed]") {
  require_rejected<FormatError>(std::vector<std::byte>(5, std::byte{1}), {"5 bytes", "shorter than the 8-byte"});
  require_rejected<FormatError>({}, {"0 bytes"});
}

TEST_CASE("a header length beyond the file or over 100 MB is rejected", "[io][malformed]") {
  const std::string header = "{\"a\":" + f32x2 + "}";
  require_rejected<FormatError>(raw_image(header.size() + 100, header, 8), {"header length", "past the end"});
  require_rejected<FormatError>(raw_image(200'000'000, header, 8), {"200000000", "exceeds the limit"});
  require_rejected<FormatError>(raw_image(~std::uint64_t{0}, header, 8), {"exceeds the limit"});
}

TEST_CASE("a header that is not a JSON object, or not JSON at all, is rejected", "[io][malformed]") {
  require_rejected<FormatError>(image("[1, 2, 3]", 0), {"expected a JSON object"});
  require_rejected<FormatError>(image("\"text\"", 0), {"expected a JSON object"});
  require_rejected<FormatError>(image(R"({"a": {"dtype": "F32",)", 0), {"not valid JSON"});
  require_rejected<FormatError>(image("{\"a\":" + f32x2 + "} trailing", 8), {"not valid JSON"});
  require_rejected<FormatError>(image("{\"\xff\xfe\":" + f32x2 + "}", 8), {"not valid JSON"});  // bad UTF-8
  require_rejected<FormatError>(image(std::string("{\"a\":") + '\0' + "}", 0), {"not valid JSON"});
}

TEST_CASE("JSON nested deeper than the format allows is rejected", "[io][malformed]") {
  require_rejected<FormatError>(image(R"({"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", 8), {"nests"});
  require_rejected<FormatError>(image(std::string(5000, '[') + std::string(5000, ']'), 0), {"nests"});
}

TEST_CASE("an entry that is not an object or lacks or mistypes dtype, shape or data_offsets is rejected",
          "[io][malformed]") {
  require_rejected<FormatError>(image(R"({"w": 5})", 0), {"tensor 'w'", "entry is", "expected an object"});
  require_rejected<FormatError>(image(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8), {"'w'", "missing \"dtype\""});
  require_rejected<FormatError>(image(R"({"w":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8),
                                {"'w'", "\"dtype\" is", "expected a string"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8), {"'w'", "missing \"shape\""});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8),
                                {"'w'", "\"shape\" is", "expected an array"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8),
                                {"'w'", "non-integer", "shape extent"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", 8),
                                {"'w'", "shape extent"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2]}})", 8), {"'w'", "missing \"data_offsets\""});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", 8),
                                {"'w'", "3 elements", "[begin, end]"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":{"a":1}}})", 8),
                                {"'w'", "data_offsets"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", 8),
                                {"'w'", "data_offsets[1]", "non-integer"});
}

TEST_CASE("an unknown dtype is rejected with the list of valid ones", "[io][malformed]") {
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2),
                                {"'w'", "unknown dtype \"F8_E4M3\"", "BF16"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", 8),
                                {"unknown dtype \"f32\""});
}

TEST_CASE("negative, huge or overflowing shapes and too high ranks are rejected", "[io][malformed]") {
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                                {"'w'", "negative (-2)"});
  require_rejected<FormatError>(
      image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8), {"'w'", "overflows"});
  // The element count fits, the byte count does not.
  require_rejected<FormatError>(
      image(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8), {"'w'", "overflows"});
  // A zero extent does not excuse an overflowing product of the others (Dims::numel would overflow first).
  require_rejected<FormatError>(
      image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", 0), {"overflows"});
  require_rejected<FormatError>(
      image(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", 8), {"too large"});
  require_rejected<FormatError>(
      image(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,2],"data_offsets":[0,8]}})", 8), {"'w'", "rank 7"});
}

TEST_CASE("data_offsets out of range, reversed, or of the wrong length are rejected", "[io][malformed]") {
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8),
                                {"'w'", "[8, 16]", "out of range", "only 8 bytes"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8),
                                {"'w'", "begin > end"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})", 12),
                                {"'w'", "span 12 bytes", "needs 8 bytes"});
  require_rejected<FormatError>(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", 8),
                                {"'w'", "negative"});
}

TEST_CASE("overlapping tensors, holes between them and uncovered trailing bytes are rejected", "[io][malformed]") {
  require_rejected<FormatError>(
      image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
      {"tensor 'b'", "overlap tensor 'a'"});
  require_rejected<FormatError>(
      image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
      {"overlap"});
  require_rejected<FormatError>(
      image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12),
      {"tensor 'b'", "hole of 4 bytes", "after tensor 'a'"});
  require_rejected<FormatError>(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                                {"tensor 'a'", "hole of 4 bytes", "at the start"});
  require_rejected<FormatError>(image("{\"a\":" + f32x2 + "}", 12), {"4 bytes at the end", "belong to no tensor"});
}

TEST_CASE("duplicate keys are rejected, where nlohmann alone would keep the last silently", "[io][malformed]") {
  require_rejected<FormatError>(image("{\"a\":" + f32x2 + ",\"a\":" + f32x2 + "}", 8), {"duplicate key 'a'"});
  require_rejected<FormatError>(image(R"({"a":{"dtype":"F64","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
                                {"duplicate key 'dtype'"});
  require_rejected<FormatError>(image(R"({"__metadata__":{"k":"1","k":"2"}})", 0), {"duplicate key 'k'"});
}

TEST_CASE("__metadata__ that is not an object of strings is rejected", "[io][malformed]") {
  require_rejected<FormatError>(image(R"({"__metadata__":"v"})", 0), {"__metadata__", "expected an object"});
  require_rejected<FormatError>(image(R"({"__metadata__":{"epoch":3}})", 0), {"__metadata__", "'epoch'", "expected a string"});
}

TEST_CASE("a truncated data section is rejected, naming the tensor that runs past the end", "[io][malformed]") {
  const std::string header =
      R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"b":{"dtype":"I16","shape":[3],"data_offsets":[16,22]}})";
  auto bytes = image(header, 22);
  SafetensorsFile whole(bytes, "whole.safetensors");  // the untruncated file is fine
  CHECK(whole.load<double>("a").numel() == 2);
  bytes.resize(bytes.size() - 3);
  require_rejected<FormatError>(bytes, {"tensor 'b'", "out of range", "truncated"});
}

TEST_CASE("a missing file is an IoError naming it", "[io]") {
  io_test::ScratchDir dir;
  std::string message;
  try {
    SafetensorsFile f(dir / "absent.safetensors");
  } catch (const IoError& e) {
    message = e.what();
  }
  CHECK_THAT(message, Catch::Contains("absent.safetensors") && Catch::Contains("cannot open"));
  CHECK_THROWS_AS(SafetensorsFile(dir.path), IoError);  // a folder is not a file
}

TEST_CASE("asking for a missing key, the wrong dtype or a misaligned view is a FormatError", "[io]") {
  // Header of 5 bytes is legal JSON padding-wise, so the data starts at offset 13: misaligned for F32.
  const auto bytes = image("{\"a\":" + f32x2 + "}", 8);
  SafetensorsFile f(bytes, "mem.safetensors");
  CHECK_THROWS_MATCHES(f.info("nope"), FormatError, Catch::Matchers::Predicate<FormatError>([](const FormatError& e) {
                         return std::string(e.what()).find("'nope'") != std::string::npos;
                       }));
  CHECK_THROWS_WITH(f.view<double>("a"), Catch::Contains("stored as F32") && Catch::Contains("load<T>"));
  const bool aligned = reinterpret_cast<std::uintptr_t>(f.bytes("a").data()) % alignof(float) == 0;
  if (aligned) {
    CHECK(f.view<float>("a").numel() == 2);
  } else {
    CHECK_THROWS_AS(f.view<float>("a"), FormatError);
  }
  // Force misalignment: a header of length 8k+1 puts the data at an odd offset.
  std::string odd = "{\"a\":" + f32x2 + "}";
  while ((8 + odd.size()) % 4 != 1) odd += ' ';
  SafetensorsFile g(image(odd, 8), "odd.safetensors");
  CHECK_THROWS_WITH(g.view<float>("a"), Catch::Contains("not aligned"));
  const auto values = g.load<float>("a");  // load works whatever the alignment
  CHECK(values.numel() == 2);
}

TEST_CASE("BOOL data other than 0 and 1 is rejected when it is read", "[io][malformed]") {
  auto bytes = image(R"({"flags":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", 3);
  bytes[bytes.size() - 3] = std::byte{1};
  bytes[bytes.size() - 2] = std::byte{0};
  bytes[bytes.size() - 1] = std::byte{2};
  SafetensorsFile f(bytes, "flags.safetensors");
  CHECK_THROWS_WITH(f.view<bool>("flags"), Catch::Contains("'flags'") && Catch::Contains("byte 2"));
  CHECK_THROWS_AS(f.load<bool>("flags"), FormatError);
  CHECK_THROWS_AS(f.load<float>("flags"), FormatError);
}
