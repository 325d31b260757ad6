// SafetensorsFile: reads the safetensors format (an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then raw little-endian tensor bytes).
// The file is memory-mapped and validated completely when opened, because checkpoints come from strangers:
// after the constructor returns, every tensor's bytes are known to lie inside the file, so views and loads
// can never read out of bounds. Typed views are zero-copy; load<T>() converts between element types.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/convert.hpp"
#include "latentkit/core/dtype.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/core/tensor_view.hpp"
#include "latentkit/io/mapped_file.hpp"

LATENTKIT_NAMESPACE_BEGIN

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so must the host be");

/// One tensor of a safetensors file. `offset` is relative to the start of the data section (the file's
/// `data_offsets[0]`), `nbytes` = numel x dtype_size.
struct TensorInfo {
  std::string name;
  DType dtype = DType::f32;
  Dims shape;
  std::uint64_t offset = 0;
  std::uint64_t nbytes = 0;

  index_t numel() const noexcept { return shape.numel(); }
};

/// The upstream safetensors implementation refuses headers above 100 MB; so do we (it bounds parse memory).
inline constexpr std::uint64_t safetensors_max_header_bytes = 100'000'000;

namespace detail {

/// Parses and validates a whole safetensors image. `label` names the file in messages.
struct SafetensorsLayout {
  std::vector<TensorInfo> tensors;  // sorted by name
  std::map<std::string, std::string> metadata;
  std::uint64_t header_bytes = 0;   // the JSON header's length (without the 8-byte prefix)
  std::uint64_t data_start = 0;     // 8 + header_bytes
};

inline std::string st_where(const std::string& label) { return "safetensors file '" + label + "'"; }
inline std::string st_where(const std::string& label, const std::string& key) {
  return st_where(label) + ", tensor '" + key + "'";
}

inline std::string json_kind(const nlohmann::json& j) {
  if (j.is_number_unsigned()) return "an unsigned integer";
  if (j.is_number_integer()) return "a negative integer";
  if (j.is_number_float()) return "a non-integer number";
  return std::string("a JSON ") + j.type_name();
}

/// A JSON value that must be a non-negative integer representable in uint64.
inline std::uint64_t st_unsigned(const nlohmann::json& j, const std::string& label, const std::string& key,
                                 const char* what) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer())
    throw FormatError(st_where(label, key) + ": " + what + " is negative (" + std::to_string(j.get<std::int64_t>()) +
                      "); expected a non-negative integer");
  throw FormatError(st_where(label, key) + ": " + what + " is " + json_kind(j) + "; expected a non-negative integer");
}

/// Parses the JSON header, rejecting duplicate keys (nlohmann would silently keep the last one) and nesting
/// deeper than the format ever needs (top object > entry object > shape array).
inline nlohmann::json parse_header_json(std::string_view text, const std::string& label) {
  std::vector<std::set<std::string>> open_objects;  // keys seen so far in each open object
  int open_containers = 0;
  auto guard = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) -> bool {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (++open_containers > 3)
          throw FormatError(st_where(label) + ": header nests JSON objects/arrays more than 3 levels deep; expected "
                            "{name: {dtype, shape: [...], data_offsets: [...]}}");
        if (event == E::object_start) open_objects.emplace_back();
        break;
      case E::object_end:
        --open_containers;
        open_objects.pop_back();
        break;
      case E::array_end:
        --open_containers;
        break;
      case E::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second)
          throw FormatError(st_where(label) + ": duplicate key '" + key + "' in the header" +
                            (open_objects.size() == 1 ? "" : " (inside an entry)") + "; every key must be unique");
        break;
      }
      case E::value:
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.data(), text.data() + text.size(), guard);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(st_where(label) + ": header is not valid JSON (" + e.what() + ")");
  }
}

