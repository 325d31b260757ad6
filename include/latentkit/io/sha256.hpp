// SHA-256 (FIPS 180-4) of bytes and of files, and AUTOMATIC1111's checkpoint "Model hash": the first 10 hex
// digits of the file's SHA-256 (its `shorthash`, what the web UI writes into every infotext since it replaced
// the old 8-digit hash of a 64 KiB slice). Files are streamed in 1 MiB blocks, so a 7 GB checkpoint costs no memory.
#pragma once
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#if defined(__SHA__) && defined(__SSE4_1__)
#include <immintrin.h>
#endif

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN

namespace detail {

inline constexpr std::uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline constexpr std::uint32_t sha256_rotr(std::uint32_t x, int n) noexcept { return (x >> n) | (x << (32 - n)); }

/// The compression function (FIPS 180-4 section 6.2.2) over `blocks` consecutive 64-byte blocks.
inline void sha256_blocks_scalar(std::uint32_t* state, const std::uint8_t* p, std::size_t blocks) noexcept {
  for (; blocks > 0; --blocks, p += 64) {
    std::uint32_t w[64];
    for (int t = 0; t < 16; ++t)
      w[t] = (std::uint32_t{p[4 * t]} << 24) | (std::uint32_t{p[4 * t + 1]} << 16) | (std::uint32_t{p[4 * t + 2]} << 8) |
             std::uint32_t{p[4 * t + 3]};
    for (int t = 16; t < 64; ++t) {
      const std::uint32_t s0 = sha256_rotr(w[t - 15], 7) ^ sha256_rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      const std::uint32_t s1 = sha256_rotr(w[t - 2], 17) ^ sha256_rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6],
                  h = state[7];
    for (int t = 0; t < 64; ++t) {
      const std::uint32_t t1 =
          h + (sha256_rotr(e, 6) ^ sha256_rotr(e, 11) ^ sha256_rotr(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[t] + w[t];
      const std::uint32_t t2 = (sha256_rotr(a, 2) ^ sha256_rotr(a, 13) ^ sha256_rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a, state[1] += b, state[2] += c, state[3] += d, state[4] += e, state[5] += f, state[6] += g, state[7] += h;
  }
}

#if defined(__SHA__) && defined(__SSE4_1__)
#define LATENTKIT_SHA256_SHANI 1
/// The same with the x86 SHA extensions (compiled in when the target has them, as -march=native does on CPUs that
/// do): about 10x the scalar speed, so hashing a multi-gigabyte checkpoint takes seconds. The state lives in the
/// two registers the instructions expect, (A, B, E, F) and (C, D, G, H); each sha256rnds2 does two rounds.
inline void sha256_blocks_shani(std::uint32_t* state, const std::uint8_t* p, std::size_t blocks) noexcept {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);  // big-endian words
  __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  const __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  const __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
  __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
  for (; blocks > 0; --blocks, p += 64) {
    const __m128i abef_in = abef, cdgh_in = cdgh;
    __m128i w[4];
    for (int j = 0; j < 4; ++j)
      w[j] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * j)), byte_swap);
    for (int j = 0; j < 16; ++j) {  // four rounds per step: words 4j .. 4j+3
      if (j >= 4) {
        // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16]: msg1 adds s0, alignr brings W[t-7], msg2 adds s1.
        const __m128i t = _mm_add_epi32(_mm_sha256msg1_epu32(w[(j - 4) & 3], w[(j - 3) & 3]),
                                        _mm_alignr_epi8(w[(j - 1) & 3], w[(j - 2) & 3], 4));
        w[j & 3] = _mm_sha256msg2_epu32(t, w[(j - 1) & 3]);
      }
      __m128i wk = _mm_add_epi32(w[j & 3], _mm_loadu_si128(reinterpret_cast<const __m128i*>(sha256_k + 4 * j)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);  // rounds 4j, 4j+1: the new (A, B, E, F)
      wk = _mm_shuffle_epi32(wk, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);  // rounds 4j+2, 4j+3
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }
  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));
}
#endif

inline void sha256_blocks(std::uint32_t* state, const std::uint8_t* p, std::size_t blocks) noexcept {
#if defined(LATENTKIT_SHA256_SHANI)
  sha256_blocks_shani(state, p, blocks);
#else
  sha256_blocks_scalar(state, p, blocks);
#endif
}

}  // namespace detail

/// Incremental SHA-256: update() any number of times, then digest() once.
class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  void update(std::span<const std::uint8_t> bytes) noexcept {
    const std::uint8_t* p = bytes.data();
    std::size_t n = bytes.size();
    total_ += n;
    if (buffered_ > 0) {
      const std::size_t take = n < 64 - buffered_ ? n : 64 - buffered_;
      std::memcpy(block_.data() + buffered_, p, take);
      buffered_ += take;
      p += take;
      n -= take;
      if (buffered_ < 64) return;
      detail::sha256_blocks(h_.data(), block_.data(), 1);
      buffered_ = 0;
    }
    detail::sha256_blocks(h_.data(), p, n / 64);
    p += n / 64 * 64;
    n %= 64;
    if (n > 0) std::memcpy(block_.data(), p, n);
    buffered_ = n;
  }
  void update(std::string_view text) noexcept {
    update({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  }

  /// Pads (a 1 bit, zeros, the 64-bit message length in bits) and returns the hash; the object is then spent.
  Digest digest() noexcept {
    const std::uint64_t bits = total_ * 8;
    const std::uint8_t one = 0x80;
    update({&one, 1});
    const std::uint8_t zero[64] = {};
    update({zero, (buffered_ <= 56 ? 56 - buffered_ : 120 - buffered_)});
    std::uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
    update({length, 8});
    Digest out{};
    for (std::size_t i = 0; i < 8; ++i)
      for (std::size_t b = 0; b < 4; ++b) out[4 * i + b] = static_cast<std::uint8_t>(h_[i] >> (24 - 8 * b));
    return out;
  }

 private:
  std::array<std::uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<std::uint8_t, 64> block_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;
};

/// Lower-case hex of a digest (or any bytes).
inline std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = digits[bytes[i] >> 4];
    s[2 * i + 1] = digits[bytes[i] & 15];
  }
  return s;
}

/// SHA-256 of `bytes` as 64 lower-case hex digits.
inline std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  Sha256 h;
  h.update(bytes);
  return to_hex(h.digest());
}
inline std::string sha256_hex(std::string_view text) {
  return sha256_hex({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

/// SHA-256 of a file's contents as 64 lower-case hex digits, read in 1 MiB blocks. IoError naming the file.
inline std::string sha256_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  auto fail = [&](const char* what) { return IoError(std::string(what) + " '" + path.string() + "': " + std::strerror(errno)); };
  if (fd < 0) throw fail("cannot open");
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};
  std::vector<std::uint8_t> block(std::size_t{1} << 20);
  Sha256 h;
  while (true) {
    const ::ssize_t n = ::read(fd, block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail("cannot read");
    if (n == 0) break;
    h.update({block.data(), static_cast<std::size_t>(n)});
  }
  return to_hex(h.digest());
}

/// AUTOMATIC1111's "Model hash" of a checkpoint file (modules/sd_models.py, calculate_shorthash): the first 10
/// hex digits of its SHA-256.
inline std::string a1111_model_hash(const std::filesystem::path& path) { return sha256_file(path).substr(0, 10); }

LATENTKIT_NAMESPACE_END
