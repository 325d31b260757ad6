// Reading every fixture file, writing it back, and the element conversions of load<T>().
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "io_test_support.hpp"
#include "latentkit/io/safetensors.hpp"
#include "latentkit/io/safetensors_writer.hpp"
#include "support/fixtures.hpp"

using namespace latentkit;

namespace {

std::vector<std::filesystem::path> fixture_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(latentkit_test::fixtures_dir()))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

/// Adds the tensor through the typed path: a zero-copy view of its own dtype (or load() when unaligned).
template <class T>
void add_typed(SafetensorsWriter& w, const SafetensorsFile& f, const TensorInfo& t) {
  const auto p = reinterpret_cast<std::uintptr_t>(f.bytes(t.name).data());
  if (p % alignof(T) == 0) w.add(t.name, f.view<T>(t.name));
  else w.add(t.name, f.load<T>(t.name));
}

void add_typed(SafetensorsWriter& w, const SafetensorsFile& f, const TensorInfo& t) {
  switch (t.dtype) {
    case DType::f64: return add_typed<double>(w, f, t);
    case DType::f32: return add_typed<float>(w, f, t);
    case DType::f16: return add_typed<f16>(w, f, t);
    case DType::bf16: return add_typed<bf16>(w, f, t);
    case DType::i64: return add_typed<std::int64_t>(w, f, t);
    case DType::i32: return add_typed<std::int32_t>(w, f, t);
    case DType::i16: return add_typed<std::int16_t>(w, f, t);
    case DType::i8: return add_typed<std::int8_t>(w, f, t);
    case DType::u8: return add_typed<std::uint8_t>(w, f, t);
    case DType::boolean: return add_typed<bool>(w, f, t);
  }
}

template <class T>
void require_same_values_as_double(const SafetensorsFile& f, const TensorInfo& t) {
  const auto as_double = f.load<double>(t.name);
  const auto native = f.load<T>(t.name);
  for (index_t i = 0; i < native.numel(); ++i) {
    const double expected = static_cast<double>(native.data()[i]);
    if (!(as_double.data()[i] == expected || (std::isnan(expected) && std::isnan(as_double.data()[i]))))
      FAIL("tensor " << t.name << " element " << i << ": load<double> gave " << as_double.data()[i] << ", expected "
                     << expected);
  }
}

}  // namespace

TEST_CASE("every fixture file is read, and its tensors and metadata survive a write/read round trip exactly", "[io]") {
  const auto files = fixture_files();
  REQUIRE(files.size() >= 1);
  io_test::ScratchDir dir;
  for (const auto& path : files) {
    INFO("fixture " << path.string());
    const SafetensorsFile f(path);
    REQUIRE(f.path() == path);
    REQUIRE(std::is_sorted(f.tensors().begin(), f.tensors().end(),
                           [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; }));
    std::uint64_t total = 0;
    for (const auto& t : f.tensors()) total += t.nbytes;
    REQUIRE(8 + f.header_size() + total == f.file_size());

    SafetensorsWriter raw, typed;
    for (const auto& [k, v] : f.metadata()) {
      raw.set_metadata(k, v);
      typed.set_metadata(k, v);
    }
    for (const auto& t : f.tensors()) {
      REQUIRE(t.nbytes == static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype));
      raw.add_bytes(t.name, t.dtype, t.shape, f.bytes(t.name));
      add_typed(typed, f, t);
    }
    raw.write(dir / "raw.safetensors");
    const SafetensorsFile back(dir / "raw.safetensors");
    const SafetensorsFile typed_back(typed.to_bytes(), "typed image");
    REQUIRE(back.metadata() == f.metadata());
    REQUIRE(typed_back.metadata() == f.metadata());
    REQUIRE(back.tensors().size() == f.tensors().size());
    REQUIRE(typed_back.tensors().size() == f.tensors().size());
    for (std::size_t i = 0; i < f.tensors().size(); ++i) {
      const auto& t = f.tensors()[i];
      INFO("tensor " << t.name);
      for (const SafetensorsFile* copy : {&back, &typed_back}) {
        const auto& c = copy->tensors()[i];
        REQUIRE(c.name == t.name);
        REQUIRE(c.dtype == t.dtype);
        REQUIRE(c.shape == t.shape);
        REQUIRE(same_bytes(copy->bytes(t.name), f.bytes(t.name)));
      }
    }
    // load<double> agrees with each dtype's native values (exact for every dtype the fixtures use).
    for (const auto& t : f.tensors()) {
      if (t.dtype == DType::f32) require_same_values_as_double<float>(f, t);
      if (t.dtype == DType::f64) require_same_values_as_double<double>(f, t);
      if (t.dtype == DType::u8) require_same_values_as_double<std::uint8_t>(f, t);
    }
  }
}

