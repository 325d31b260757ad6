// What the running x86-64 CPU and its operating system support, by CPUID and XGETBV: the x86-64 micro-
// architecture levels the kernel library is compiled for, and AVX512-BF16.
//
// Our own check rather than xsimd 8's available_architectures(): that one does not ask the operating system
// whether it saves the AVX/AVX-512 registers (XCR0), does not look at AVX512-VL, BMI2 or F16C, which
// -march=x86-64-v3/v4 code uses, and reads the AVX bit from the wrong CPUID leaf. Header-only inline assembly,
// so it also works in a JIT interpreter (clang-repl), where the compiler runtime's __cpu_model may be missing.
#pragma once
#include <cstdint>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace simd {

/// The x86-64 levels (as -march=x86-64-v3 / -v4 define them) this CPU can run, and AVX512-BF16.
struct CpuLevels {
  bool x86_64_v3 = false;    // AVX, AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE, with the OS saving YMM state
  bool x86_64_v4 = false;    // v3 + AVX512 F/BW/CD/DQ/VL, with the OS saving ZMM and opmask state
  bool avx512_bf16 = false;  // v4 + vdpbf16ps
};

namespace detail {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
struct CpuidRegisters {
  std::uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};
inline CpuidRegisters cpuid(std::uint32_t leaf, std::uint32_t subleaf = 0) noexcept {
  CpuidRegisters r;
  __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
  return r;
}
inline std::uint64_t xgetbv0() noexcept {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
constexpr bool bit(std::uint32_t reg, int n) noexcept { return (reg >> n) & 1u; }

inline CpuLevels detect_cpu_levels() noexcept {
  CpuLevels levels;
  const std::uint32_t max_leaf = cpuid(0).eax;
  if (max_leaf < 7) return levels;
  const CpuidRegisters l1 = cpuid(1), l7 = cpuid(7, 0), ext = cpuid(0x80000001u);
  if (!bit(l1.ecx, 27)) return levels;  // OSXSAVE: XGETBV is usable
  const std::uint64_t xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;    // SSE and AVX state
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;  // and opmask, ZMM_Hi256, Hi16_ZMM
  const bool v2 = bit(l1.ecx, 0) && bit(l1.ecx, 9) && bit(l1.ecx, 19) && bit(l1.ecx, 20) && bit(l1.ecx, 23) &&
                  bit(l1.ecx, 13);  // SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CMPXCHG16B
  levels.x86_64_v3 = v2 && os_ymm && bit(l1.ecx, 28) /*AVX*/ && bit(l7.ebx, 5) /*AVX2*/ && bit(l1.ecx, 12) /*FMA*/ &&
                     bit(l1.ecx, 29) /*F16C*/ && bit(l7.ebx, 3) /*BMI1*/ && bit(l7.ebx, 8) /*BMI2*/ &&
                     bit(ext.ecx, 5) /*LZCNT*/ && bit(l1.ecx, 22) /*MOVBE*/;
  levels.x86_64_v4 = levels.x86_64_v3 && os_zmm && bit(l7.ebx, 16) /*F*/ && bit(l7.ebx, 30) /*BW*/ &&
                     bit(l7.ebx, 28) /*CD*/ && bit(l7.ebx, 17) /*DQ*/ && bit(l7.ebx, 31) /*VL*/;
  levels.avx512_bf16 = levels.x86_64_v4 && l7.eax >= 1 && bit(cpuid(7, 1).eax, 5);
  return levels;
}
#else
inline CpuLevels detect_cpu_levels() noexcept { return {}; }
#endif
}  // namespace detail

/// This CPU's levels, detected once (a function-local static: no static initialisation order involved).
inline CpuLevels cpu_levels() noexcept {
  static const CpuLevels levels = detail::detect_cpu_levels();
  return levels;
}

}  // namespace simd
LATENTKIT_NAMESPACE_END
