// Which kernels a call runs: the ones compiled into the calling program, or a table of the kernel library.
//
// The kernel entry points (gemm, packing, conv2d, attention, the norms, softmax, GEGLU) ask library_kernels()
// first. It returns a kernel_library::Table when the program links the kernel library (latentkit::kernels, which
// defines LATENTKIT_USE_KERNEL_LIBRARY) and that table runs a better instruction set on this CPU than the best one
// compiled into the program; otherwise null, and the entry point runs its own xsimd dispatch. So:
//   - a `-march=native` build runs its own, inlined kernels (nothing to gain from the library);
//   - a portable build (baseline x86-64, SSE2) runs the library's x86-64-v4 kernels on an AVX-512 CPU, its v3
//     kernels on an AVX2 one, and its own SSE2 kernels elsewhere;
//   - a header-only include without the library runs what it was compiled for, and kernel_report() says so
//     with a warning when the CPU could do better.
// The choice can be forced (tests, benchmarks): choose_kernels(), or LATENTKIT_KERNELS=auto|compiled-in|
// x86-64-v3|x86-64-v4 in the environment, read at the first kernel call.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "latentkit/backend/kernel_library/table.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/backend/simd/cpu_features.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/names.hpp"

// A kernel-library translation unit never calls back into the library: it is the library.
#if defined(LATENTKIT_USE_KERNEL_LIBRARY) && LATENTKIT_USE_KERNEL_LIBRARY && !defined(LATENTKIT_ABI_ISA)
#define LATENTKIT_HAS_KERNEL_LIBRARY 1
#else
#define LATENTKIT_HAS_KERNEL_LIBRARY 0
#endif

