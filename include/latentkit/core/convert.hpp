// Bulk element-type conversion (float <-> f16/bf16/double, integers -> float) and cast<U>(view) -> Tensor<U>.
//
// The scalar conversions of core/half.hpp are the reference: every vector path here gives the same bits for every
// input, NaN payloads included (tests check all 65536 half and bf16 patterns and millions of random floats).
//  - f16: F16C (_mm256_cvtps_ph / _mm256_cvtph_ps) or AVX-512F (_mm512_*) when the translation unit is compiled for
//    them (__F16C__ / __AVX512F__); the rounding mode is the instruction's immediate (nearest even), never MXCSR.
//    The hardware quiets signalling half NaNs on the way to float while the reference keeps them signalling, so
//    blocks holding a NaN (a movemask test) are redone by the scalar code.
//  - bf16: xsimd batches of uint32 with the scalar code's rounding-bias trick, so every xsimd architecture gets it;
//    the 32 <-> 16-bit narrowing and widening use the AVX2 / AVX-512F pack and extend instructions when present.
//  - others: plain loops the compiler vectorises (double<->float, small integers) or xsimd (int32).
// Large arrays are split into fixed chunks converted in parallel (the result never depends on the thread count:
// each element is converted on its own).
#pragma once
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__F16C__) || defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN

namespace detail {

inline constexpr std::size_t convert_chunk = std::size_t{1} << 15;        // elements per parallel work item
inline constexpr std::size_t convert_parallel_min = std::size_t{1} << 17;  // below this, threads cost more than they gain

/// Calls body(begin, end) over [0, n) in fixed chunks, in parallel when n is large.
template <class Body>
void convert_in_chunks(std::size_t n, Body&& body) {
  if (n < convert_parallel_min) {
    body(std::size_t{0}, n);
    return;
  }
  const auto chunks = static_cast<std::int64_t>((n + convert_chunk - 1) / convert_chunk);
  LATENTKIT_OMP(parallel for schedule(static))
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::size_t begin = static_cast<std::size_t>(c) * convert_chunk;
    body(begin, std::min(n, begin + convert_chunk));
  }
}

inline void float_to_half_span(const float* src, f16* dst, std::size_t n) noexcept {
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), h);
  }
#endif
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
#endif
  for (; i < n; ++i) dst[i] = f16(src[i]);
}

#if defined(__F16C__)
/// vcvtph2ps quiets signalling NaNs; the reference keeps the payload as is, so such lanes (rare) are redone.
inline bool has_half_nan(__m128i h) noexcept {
  const __m128i magnitude = _mm_and_si128(h, _mm_set1_epi16(0x7FFF));
  return _mm_movemask_epi8(_mm_cmpgt_epi16(magnitude, _mm_set1_epi16(0x7C00))) != 0;
}
#endif

inline void half_to_float_span(const f16* src, float* dst, std::size_t n) noexcept {
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
    if (has_half_nan(_mm256_castsi256_si128(h)) || has_half_nan(_mm256_extracti128_si256(h, 1)))
      for (std::size_t k = i; k < i + 16; ++k) dst[k] = static_cast<float>(src[k]);
  }
#endif
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    if (has_half_nan(h))
      for (std::size_t k = i; k < i + 8; ++k) dst[k] = static_cast<float>(src[k]);
  }
#endif
  for (; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}

/// Stores the low 16 bits of each uint32 lane: one pack instruction where the architecture has a lane-ordered
/// one (vpmovdw on AVX-512F; vpackusdw + vpermq on AVX2, the lanes being below 2^16), a plain loop elsewhere.
template <class Arch>
void store_low_halves(const xsimd::batch<std::uint32_t, Arch>& words, std::uint16_t* dst) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(words));
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
    const __m256i packed = _mm256_packus_epi32(words, _mm256_setzero_si256());  // per 128-bit lane
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08)));
    return;
  }