inline TensorInfo parse_entry(const std::string& key, const nlohmann::json& entry, const std::string& label) {
  if (!entry.is_object())
    throw FormatError(st_where(label, key) + ": entry is " + json_kind(entry) +
                      "; expected an object {dtype, shape, data_offsets}");
  TensorInfo info;
  info.name = key;

  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end()) throw FormatError(st_where(label, key) + ": missing \"dtype\"");
  if (!dtype_it->is_string())
    throw FormatError(st_where(label, key) + ": \"dtype\" is " + json_kind(*dtype_it) + "; expected a string such as \"F32\"");
  const auto& dtype_text = dtype_it->get_ref<const std::string&>();
  const auto dtype = parse_dtype(dtype_text);
  if (!dtype)
    throw FormatError(st_where(label, key) + ": unknown dtype \"" + dtype_text +
                      "\"; expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL");
  info.dtype = *dtype;

  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end()) throw FormatError(st_where(label, key) + ": missing \"shape\"");
  if (!shape_it->is_array())
    throw FormatError(st_where(label, key) + ": \"shape\" is " + json_kind(*shape_it) + "; expected an array of extents");
  if (shape_it->size() > static_cast<std::size_t>(max_rank))
    throw FormatError(st_where(label, key) + ": shape has rank " + std::to_string(shape_it->size()) +
                      "; latentkit supports rank at most " + std::to_string(max_rank));
  // The product of the non-zero extents must fit in index_t: Dims::numel() multiplies in that order, so no
  // partial product can then overflow, even when a later extent is 0.
  std::uint64_t nonzero_product = 1;
  bool overflow = false, has_zero = false;
  for (const auto& extent_json : *shape_it) {
    const std::uint64_t extent = st_unsigned(extent_json, label, key, "a shape extent");
    if (extent > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
      throw FormatError(st_where(label, key) + ": shape extent " + std::to_string(extent) + " is too large");
    info.shape.push_back(static_cast<index_t>(extent));
    if (extent == 0) has_zero = true;
    else if (__builtin_mul_overflow(nonzero_product, extent, &nonzero_product)) overflow = true;
  }
  std::uint64_t nbytes = 0;
  if (overflow || nonzero_product > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()) ||
      __builtin_mul_overflow(nonzero_product, dtype_size(info.dtype), &nbytes))
    throw FormatError(st_where(label, key) + ": shape " + info.shape.str() +
                      " has an element count that overflows 64-bit integers");
  if (has_zero) nbytes = 0;

  const auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end()) throw FormatError(st_where(label, key) + ": missing \"data_offsets\"");
  if (!offsets_it->is_array() || offsets_it->size() != 2)
    throw FormatError(st_where(label, key) + ": \"data_offsets\" is " + json_kind(*offsets_it) +
                      (offsets_it->is_array() ? " of " + std::to_string(offsets_it->size()) + " elements" : "") +
                      "; expected an array [begin, end]");
  const std::uint64_t begin = st_unsigned((*offsets_it)[0], label, key, "data_offsets[0]");
  const std::uint64_t end = st_unsigned((*offsets_it)[1], label, key, "data_offsets[1]");
  if (begin > end)
    throw FormatError(st_where(label, key) + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                      "] has begin > end");
  if (end - begin != nbytes)
    throw FormatError(st_where(label, key) + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                      "] span " + std::to_string(end - begin) + " bytes, but shape " + info.shape.str() + " of " +
                      std::string(dtype_name(info.dtype)) + " needs " + std::to_string(nbytes) + " bytes");
  info.offset = begin;
  info.nbytes = nbytes;
  return info;
}