LATENTKIT_NAMESPACE_BEGIN
namespace simd {

/// Where kernel calls go: chosen automatically, or forced to the compiled-in kernels or one library level.
enum class KernelChoice { automatic, compiled_in, x86_64_v3, x86_64_v4 };

inline constexpr std::array<std::pair<std::string_view, KernelChoice>, 4> kernel_choice_names{{
    {"auto", KernelChoice::automatic},
    {"compiled-in", KernelChoice::compiled_in},
    {"x86-64-v3", KernelChoice::x86_64_v3},
    {"x86-64-v4", KernelChoice::x86_64_v4},
}};

/// "auto", "compiled-in", "x86-64-v3" or "x86-64-v4"; UnknownNameError otherwise.
inline KernelChoice parse_kernel_choice(std::string_view name) {
  return lookup_name("kernel choice", name, kernel_choice_names);
}
inline std::string_view kernel_choice_name(KernelChoice c) noexcept {
  for (const auto& [name, value] : kernel_choice_names)
    if (value == c) return name;
  return "auto";
}

/// The kernel library's tables this program links, best first (empty without the library).
inline std::span<const kernel_library::Table* const> library_tables() noexcept {
#if LATENTKIT_HAS_KERNEL_LIBRARY
  static const kernel_library::Table* const tables[] = {&kernel_library::x86_64_v4(), &kernel_library::x86_64_v3()};
  return tables;
#else
  return {};
#endif
}

/// The library table of a level this CPU runs (null: another choice, no library, or the CPU lacks the level).
inline const kernel_library::Table* level_table(KernelChoice level) noexcept {
#if LATENTKIT_HAS_KERNEL_LIBRARY
  const CpuLevels cpu = cpu_levels();
  if (level == KernelChoice::x86_64_v4 && cpu.x86_64_v4) return &kernel_library::x86_64_v4();
  if (level == KernelChoice::x86_64_v3 && cpu.x86_64_v3) return &kernel_library::x86_64_v3();
#endif
  (void)level;
  return nullptr;
}

/// Whether this CPU runs a library table.
inline bool cpu_runs(const kernel_library::Table& t) {
  return level_table(parse_kernel_choice(t.level)) == &t;
}

/// The library's vdpbf16ps GEMM when it is linked, this CPU has AVX512-BF16 and the choice allows it (automatic
/// or x86-64-v4); null otherwise. gemm/bf16_dot.hpp prefers a compiled-in kernel under the automatic choice.
inline const kernel_library::Bf16DotTable* library_bf16_dot();

namespace detail {
struct ArchVersion {
  template <class Arch>
  unsigned operator()(Arch) const noexcept { return Arch::version(); }
};

/// The xsimd version of the best compiled-in architecture this CPU runs.
inline unsigned compiled_in_version() noexcept { return dispatch(ArchVersion{})(); }

/// The best table this CPU runs, when it is better than the compiled-in kernels.
inline const kernel_library::Table* automatic_table() {
  for (const KernelChoice level : {KernelChoice::x86_64_v4, KernelChoice::x86_64_v3})
    if (const kernel_library::Table* t = level_table(level)) return t->arch_version > compiled_in_version() ? t : nullptr;
  return nullptr;
}

/// The process-wide choice: -1 until the first kernel call reads LATENTKIT_KERNELS (constant-initialised).
inline std::atomic<int>& choice_state() noexcept {
  static std::atomic<int> state{-1};
  return state;
}

inline void check_satisfiable(KernelChoice c, std::string_view source) {
  if (c == KernelChoice::automatic || c == KernelChoice::compiled_in || level_table(c)) return;
  const bool linked = !library_tables().empty();
  throw Error(std::string(source) + " asks for the " + std::string(kernel_choice_name(c)) + " kernels, but " +
              (linked ? "this CPU cannot run them" : "this program does not link the kernel library (latentkit::kernels)"));
}
}  // namespace detail

/// Forces where kernel calls go from now on, process-wide (throws Error when that level cannot run here).
/// Prepacked weights record the blocking they were packed for: repack them after a change of level.
inline void choose_kernels(KernelChoice c) {
  detail::check_satisfiable(c, "choose_kernels");
  detail::choice_state().store(static_cast<int>(c));
}

/// The current choice (LATENTKIT_KERNELS on first use; an unknown or unsatisfiable value throws, once per call).
inline KernelChoice kernel_choice() {
  int state = detail::choice_state().load();
  if (state < 0) {
    KernelChoice c = KernelChoice::automatic;
    if (const char* env = std::getenv("LATENTKIT_KERNELS"); env && *env) {
      c = parse_kernel_choice(env);
      detail::check_satisfiable(c, "LATENTKIT_KERNELS");
    }
    int expected = -1;
    detail::choice_state().compare_exchange_strong(expected, static_cast<int>(c));
    state = detail::choice_state().load();
  }
  return static_cast<KernelChoice>(state);
}

/// The library table kernel calls run, or null when they run the program's own compiled-in kernels.
inline const kernel_library::Table* library_kernels() {
  if constexpr (!LATENTKIT_HAS_KERNEL_LIBRARY) {
    return nullptr;
  } else {
    const KernelChoice choice = kernel_choice();
    if (choice == KernelChoice::automatic) {
      static const kernel_library::Table* const best = detail::automatic_table();
      return best;
    }
    return level_table(choice);  // null for compiled_in
  }
}

inline const kernel_library::Bf16DotTable* library_bf16_dot() {
#if LATENTKIT_HAS_KERNEL_LIBRARY
  const KernelChoice c = kernel_choice();
  if (cpu_levels().avx512_bf16 && (c == KernelChoice::automatic || c == KernelChoice::x86_64_v4))
    return &kernel_library::x86_64_v4_bf16();
#endif
  return nullptr;
}

/// What `latentkit kernels` and the benchmarks print: where kernel calls go on this CPU, why, and a warning when
/// that is slower than what the CPU offers.
struct KernelReport {
  std::string compiled_in;   // the best compiled-in architecture this CPU runs ("sse2", "avx512bw")
  std::vector<std::string> library;  // the library's levels and their architectures, "" when not linked
  std::string cpu_best;      // the best level this CPU supports, with the architecture the kernels use there
  std::string running;       // "compiled-in avx512bw" or "kernel library x86-64-v4 (avx512bw)"
  std::string running_arch;  // the architecture of the running kernels
  std::string why;
  std::string warning;       // empty unless the running kernels are slower than what the CPU could run
};

inline KernelReport kernel_report() {
  KernelReport r;
  r.compiled_in = best_arch_name();
  for (const kernel_library::Table* t : library_tables())
    r.library.push_back(std::string(t->level) + " (" + t->arch + (cpu_runs(*t) ? "" : ", not on this CPU") + ")");
  const CpuLevels cpu = cpu_levels();
  unsigned best_version = detail::compiled_in_version();
  std::string best_name = r.compiled_in;
  if (cpu.x86_64_v4) {
    best_version = std::max(best_version, xsimd::avx512bw::version());
    r.cpu_best = "x86-64-v4 (avx512bw)";
  } else if (cpu.x86_64_v3) {
    best_version = std::max(best_version, xsimd::fma3<xsimd::avx2>::version());
    r.cpu_best = "x86-64-v3 (fma3+avx2)";
  } else {
    r.cpu_best = "baseline (" + r.compiled_in + ")";
  }
  const KernelChoice choice = kernel_choice();
  const kernel_library::Table* table = library_kernels();
  const unsigned running_version = table ? table->arch_version : detail::compiled_in_version();
  r.running_arch = table ? table->arch : r.compiled_in;
  r.running = table ? "kernel library " + std::string(table->level) + " (" + table->arch + ")" : "compiled-in " + r.compiled_in;
  if (choice != KernelChoice::automatic) {
    r.why = "forced (choose_kernels or LATENTKIT_KERNELS=" + std::string(kernel_choice_name(choice)) + ")";
  } else if (table) {
    r.why = "this program is compiled for " + r.compiled_in + " at best; the kernel library's " + table->level +
            " table is the best this CPU runs";
  } else if (r.library.empty()) {
    r.why = "the best architecture compiled into this program; no kernel library linked";
  } else {
    r.why = "the best architecture compiled into this program is as fast as any library table this CPU runs";
  }
  if (running_version < best_version)
    r.warning = "latentkit runs " + r.running + " kernels, slower than this CPU's " + r.cpu_best +
                (choice != KernelChoice::automatic
                     ? ": unset LATENTKIT_KERNELS / choose_kernels(KernelChoice::automatic)"
                     : ": build with -march=native (LATENTKIT_NATIVE=ON, the default) or link latentkit::kernels, "
                       "the kernel library compiled per instruction set");
  return r;
}

}  // namespace simd
LATENTKIT_NAMESPACE_END
