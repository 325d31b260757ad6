// MappedFile: a read-only POSIX memory map of a whole file. Tensors are read straight from the page cache,
// so opening a multi-gigabyte checkpoint costs neither time nor memory until its bytes are touched.
#pragma once
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN

class MappedFile {
 public:
  MappedFile() noexcept = default;

  /// Maps `path` read-only; IoError (naming the file and the system's reason) if it cannot be opened or mapped.
  explicit MappedFile(std::filesystem::path path) : path_(std::move(path)) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError(failure("cannot open"));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const std::string msg = failure("cannot stat");
      ::close(fd);
      throw IoError(msg);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw IoError("'" + path_.string() + "' is not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {  // mmap of length 0 is an error; an empty file is simply an empty span
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const std::string msg = failure("cannot memory-map");
        ::close(fd);
        throw IoError(msg);
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping keeps the file alive
  }

  MappedFile(MappedFile&& other) noexcept
      : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      unmap();
      path_ = std::move(other.path_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() { unmap(); }

  const std::filesystem::path& path() const noexcept { return path_; }
  /// The whole file. Valid as long as this object (or the one it is moved into) lives.
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

  /// Gives the pages wholly inside `range` (a part of bytes()) back to the kernel: a loader that has copied a tensor
  /// out calls it so that a multi-GB checkpoint does not stay resident beside the model built from it. The bytes
  /// stay readable (the mapping is private and never written, so a later read faults them in from the file again).
  void release_pages(std::span<const std::byte> range) const noexcept {
    if (!data_ || range.empty()) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto first = (reinterpret_cast<std::uintptr_t>(range.data()) + page - 1) / page * page;
    const auto last = (reinterpret_cast<std::uintptr_t>(range.data()) + range.size()) / page * page;
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }

 private:
  std::string failure(const char* what) const {
    return std::string(what) + " '" + path_.string() + "': " + std::strerror(errno);
  }
  void unmap() noexcept {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

LATENTKIT_NAMESPACE_END
