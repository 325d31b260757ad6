// AtomicFile: writes a file under a unique temporary name beside the target, then fsync and rename(2) it into
// place, so readers see either the old file or the whole new one, never a partial write. The temporary file is
// removed unless commit() succeeded.
#pragma once
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace detail {

class AtomicFile {
 public:
  /// Creates the temporary file; IoError naming the target when it cannot (missing folder, no permission).
  explicit AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    for (int attempt = 0; fd_ < 0; ++attempt) {
      tmp_ = target_;
      tmp_ += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(stamp) + "-" + std::to_string(attempt);
      fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && (errno != EEXIST || attempt > 100)) fail("cannot create a temporary file for");
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  void write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ::ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("cannot write");
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  /// Flushes, closes and renames onto the target (replacing it); IoError on any failure, the target untouched.
  void commit() {
    if (::fsync(fd_) != 0) fail("cannot flush");
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("cannot close");
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) fail("cannot rename the temporary file onto");
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw IoError(std::string(what) + " '" + target_.string() + "': " + std::strerror(errno));
  }
  std::filesystem::path target_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace detail
LATENTKIT_NAMESPACE_END
