// SafetensorsWriter: collects tensors and metadata, then writes a safetensors file that SafetensorsFile (and
// the upstream Python/Rust readers) accept: names sorted, data tiled in name order, header padded with spaces
// to a multiple of 8 bytes so that the data section starts 8-byte aligned. The file is written under a
// temporary name and renamed into place, so a failed or interrupted write never leaves a half-written file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentkit/config/config.hpp"
#include "latentkit/core/dtype.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/core/tensor_view.hpp"
#include "latentkit/io/detail/atomic_file.hpp"

LATENTKIT_NAMESPACE_BEGIN

class SafetensorsWriter {
 public:
  /// Adds a copy of `view` (any element type; strided views are packed row-major).
  template <class U>
    requires Element<U>
  void add(std::string name, TensorView<U> view) {
    using T = std::remove_cv_t<U>;
    check_shape(name, view.shape());
    std::vector<std::byte> data(static_cast<std::size_t>(view.numel()) * sizeof(T));
    std::byte* out = data.data();
    view.for_each([&out](const T& x) {
      std::memcpy(out, &x, sizeof(T));
      out += sizeof(T);
    });
    insert(std::move(name), dtype_of_v<T>, view.shape(), std::move(data));
  }
  template <Element T>
  void add(std::string name, const Tensor<T>& tensor) {
    add(std::move(name), tensor.view());
  }

  /// Adds raw little-endian bytes of `dtype` and `shape`; ShapeError unless the size is numel x dtype size.
  void add_bytes(std::string name, DType dtype, const Dims& shape, std::span<const std::byte> data) {
    check_shape(name, shape);
    const std::size_t expected = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
    if (data.size() != expected)
      throw ShapeError("safetensors writer, tensor '" + name + "': " + std::to_string(data.size()) +
                       " bytes given, but shape " + shape.str() + " of " + std::string(dtype_name(dtype)) + " needs " +
                       std::to_string(expected));
    if (dtype == DType::boolean)
      for (std::size_t i = 0; i < data.size(); ++i)
        if (std::to_integer<unsigned>(data[i]) > 1)
          throw FormatError("safetensors writer, tensor '" + name + "': BOOL byte " + std::to_string(i) +
                            " is " + std::to_string(std::to_integer<unsigned>(data[i])) + "; expected 0 or 1");
    insert(std::move(name), dtype, shape, std::vector<std::byte>(data.begin(), data.end()));
  }

  /// Sets (or replaces) one `__metadata__` entry.
  void set_metadata(std::string key, std::string value) {
    quoted(key, "metadata key");
    quoted(value, "metadata value of '" + key + "'");
    metadata_[std::move(key)] = std::move(value);
  }

  std::size_t size() const noexcept { return entries_.size(); }
  bool contains(const std::string& name) const { return entries_.contains(name); }

  /// The complete file image (8-byte length, padded JSON header, data).
  std::vector<std::byte> to_bytes() const {
    const std::string header = header_text();
    std::vector<std::byte> image(8 + header.size());
    const std::uint64_t length = header.size();
    std::memcpy(image.data(), &length, 8);
    std::memcpy(image.data() + 8, header.data(), header.size());
    for (const auto& [name, entry] : entries_) image.insert(image.end(), entry.data.begin(), entry.data.end());
    return image;
  }

  /// Writes the file: to a temporary file beside `path`, then an atomic rename. IoError on any failure, in
  /// which case `path` is untouched and the temporary file removed.
  void write(const std::filesystem::path& path) const {
    const std::string header = header_text();
    const std::uint64_t length = header.size();
    detail::AtomicFile tmp(path);
    tmp.write(&length, 8);
    tmp.write(header.data(), header.size());
    for (const auto& [name, entry] : entries_) tmp.write(entry.data.data(), entry.data.size());
    tmp.commit();
  }

 private:
  struct Entry {
    DType dtype;
    Dims shape;
    std::vector<std::byte> data;
  };

  /// A JSON string literal for `text`; FormatError if it is not valid UTF-8 (JSON could not carry it).
  static std::string quoted(const std::string& text, const std::string& what) {
    try {
      return nlohmann::json(text).dump();
    } catch (const nlohmann::json::exception&) {
      throw FormatError("safetensors writer: " + what + " is not valid UTF-8, which a JSON header cannot hold");
    }
  }
  static void check_shape(const std::string& name, const Dims& shape) {
    for (index_t d : shape)
      if (d < 0) throw ShapeError("safetensors writer, tensor '" + name + "': negative extent in shape " + shape.str());
  }
  void insert(std::string name, DType dtype, const Dims& shape, std::vector<std::byte> data) {
    quoted(name, "tensor name '" + name + "'");
    if (name == "__metadata__")
      throw FormatError("safetensors writer: '__metadata__' is reserved for metadata and cannot name a tensor");
    if (entries_.contains(name))
      throw FormatError("safetensors writer: tensor '" + name + "' was already added; names must be unique");
    entries_.emplace(std::move(name), Entry{dtype, shape, std::move(data)});
  }

  std::string header_text() const {
    std::string h = "{";
    bool first = true;
    if (!metadata_.empty()) {
      h += "\"__metadata__\":{";
      for (const auto& [key, value] : metadata_) {
        if (!first) h += ',';
        first = false;
        h += quoted(key, "metadata key") + ':' + quoted(value, "metadata value");
      }
      h += '}';
    }
    std::uint64_t offset = 0;
    for (const auto& [name, entry] : entries_) {
      if (h.size() > 1) h += ',';
      h += quoted(name, "tensor name") + ":{\"dtype\":\"" + std::string(dtype_name(entry.dtype)) + "\",\"shape\":[";
      for (int i = 0; i < entry.shape.rank(); ++i) h += (i ? "," : "") + std::to_string(entry.shape[i]);
      h += "],\"data_offsets\":[" + std::to_string(offset) + ',' + std::to_string(offset + entry.data.size()) + "]}";
      offset += entry.data.size();
    }
    h += '}';
    h.append((8 - h.size() % 8) % 8, ' ');  // data then starts at a multiple of 8: float64 views stay aligned
    return h;
  }

  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

LATENTKIT_NAMESPACE_END