TEST_CASE("the writer sorts names, pads the header to 8 bytes and packs strided views row-major", "[io]") {
  Tensor<float> m(Dims{3, 4});
  for (index_t i = 0; i < 12; ++i) m.data()[i] = static_cast<float>(i) * 0.5f - 2.0f;
  SafetensorsWriter w;
  w.add("zeta.transposed", m.view().transpose());                 // strided: [4, 3]
  w.add("alpha.every_other_column", m.view().slice(1, 0, 4, 2));  // strided: [3, 2]
  w.add("mid", m);
  w.set_metadata("format", "pt");
  w.set_metadata("note", "ünïcode \"quoted\" \\ text");
  const auto bytes = w.to_bytes();
  std::uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  CHECK(header % 8 == 0);
  CHECK(static_cast<char>(bytes[8 + header - 1]) != '\0');

  const SafetensorsFile f(bytes, "writer.safetensors");
  REQUIRE(f.tensors().size() == 3);
  CHECK(f.tensors()[0].name == "alpha.every_other_column");
  CHECK(f.tensors()[2].name == "zeta.transposed");
  CHECK(f.tensors()[0].offset == 0);  // data laid out in name order
  CHECK(f.metadata().at("note") == "ünïcode \"quoted\" \\ text");
  const auto t = f.view<float>("zeta.transposed");  // header padded, so the data is aligned for a view
  REQUIRE(t.shape() == Dims{4, 3});
  for (index_t r = 0; r < 4; ++r)
    for (index_t c = 0; c < 3; ++c) CHECK(t(r, c) == m(c, r));
  const auto s = f.view<float>("alpha.every_other_column");
  REQUIRE(s.shape() == Dims{3, 2});
  for (index_t r = 0; r < 3; ++r) CHECK(s(r, 1) == m(r, 2));
  // view() is zero-copy: it points into the file image.
  CHECK(static_cast<const void*>(f.view<float>("mid").data()) == static_cast<const void*>(f.bytes("mid").data()));
}

TEST_CASE("the writer rejects bad names, sizes and shapes, and a failed write leaves the target untouched", "[io]") {
  SafetensorsWriter w;
  const float one = 1.0f;
  w.add_bytes("x", DType::f32, Dims{1}, std::as_bytes(std::span(&one, 1)));
  CHECK_THROWS_AS(w.add_bytes("x", DType::f32, Dims{1}, std::as_bytes(std::span(&one, 1))), FormatError);
  CHECK_THROWS_AS(w.add_bytes("__metadata__", DType::f32, Dims{1}, std::as_bytes(std::span(&one, 1))), FormatError);
  CHECK_THROWS_AS(w.add_bytes("y", DType::f64, Dims{1}, std::as_bytes(std::span(&one, 1))), ShapeError);
  CHECK_THROWS_AS(w.add_bytes("y", DType::f32, Dims{-1}, {}), ShapeError);
  CHECK_THROWS_AS(w.add_bytes("bad\xff", DType::f32, Dims{1}, std::as_bytes(std::span(&one, 1))), FormatError);
  const std::uint8_t two = 2;
  CHECK_THROWS_AS(w.add_bytes("flag", DType::boolean, Dims{1}, std::as_bytes(std::span(&two, 1))), FormatError);
  CHECK(w.size() == 1);

  io_test::ScratchDir dir;
  const auto target = dir / "kept.safetensors";
  io_test::write_file(target, io_test::image("{}", 0));
  const auto before = io_test::read_file(target);
  CHECK_THROWS_AS(w.write(dir / "no_such_folder" / "x.safetensors"), IoError);
  // Renaming onto a non-empty folder fails after the data was written: the temporary file must vanish.
  std::filesystem::create_directories(dir / "occupied" / "child");
  CHECK_THROWS_AS(w.write(dir / "occupied"), IoError);
  CHECK(std::filesystem::is_directory(dir / "occupied" / "child"));
  CHECK(io_test::read_file(target) == before);
  w.write(target);
  CHECK(SafetensorsFile(target).load<float>("x").data()[0] == 1.0f);
  std::size_t leftovers = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    leftovers += e.path().filename().string().find(".tmp-") != std::string::npos;
  CHECK(leftovers == 0);
}