/// Validates a whole file image (header + data) and returns its tensor table.
inline SafetensorsLayout parse_safetensors(std::span<const std::byte> file, const std::string& label) {
  if (file.size() < 8)
    throw FormatError(st_where(label) + ": file is " + std::to_string(file.size()) +
                      " bytes, shorter than the 8-byte header length that starts every safetensors file");
  std::uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file.data(), 8);
  if (header_bytes > safetensors_max_header_bytes)
    throw FormatError(st_where(label) + ": header length " + std::to_string(header_bytes) + " exceeds the limit of " +
                      std::to_string(safetensors_max_header_bytes) + " bytes (not a safetensors file?)");
  if (header_bytes > file.size() - 8)
    throw FormatError(st_where(label) + ": header length " + std::to_string(header_bytes) +
                      " runs past the end of the file (" + std::to_string(file.size()) + " bytes)");

  SafetensorsLayout layout;
  layout.header_bytes = header_bytes;
  layout.data_start = 8 + header_bytes;
  const std::uint64_t data_bytes = file.size() - layout.data_start;

  const std::string_view text(reinterpret_cast<const char*>(file.data()) + 8, static_cast<std::size_t>(header_bytes));
  const nlohmann::json header = parse_header_json(text, label);
  if (!header.is_object())
    throw FormatError(st_where(label) + ": header is " + json_kind(header) + "; expected a JSON object");

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object())
        throw FormatError(st_where(label) + ": \"__metadata__\" is " + json_kind(value) +
                          "; expected an object of string values");
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string())
          throw FormatError(st_where(label) + ": \"__metadata__\" value '" + mkey + "' is " + json_kind(mvalue) +
                            "; expected a string");
        layout.metadata.emplace(mkey, mvalue.get<std::string>());
      }
      continue;
    }
    TensorInfo info = parse_entry(key, value, label);
    if (info.offset + info.nbytes > data_bytes)
      throw FormatError(st_where(label, key) + ": data_offsets [" + std::to_string(info.offset) + ", " +
                        std::to_string(info.offset + info.nbytes) + "] are out of range: only " +
                        std::to_string(data_bytes) + " bytes follow the header (is the file truncated?)");
    layout.tensors.push_back(std::move(info));
  }

  // The entries must tile the data section exactly: no overlaps (aliasing), no holes (hidden bytes).
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(layout.tensors.size());
  for (const auto& t : layout.tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->nbytes < b->nbytes;
  });
  std::uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* t : by_offset) {
    const std::string range = "[" + std::to_string(t->offset) + ", " + std::to_string(t->offset + t->nbytes) + "]";
    if (t->offset < covered)
      throw FormatError(st_where(label, t->name) + ": data_offsets " + range + " overlap tensor '" + previous->name +
                        "' which ends at " + std::to_string(covered) + "; tensors must not share bytes");
    if (t->offset > covered)
      throw FormatError(st_where(label, t->name) + ": data_offsets " + range + " leave a hole of " +
                        std::to_string(t->offset - covered) + " bytes at " + std::to_string(covered) +
                        (previous ? " after tensor '" + previous->name + "'" : std::string(" at the start")) +
                        "; tensors must tile the data section exactly");
    covered = t->offset + t->nbytes;
    previous = t;
  }
  if (covered != data_bytes)
    throw FormatError(st_where(label) + ": " + std::to_string(data_bytes - covered) +
                      " bytes at the end of the data section belong to no tensor; tensors must tile the data section "
                      "exactly (file size " + std::to_string(file.size()) + ", expected " +
                      std::to_string(layout.data_start + covered) + ")");

  std::sort(layout.tensors.begin(), layout.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return layout;
}

/// One element of `dtype` at `p`, as the C++ type S that stores it (read byte-wise: no alignment needed).
template <class S>
S read_element(const std::byte* p) noexcept {
  S s;
  std::memcpy(&s, p, sizeof(S));
  return s;
}

/// Converts n elements of the file's `Src` type to T. Integer targets reject values they cannot hold.
template <class Src, class T>
void convert_elements(const std::byte* in, T* out, std::size_t n, const std::string& where) {
  // Aligned data takes core/convert.hpp's vectorised kernels, which give the same bits as the loop below.
  if constexpr (!std::is_same_v<Src, bool> && is_convertible_dtype_v<Src, T>) {
    if (reinterpret_cast<std::uintptr_t>(in) % alignof(Src) == 0) {
      latentkit::convert(reinterpret_cast<const Src*>(in), out, n);
      return;
    }
  }
  auto out_of_range = [&](std::size_t i, const std::string& value) {
    return DTypeError(where + ": element " + std::to_string(i) + " = " + value + " does not fit in " +
                      std::string(dtype_name(dtype_of_v<T>)) + "; load it as a wider type");
  };
  for (std::size_t i = 0; i < n; ++i) {
    const std::byte* p = in + i * sizeof(Src);
    if constexpr (std::is_same_v<Src, bool>) {
      // A bool object holding anything but 0 or 1 is undefined behaviour, so BOOL bytes are checked.
      const auto byte = read_element<std::uint8_t>(p);
      if (byte > 1)
        throw FormatError(where + ": BOOL element " + std::to_string(i) + " holds byte " + std::to_string(byte) +
                          "; expected 0 or 1");
      if constexpr (std::is_same_v<T, f16> || std::is_same_v<T, bf16>) out[i] = T(static_cast<float>(byte));
      else out[i] = static_cast<T>(byte);
    } else {
      const Src s = read_element<Src>(p);
      if constexpr (std::is_same_v<T, bool>) {
        // Tested in the source type: 1e-60 is true although it rounds to 0 in float. NaN counts as true (NumPy).
        if constexpr (std::is_integral_v<Src> || std::is_same_v<Src, double>) out[i] = s != 0;
        else out[i] = static_cast<float>(s) != 0.0f;  // f16 / bf16 / float: exact in float
      } else if constexpr (std::is_same_v<Src, double> && std::is_same_v<T, f16>) {
        out[i] = f16::from_bits(detail::double_to_half_bits(s));  // one rounding, not two through float
      } else if constexpr (std::is_same_v<Src, double> && std::is_same_v<T, bf16>) {
        out[i] = bf16::from_bits(detail::double_to_bf16_bits(s));
      } else if constexpr (std::is_same_v<T, f16> || std::is_same_v<T, bf16>) {
        out[i] = T(static_cast<float>(s));
      } else if constexpr (std::is_floating_point_v<T>) {
        out[i] = static_cast<T>(s);
      } else if constexpr (std::is_integral_v<Src>) {  // integer -> integer
        if (!std::in_range<T>(s)) throw out_of_range(i, std::to_string(s));
        out[i] = static_cast<T>(s);
      } else {  // floating -> integer: truncation toward zero (as C++ and NumPy's astype), range-checked first
        const double v = static_cast<double>(s);
        constexpr double lo = static_cast<double>(std::numeric_limits<T>::min());
        constexpr double hi_exclusive = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
        // lo - 1 is exact in double except for int64, whose minimum must then be admitted by >=.
        const bool in_range = (sizeof(T) < 8 ? v > lo - 1.0 : v >= lo) && v < hi_exclusive;
        if (!in_range) throw out_of_range(i, std::to_string(v));
        out[i] = static_cast<T>(v);
      }
    }
  }
}