#endif
  alignas(64) std::uint32_t lanes[xsimd::batch<std::uint32_t, Arch>::size];
  words.store_aligned(lanes);
  for (std::size_t k = 0; k < words.size; ++k) dst[k] = static_cast<std::uint16_t>(lanes[k]);
}

/// Loads 16-bit values zero-extended into uint32 lanes (vpmovzxwd where available).
template <class Arch>
xsimd::batch<std::uint32_t, Arch> load_widened(const std::uint16_t* src) noexcept {
  using words = xsimd::batch<std::uint32_t, Arch>;
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
    return words(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src))));
#endif
#if defined(__AVX2__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>)
    return words(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src))));
#endif
  alignas(64) std::uint32_t lanes[words::size];
  for (std::size_t k = 0; k < words::size; ++k) lanes[k] = src[k];
  return words::load_aligned(lanes);
}

/// float -> bf16 on uint32 lanes: the bits of half.hpp's float_to_bf16_bits, lane by lane.
struct FloatToBf16Kernel {
  template <class Arch>
  void operator()(Arch, const float* src, bf16* dst, std::size_t n) const noexcept {
    using words = xsimd::batch<std::uint32_t, Arch>;
    constexpr std::size_t width = words::size;
    using ints = xsimd::batch<std::int32_t, Arch>;
    const words abs_mask(0x7FFFFFFFu), bias(0x7FFFu), one(1u), quiet(0x40u);
    const ints inf_bits(0x7F800000);
    std::uint16_t* out = reinterpret_cast<std::uint16_t*>(dst);  // bf16 is a standard-layout wrapper of its bits
    std::size_t i = 0;
    for (; i + width <= n; i += width) {
      const words x = xsimd::bitwise_cast<words>(xsimd::batch<float, Arch>::load_unaligned(src + i));
      const words nearest_even = (x + (bias + ((x >> 16) & one))) >> 16;
      const words nan_kept = (x >> 16) | quiet;
      // NaN test as a signed compare (|x| < 2^31): AVX2 has no unsigned one. All-ones lanes where x is NaN.
      const words is_nan = xsimd::bitwise_cast<words>(xsimd::bitwise_cast(xsimd::bitwise_cast<ints>(x & abs_mask) > inf_bits));
      store_low_halves(nearest_even ^ ((nearest_even ^ nan_kept) & is_nan), out + i);  // blend by mask
    }
    for (; i < n; ++i) dst[i] = bf16(src[i]);
  }
};

/// bf16 -> float is exact: the bf16 bits become the top half of the float.
struct Bf16ToFloatKernel {
  template <class Arch>
  void operator()(Arch, const bf16* src, float* dst, std::size_t n) const noexcept {
    using words = xsimd::batch<std::uint32_t, Arch>;
    constexpr std::size_t width = words::size;
    const std::uint16_t* in = reinterpret_cast<const std::uint16_t*>(src);
    std::size_t i = 0;
    for (; i + width <= n; i += width)
      xsimd::bitwise_cast<xsimd::batch<float, Arch>>(load_widened<Arch>(in + i) << 16).store_unaligned(dst + i);
    for (; i < n; ++i) dst[i] = static_cast<float>(src[i]);
  }
};

struct Int32ToFloatKernel {
  template <class Arch>
  void operator()(Arch, const std::int32_t* src, float* dst, std::size_t n) const noexcept {
    using ints = xsimd::batch<std::int32_t, Arch>;
    constexpr std::size_t width = ints::size;
    std::size_t i = 0;
    for (; i + width <= n; i += width)
      xsimd::to_float(ints::load_unaligned(src + i)).store_unaligned(dst + i);  // cvtdq2ps: nearest even
    for (; i < n; ++i) dst[i] = static_cast<float>(src[i]);
  }
};

