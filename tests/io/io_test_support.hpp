// Helpers for the io tests: a scratch folder, file writing, and hand-built safetensors images.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace io_test {

/// A fresh folder under the system temp dir, removed when the test ends.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    path = std::filesystem::temp_directory_path() /
           ("latentkit_io_" + std::to_string(::getpid()) + "_" + std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

inline void write_file(const std::filesystem::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline std::vector<std::byte> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

/// A safetensors image with an explicit header length prefix, header text and `data_bytes` data bytes
/// (filled with a recognisable non-zero pattern).
inline std::vector<std::byte> raw_image(std::uint64_t length_prefix, std::string_view header, std::size_t data_bytes) {
  std::vector<std::byte> image(8 + header.size() + data_bytes);
  std::memcpy(image.data(), &length_prefix, 8);
  std::memcpy(image.data() + 8, header.data(), header.size());
  for (std::size_t i = 0; i < data_bytes; ++i) image[8 + header.size() + i] = static_cast<std::byte>(i * 7 + 1);
  return image;
}

/// A safetensors image whose prefix matches the header.
inline std::vector<std::byte> image(std::string_view header, std::size_t data_bytes) {
  return raw_image(header.size(), header, data_bytes);
}

}  // namespace io_test