template <class T>
void convert_from(DType src, const std::byte* in, T* out, std::size_t n, const std::string& where) {
  switch (src) {
    case DType::f64: return convert_elements<double>(in, out, n, where);
    case DType::f32: return convert_elements<float>(in, out, n, where);
    case DType::f16: return convert_elements<f16>(in, out, n, where);
    case DType::bf16: return convert_elements<bf16>(in, out, n, where);
    case DType::i64: return convert_elements<std::int64_t>(in, out, n, where);
    case DType::i32: return convert_elements<std::int32_t>(in, out, n, where);
    case DType::i16: return convert_elements<std::int16_t>(in, out, n, where);
    case DType::i8: return convert_elements<std::int8_t>(in, out, n, where);
    case DType::u8: return convert_elements<std::uint8_t>(in, out, n, where);
    case DType::boolean: return convert_elements<bool>(in, out, n, where);
  }
}

}  // namespace detail

/// A validated, memory-mapped safetensors file. Movable, not copyable; views stay valid while it lives.
class SafetensorsFile {
 public:
  /// Maps and validates `path`. IoError if it cannot be read, FormatError if it is malformed.
  explicit SafetensorsFile(std::filesystem::path path)
      : storage_(MappedFile(std::move(path))),
        label_(std::get<MappedFile>(storage_).path().string()),
        layout_(detail::parse_safetensors(std::get<MappedFile>(storage_).bytes(), label_)) {}

