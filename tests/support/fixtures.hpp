// Where the reference fixtures live: $LATENTKIT_FIXTURES, else ../shared/fixtures beside the checkout.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

namespace latentkit_test {

inline std::filesystem::path fixtures_dir() {
  const char* env = std::getenv("LATENTKIT_FIXTURES");
  std::filesystem::path dir = (env && *env) ? std::filesystem::path(env) : std::filesystem::path(LATENTKIT_DEFAULT_FIXTURES);
  if (!std::filesystem::is_directory(dir))
    throw std::runtime_error("fixture folder " + dir.string() + " not found: set LATENTKIT_FIXTURES");
  return dir;
}

/// A fixture file that must exist (tests fail, never skip, when reference data is missing).
inline std::filesystem::path fixture(const std::string& relative) {
  auto p = fixtures_dir() / relative;
  if (!std::filesystem::exists(p)) throw std::runtime_error("fixture " + p.string() + " not found");
  return p;
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A fresh folder under the system temp dir (named `tag` plus random digits), removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("latentkit_" + tag + "_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace latentkit_test
