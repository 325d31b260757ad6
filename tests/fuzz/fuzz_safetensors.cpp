// libFuzzer target for the safetensors reader (run with scripts/fuzz safetensors [SECONDS]).
// Any input must either parse, or be refused with a latentkit::Error; never crash, leak or read out of bounds.
// Inputs that parse are read every way the API allows and written back: the copy must parse to the same table.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>

#include "latentkit/io/safetensors.hpp"
#include "latentkit/io/safetensors_writer.hpp"

namespace {

using namespace latentkit;

template <class T>
void read_every_way(const SafetensorsFile& f, const TensorInfo& t) {
  try {
    const auto v = f.view<T>(t.name);  // throws FormatError when misaligned, or BOOL bytes are not 0/1
    if (v.numel() != t.numel()) std::abort();
    volatile bool sink = false;
    v.for_each([&](const T& x) { sink = sink ^ (static_cast<double>(x) > 0.0); });
  } catch (const FormatError&) {
  }
  try {
    (void)f.load<std::int32_t>(t.name);  // range-checked narrowing: DTypeError, never UB
  } catch (const Error&) {
  }
  try {
    (void)f.load<bool>(t.name);
    (void)f.load<f16>(t.name);
    const auto d = f.load<double>(t.name);
    if (d.numel() != t.numel()) std::abort();
  } catch (const FormatError&) {  // only BOOL data other than 0/1 may refuse these
    if (t.dtype != DType::boolean) std::abort();
  }
}

void read_every_way(const SafetensorsFile& f, const TensorInfo& t) {
  switch (t.dtype) {
    case DType::f64: return read_every_way<double>(f, t);
    case DType::f32: return read_every_way<float>(f, t);
    case DType::f16: return read_every_way<f16>(f, t);
    case DType::bf16: return read_every_way<bf16>(f, t);
    case DType::i64: return read_every_way<std::int64_t>(f, t);
    case DType::i32: return read_every_way<std::int32_t>(f, t);
    case DType::i16: return read_every_way<std::int16_t>(f, t);
    case DType::i8: return read_every_way<std::int8_t>(f, t);
    case DType::u8: return read_every_way<std::uint8_t>(f, t);
    case DType::boolean: return read_every_way<bool>(f, t);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::optional<SafetensorsFile> file;
  try {
    file.emplace(std::as_bytes(std::span(data, size)), "fuzz-input.safetensors");
  } catch (const Error&) {
    return 0;  // refused cleanly
  }
  const SafetensorsFile& f = *file;
  SafetensorsWriter copy;
  bool bool_ok = true;
  for (const auto& t : f.tensors()) {
    if (!f.contains(t.name) || &f.info(t.name) != &t) std::abort();
    const auto bytes = f.bytes(t.name);
    if (bytes.size() != t.nbytes) std::abort();
    read_every_way(f, t);
    try {
      copy.add_bytes(t.name, t.dtype, t.shape, bytes);
    } catch (const FormatError&) {  // the writer refuses BOOL bytes other than 0/1
      if (t.dtype != DType::boolean) std::abort();
      bool_ok = false;
    }
  }
  for (const auto& [k, v] : f.metadata()) copy.set_metadata(k, v);
  if (!bool_ok) return 0;

  const auto image = copy.to_bytes();
  const SafetensorsFile back(image, "round-trip");  // must not throw: the writer only writes valid files
  if (back.tensors().size() != f.tensors().size() || back.metadata() != f.metadata()) std::abort();
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& a = f.tensors()[i];
    const auto& b = back.tensors()[i];
    if (a.name != b.name || a.dtype != b.dtype || !(a.shape == b.shape) || a.nbytes != b.nbytes) std::abort();
    if (a.nbytes && std::memcmp(f.bytes(a.name).data(), back.bytes(b.name).data(), a.nbytes) != 0) std::abort();
  }
  return 0;
}