TEST_CASE("load<float> converts every stored dtype to known values", "[io][convert]") {
  SafetensorsWriter w;
  const std::vector<double> f64{1.0 / 3.0, -1e300, 0.1, 3.0};
  const std::vector<std::uint16_t> f16_bits{0x3E00, 0xC000, 0x7BFF, 0x0001, 0xFC00};       // 1.5 -2 65504 2^-24 -inf
  const std::vector<std::uint16_t> bf16_bits{0x3FC0, 0xC2F7, 0x7F7F, 0x0001};               // 1.5 -123.5 max tiny
  const std::vector<std::int64_t> i64{-(std::int64_t{1} << 40), 16777217, 7};
  const std::vector<std::int32_t> i32{std::numeric_limits<std::int32_t>::min(), 123456789};
  const std::vector<std::int16_t> i16{-32768, 32767, -5};
  const std::vector<std::int8_t> i8{-128, 127, 0, -1};
  const std::vector<std::uint8_t> u8{0, 200, 255};
  const std::vector<std::uint8_t> flags{1, 0, 1};
  const std::vector<float> f32{2.75f, -2.75f, -128.5f, -0.5f};
  auto add = [&](const char* name, DType t, const auto& v) {
    w.add_bytes(name, t, Dims{static_cast<index_t>(v.size())}, std::as_bytes(std::span(v.data(), v.size())));
  };
  add("f64", DType::f64, f64);
  add("f32", DType::f32, f32);
  add("f16", DType::f16, f16_bits);
  add("bf16", DType::bf16, bf16_bits);
  add("i64", DType::i64, i64);
  add("i32", DType::i32, i32);
  add("i16", DType::i16, i16);
  add("i8", DType::i8, i8);
  add("u8", DType::u8, u8);
  add("bool", DType::boolean, flags);
  const SafetensorsFile f(w.to_bytes(), "conversions.safetensors");

  auto values = [&](const char* name) {
    const auto t = f.to_f32(name);
    return std::vector<float>(t.data(), t.data() + t.numel());
  };
  CHECK(values("f64") == std::vector<float>{1.0f / 3.0f, -std::numeric_limits<float>::infinity(), 0.1f, 3.0f});
  CHECK(values("f16") == std::vector<float>{1.5f, -2.0f, 65504.0f, 0x1p-24f, -std::numeric_limits<float>::infinity()});
  CHECK(values("bf16") == std::vector<float>{1.5f, -123.5f, 0x1.FEp127f, 0x1p-133f});
  CHECK(values("i64") == std::vector<float>{-0x1p40f, 16777216.0f, 7.0f});  // 2^24+1 rounds to even
  CHECK(values("i32") == std::vector<float>{-2147483648.0f, 123456792.0f});
  CHECK(values("i16") == std::vector<float>{-32768.0f, 32767.0f, -5.0f});
  CHECK(values("i8") == std::vector<float>{-128.0f, 127.0f, 0.0f, -1.0f});
  CHECK(values("u8") == std::vector<float>{0.0f, 200.0f, 255.0f});
  CHECK(values("bool") == std::vector<float>{1.0f, 0.0f, 1.0f});

  // Other targets: exact integers, half-precision rounding, booleans.
  const auto i64_exact = f.load<std::int64_t>("i64");
  CHECK(i64_exact.data()[1] == 16777217);
  CHECK(f.load<double>("i64").data()[1] == 16777217.0);
  CHECK(f.load<std::int16_t>("i8").data()[0] == -128);
  CHECK(f.load<f16>("f64").data()[3].bits == 0x4200);  // 3.0
  CHECK(f.load<bf16>("f16").data()[0].bits == 0x3FC0);
  const auto b = f.load<bool>("i8");
  CHECK((b.data()[0] && b.data()[1] && !b.data()[2] && b.data()[3]));
  const auto truncated = f.load<std::int8_t>("f32");  // toward zero, as C++ and NumPy's astype
  CHECK(std::vector<std::int8_t>(truncated.data(), truncated.data() + 4) == std::vector<std::int8_t>{2, -2, -128, 0});

  // Values a narrower integer cannot hold are a DTypeError naming the tensor, never UB.
  CHECK_THROWS_WITH(f.load<std::int8_t>("i16"), Catch::Contains("'i16'") && Catch::Contains("-32768"));
  CHECK_THROWS_AS(f.load<std::uint8_t>("i8"), DTypeError);
  CHECK_THROWS_AS(f.load<std::int32_t>("i64"), DTypeError);
  CHECK_THROWS_AS(f.load<std::int64_t>("f64"), DTypeError);  // -1e300
  CHECK_THROWS_AS(f.load<std::int32_t>("f16"), DTypeError);  // -inf
}