/// double -> a binary format with E exponent and M mantissa bits (binary16: 5, 10; bfloat16: 8, 7), as bits,
/// rounded to nearest even in one step. Going through float would round twice (1 + 2^-11 + 2^-40 would become
/// 1.0 in binary16 instead of 1 + 2^-10). NaN stays NaN (quieted, top payload bits kept, as through float).
template <int E, int M>
constexpr std::uint16_t double_to_small_float_bits(double d) noexcept {
  constexpr int bias = (1 << (E - 1)) - 1, min_normal_exponent = 1 - bias;
  constexpr std::uint64_t mantissa_mask = (std::uint64_t{1} << 52) - 1;
  constexpr std::uint16_t inf = static_cast<std::uint16_t>(((1u << E) - 1u) << M);
  const std::uint64_t x = std::bit_cast<std::uint64_t>(d);
  const auto sign = static_cast<std::uint16_t>((x >> 63) << (E + M));
  const std::uint64_t ax = x & 0x7FFFFFFFFFFFFFFFull;
  if (ax > 0x7FF0000000000000ull)
    return static_cast<std::uint16_t>(sign | inf | (1u << (M - 1)) | ((ax >> (52 - M)) & ((1u << M) - 1u)));
  const int biased = static_cast<int>(ax >> 52), exponent = biased - 1023;
  if (exponent > bias) return static_cast<std::uint16_t>(sign | inf);  // also +-inf itself
  auto round = [](std::uint64_t value, int shift) {  // value >> shift, nearest even (a carry is correct rounding)
    std::uint64_t r = value >> shift;
    const std::uint64_t rest = value & ((std::uint64_t{1} << shift) - 1), halfway = std::uint64_t{1} << (shift - 1);
    if (rest > halfway || (rest == halfway && (r & 1u))) ++r;
    return r;
  };
  if (exponent >= min_normal_exponent) {
    const std::uint64_t rebiased = ax - (static_cast<std::uint64_t>(1023 - bias) << 52);
    return static_cast<std::uint16_t>(sign | std::min<std::uint64_t>(round(rebiased, 52 - M), inf));
  }
  // Subnormal target: value = m * 2^(biased - 1075), in units of 2^(min_normal_exponent - M).
  if (biased == 0) return sign;  // double subnormals and zero are far below half the smallest target subnormal
  const int shift = 1075 + min_normal_exponent - M - biased;  // >= 53 - M
  if (shift >= 54) return sign;                                // below half a unit: rounds to +-0
  return static_cast<std::uint16_t>(sign | round((ax & mantissa_mask) | (std::uint64_t{1} << 52), shift));
}
constexpr std::uint16_t double_to_half_bits(double d) noexcept { return double_to_small_float_bits<5, 10>(d); }
constexpr std::uint16_t double_to_bf16_bits(double d) noexcept { return double_to_small_float_bits<8, 7>(d); }

}  // namespace detail

// --- bulk conversions: dst[i] = src[i] converted, i in [0, n); src and dst must not overlap ---------------------

/// float -> f16, round to nearest even, overflow to +-inf, NaN kept NaN.
inline void convert(const float* src, f16* dst, std::size_t n) {
  detail::convert_in_chunks(n, [=](std::size_t b, std::size_t e) { detail::float_to_half_span(src + b, dst + b, e - b); });
}
/// f16 -> float (exact).
inline void convert(const f16* src, float* dst, std::size_t n) {
  detail::convert_in_chunks(n, [=](std::size_t b, std::size_t e) { detail::half_to_float_span(src + b, dst + b, e - b); });
}
/// float -> bf16, round to nearest even, NaN kept NaN.
inline void convert(const float* src, bf16* dst, std::size_t n) {
  detail::convert_in_chunks(n, [=](std::size_t b, std::size_t e) {
    simd::dispatch(detail::FloatToBf16Kernel{})(src + b, dst + b, e - b);
  });
}
/// bf16 -> float (exact).
inline void convert(const bf16* src, float* dst, std::size_t n) {
  detail::convert_in_chunks(n, [=](std::size_t b, std::size_t e) {
    simd::dispatch(detail::Bf16ToFloatKernel{})(src + b, dst + b, e - b);
  });
}
/// int32 -> float, round to nearest even.
inline void convert(const std::int32_t* src, float* dst, std::size_t n) {
  detail::convert_in_chunks(n, [=](std::size_t b, std::size_t e) {
    simd::dispatch(detail::Int32ToFloatKernel{})(src + b, dst + b, e - b);
  });
}
/// double -> float (nearest even), float -> double (exact), and every other integer -> float (nearest even; exact
/// for 8- and 16-bit integers and bool). Plain loops: the compiler vectorises them (cvtpd2ps, cvtps2pd, pmovsx...).
template <class From, class To>
  requires((std::is_same_v<From, double> && std::is_same_v<To, float>) ||
           (std::is_same_v<From, float> && std::is_same_v<To, double>) ||
           ((std::is_same_v<From, std::int64_t> || std::is_same_v<From, std::int16_t> ||
             std::is_same_v<From, std::int8_t> || std::is_same_v<From, std::uint8_t> || std::is_same_v<From, bool>) &&
            std::is_same_v<To, float>))