  /// Parses a file image already in memory (a download, a fuzzer input). The bytes are copied into an aligned
  /// buffer, so `image` need not outlive this object. `display_name` stands for the file in messages and path().
  SafetensorsFile(std::span<const std::byte> image, std::string display_name)
      : storage_(copy_image(image)), label_(std::move(display_name)), layout_(detail::parse_safetensors(file_bytes(), label_)) {}

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  /// The file's path (or the display name of an in-memory image).
  std::filesystem::path path() const { return label_; }
  /// Every tensor, sorted by name.
  const std::vector<TensorInfo>& tensors() const noexcept { return layout_.tensors; }
  const std::map<std::string, std::string>& metadata() const noexcept { return layout_.metadata; }
  /// Size of the JSON header in bytes, and of the whole file.
  std::uint64_t header_size() const noexcept { return layout_.header_bytes; }
  std::uint64_t file_size() const noexcept { return file_bytes().size(); }

  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }
  /// The entry for `name`; FormatError naming the file and the key if there is none.
  const TensorInfo& info(std::string_view name) const {
    if (const TensorInfo* t = find(name)) return *t;
    throw FormatError(detail::st_where(label_, std::string(name)) + ": no such tensor in the file (it has " +
                      std::to_string(layout_.tensors.size()) + " tensors)");
  }

  /// The raw little-endian bytes of a tensor (zero-copy).
  std::span<const std::byte> bytes(std::string_view name) const {
    const TensorInfo& t = info(name);
    return file_bytes().subspan(static_cast<std::size_t>(layout_.data_start + t.offset), static_cast<std::size_t>(t.nbytes));
  }

  /// A zero-copy typed view. The stored dtype must be exactly T's and the data suitably aligned in memory;
  /// otherwise FormatError (load<T>() always works).
  template <Element T>
  TensorView<const T> view(std::string_view name) const {
    using V = std::remove_cv_t<T>;
    const TensorInfo& t = info(name);
    if (t.dtype != dtype_of_v<V>)
      throw FormatError(detail::st_where(label_, t.name) + ": stored as " + std::string(dtype_name(t.dtype)) +
                        ", but view<" + std::string(dtype_name(dtype_of_v<V>)) +
                        "> needs exactly that dtype; use load<T>() to convert");
    const std::byte* p = bytes(name).data();
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(V) != 0)
      throw FormatError(detail::st_where(label_, t.name) + ": data at file offset " +
                        std::to_string(layout_.data_start + t.offset) + " is not aligned to " +
                        std::to_string(alignof(V)) + " bytes, so it cannot be viewed in place; use load<T>() instead");
    if constexpr (std::is_same_v<V, bool>) {
      for (std::uint64_t i = 0; i < t.nbytes; ++i)
        if (std::to_integer<unsigned>(p[i]) > 1)
          throw FormatError(detail::st_where(label_, t.name) + ": BOOL element " + std::to_string(i) + " holds byte " +
                            std::to_string(std::to_integer<unsigned>(p[i])) + "; expected 0 or 1");
    }
    return TensorView<const T>(reinterpret_cast<const V*>(p), t.shape);
  }

  /// A contiguous copy converted to T from any stored dtype. Floating targets round to nearest; integer
  /// targets truncate toward zero and throw DTypeError for values they cannot hold.
  template <Element T>
  Tensor<T> load(std::string_view name) const {
    const TensorInfo& t = info(name);
    Tensor<T> out(t.shape);
    const std::byte* in = bytes(name).data();
    const auto n = static_cast<std::size_t>(t.numel());
    if (t.dtype == dtype_of_v<T> && t.dtype != DType::boolean) {
      if (n) std::memcpy(out.data(), in, n * sizeof(T));
    } else {
      detail::convert_from<T>(t.dtype, in, out.data(), n, detail::st_where(label_, t.name));
    }
    return out;
  }
  Tensor<float> to_f32(std::string_view name) const { return load<float>(name); }

  /// Lets the operating system drop the resident pages of tensor `name` (a mapped file only; they are read again
  /// if the tensor is used later). Loaders call it after copying a tensor out.
  void release(std::string_view name) const {
    if (const auto* mapped = std::get_if<MappedFile>(&storage_)) mapped->release_pages(bytes(name));
  }

 private:
  struct OwnedImage {
    std::unique_ptr<std::byte[], detail::AlignedFree> data;
    std::size_t size = 0;
  };
  static OwnedImage copy_image(std::span<const std::byte> image) {
    OwnedImage owned;
    owned.size = image.size();
    owned.data.reset(static_cast<std::byte*>(::operator new[](std::max<std::size_t>(image.size(), 1),
                                                              std::align_val_t{tensor_alignment})));
    if (!image.empty()) std::memcpy(owned.data.get(), image.data(), image.size());
    return owned;
  }
  std::span<const std::byte> file_bytes() const noexcept {
    if (const auto* mapped = std::get_if<MappedFile>(&storage_)) return mapped->bytes();
    const auto& owned = std::get<OwnedImage>(storage_);
    return {owned.data.get(), owned.size};
  }
  const TensorInfo* find(std::string_view name) const noexcept {
    const auto it = std::lower_bound(layout_.tensors.begin(), layout_.tensors.end(), name,
                                     [](const TensorInfo& t, std::string_view n) { return t.name < n; });
    return it != layout_.tensors.end() && it->name == name ? &*it : nullptr;
  }

  std::variant<MappedFile, OwnedImage> storage_;
  std::string label_;
  detail::SafetensorsLayout layout_;
};

LATENTKIT_NAMESPACE_END