TEST_CASE("aligned (vectorised) and misaligned (scalar) conversions give the same bits", "[io][convert]") {
  // 4099 halves: every tenth one special (inf, NaN, subnormal, -0), so both kernels' tails and NaN handling run.
  std::vector<f16> halves(4099);
  for (std::size_t i = 0; i < halves.size(); ++i) {
    const std::uint16_t specials[] = {0x7C00, 0x7E01, 0x0003, 0x8000, 0xFD55};
    halves[i] = i % 10 == 0 ? f16::from_bits(specials[(i / 10) % 5]) : f16(static_cast<float>(i) * -0.37f + 3.0f);
  }
  const std::vector<std::int8_t> one{5};
  SafetensorsWriter aligned, shifted;
  aligned.add("h", TensorView<const f16>(halves.data(), Dims{static_cast<index_t>(halves.size())}));
  shifted.add("a", TensorView<const std::int8_t>(one.data(), Dims{1}));  // one byte before "h": odd address
  shifted.add("h", TensorView<const f16>(halves.data(), Dims{static_cast<index_t>(halves.size())}));
  const SafetensorsFile fa(aligned.to_bytes(), "aligned"), fs(shifted.to_bytes(), "shifted");
  REQUIRE(reinterpret_cast<std::uintptr_t>(fs.bytes("h").data()) % 2 == 1);
  const auto x = fa.load<float>("h"), y = fs.load<float>("h");
  const auto dx = fa.load<double>("h"), dy = fs.load<double>("h");
  for (std::size_t i = 0; i < halves.size(); ++i) {
    const float expected = halves[i];  // the scalar reference of core/half.hpp
    REQUIRE(std::bit_cast<std::uint32_t>(x.data()[i]) == std::bit_cast<std::uint32_t>(expected));
    REQUIRE(std::bit_cast<std::uint32_t>(y.data()[i]) == std::bit_cast<std::uint32_t>(expected));
    REQUIRE(std::bit_cast<std::uint64_t>(dx.data()[i]) == std::bit_cast<std::uint64_t>(dy.data()[i]));
  }
}

TEST_CASE("F64 loads as F16 / BF16 with one rounding and as bool by testing the double itself", "[io][convert]") {
  // Each value next to its correctly rounded bits; through float the first would round twice to 0x3C00 / 0x3F80.
  struct Case { double value; std::uint16_t half, bfloat; };
  const std::vector<Case> cases{
      {1.0 + 0x1p-11 + 0x1p-40, 0x3C01, 0x3F80},  // just above a binary16 tie: up
      {1.0 + 0x1p-8 + 0x1p-40, 0x3C04, 0x3F81},   // just above a bfloat16 tie: up
      {-(1.0 + 0x1p-11), 0xBC00, 0xBF80},         // an exact tie: to even
      {0x1p-25 + 0x1p-60, 0x0001, 0x3300},        // just above half the smallest binary16 subnormal
      {0x1p-134 + 0x1p-170, 0x0000, 0x0001},      // just above half the smallest bfloat16 subnormal
      {65519.999999, 0x7BFF, 0x4780},             // below binary16's overflow threshold
      {1e-60, 0x0000, 0x0000}};
  std::vector<double> values;
  for (const auto& c : cases) values.push_back(c.value);
  const std::vector<std::int8_t> one{5};
  SafetensorsWriter aligned, shifted;
  aligned.add("d", TensorView<const double>(values.data(), Dims{static_cast<index_t>(values.size())}));
  shifted.add("a", TensorView<const std::int8_t>(one.data(), Dims{1}));  // odd address: the scalar loop runs
  shifted.add("d", TensorView<const double>(values.data(), Dims{static_cast<index_t>(values.size())}));
  const SafetensorsFile fa(aligned.to_bytes(), "aligned"), fs(shifted.to_bytes(), "shifted");
  REQUIRE(reinterpret_cast<std::uintptr_t>(fs.bytes("d").data()) % 8 != 0);
  for (const SafetensorsFile* f : {&fa, &fs}) {
    const auto h = f->load<f16>("d");
    const auto b = f->load<bf16>("d");
    const auto flags = f->load<bool>("d");
    for (std::size_t i = 0; i < cases.size(); ++i) {
      INFO((f == &fa ? "aligned" : "shifted") << " element " << i << " = " << cases[i].value);
      CHECK(h.data()[i].bits == cases[i].half);
      CHECK(b.data()[i].bits == cases[i].bfloat);
      CHECK(flags.data()[i]);  // all non-zero, 1e-60 included (NumPy: True)
    }
  }
}