void convert(const From* src, To* dst, std::size_t n) {
  detail::convert_in_chunks(n, [=](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) dst[i] = static_cast<To>(src[i]);
  });
}
/// double -> f16 / bf16, rounded to nearest even in one step (see detail::double_to_small_float_bits).
template <class Half>
  requires(std::is_same_v<Half, f16> || std::is_same_v<Half, bf16>)
void convert(const double* src, Half* dst, std::size_t n) {
  detail::convert_in_chunks(n, [=](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      dst[i] = Half::from_bits(std::is_same_v<Half, f16> ? detail::double_to_half_bits(src[i]) : detail::double_to_bf16_bits(src[i]));
  });
}
/// f16 / bf16 -> double (exact, through float).
template <class Half>
  requires(std::is_same_v<Half, f16> || std::is_same_v<Half, bf16>)
void convert(const Half* src, double* dst, std::size_t n) {
  detail::convert_in_chunks(n, [=](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) dst[i] = static_cast<double>(static_cast<float>(src[i]));
  });
}
/// Same type: a copy.
template <Element T>
void convert(const T* src, T* dst, std::size_t n) {
  if (n) std::memcpy(dst, src, n * sizeof(T));
}

/// The reference: element by element with half.hpp's scalar code (benchmarks and tests compare against it).
template <class From, class To>
void convert_scalar(const From* src, To* dst, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<From, double> && std::is_same_v<To, f16>) dst[i] = To::from_bits(detail::double_to_half_bits(src[i]));
    else if constexpr (std::is_same_v<From, double> && std::is_same_v<To, bf16>) dst[i] = To::from_bits(detail::double_to_bf16_bits(src[i]));
    else if constexpr (std::is_same_v<To, f16> || std::is_same_v<To, bf16>) dst[i] = To(static_cast<float>(src[i]));
    else if constexpr (std::is_same_v<From, f16> || std::is_same_v<From, bf16>) dst[i] = static_cast<To>(static_cast<float>(src[i]));
    else dst[i] = static_cast<To>(src[i]);
  }
}

/// True when convert(const From*, To*, n) exists.
template <class From, class To>
inline constexpr bool is_convertible_dtype_v =
    requires(const From* s, To* d, std::size_t n) { convert(s, d, n); };

/// A new contiguous Tensor<To> holding `src` converted element by element (any layout; see convert()).
template <Element To, class From>
  requires is_convertible_dtype_v<std::remove_cv_t<From>, To>
Tensor<To> cast(TensorView<From> src) {
  using F = std::remove_cv_t<From>;
  Tensor<To> out(src.shape());
  if (src.is_contiguous()) {
    convert(static_cast<const F*>(src.data()), out.data(), static_cast<std::size_t>(src.numel()));
  } else {
    const Tensor<F> dense = contiguous(src);
    convert(dense.data(), out.data(), static_cast<std::size_t>(dense.numel()));
  }
  return out;
}
template <Element To, class From>
  requires is_convertible_dtype_v<From, To>
Tensor<To> cast(const Tensor<From>& src) {
  return cast<To>(src.view());
}

LATENTKIT_NAMESPACE_END
