// bf16 x bf16 -> f32 GEMM with AVX512-BF16 `vdpbf16ps` (kernel: gemm/bf16_dot_kernel.hpp), in every build.
//
// vdpbf16ps multiplies pairs of bf16 and adds both products to a float lane: twice the multiply throughput of an
// f32 FMA. The activations A are rounded to bf16 while they are packed (the weights B already are): results differ
// from gemm() on the f32 activations by that rounding, so this is an opt-in entry point, not a dispatch target of
// gemm(). Which kernel runs:
//   - compiled in, where the caller's flags enable AVX512-BF16 (a -march=native build on such a CPU);
//   - otherwise the kernel library's copy (latentkit::kernels, -march=x86-64-v4 -mavx512bf16) on a CPU that has it;
//   - otherwise none: bf16_dot_available() is false and the entry points throw Error (use gemm() with bf16
//     weights, widened while packed, instead).
// Both kernels are the same code: same packed layout, same bits, bit-identical for any thread count.
#pragma once
#include <cstdint>
#include <string>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/simd/cpu_features.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/kernels/gemm/bf16_dot_kernel.hpp"
#include "latentkit/kernels/gemm/pack.hpp"
#include "latentkit/kernels/gemm/table_operands.hpp"

LATENTKIT_NAMESPACE_BEGIN

namespace gemm_kernel {
/// The packed layout of the vdpbf16ps kernel's B operand, the same for the compiled-in and the library kernel.
struct Bf16DotLayout {
  static constexpr index_t nr = 32;   // columns per pair panel
  static constexpr index_t kc = 512;  // K slice, in elements
};
#if defined(LATENTKIT_HAS_AVX512_BF16_GEMM)
static_assert(Bf16DotKernel::nr == Bf16DotLayout::nr && Bf16DotKernel::kc == Bf16DotLayout::kc);
#endif

/// Where a vdpbf16ps call goes.
enum class Bf16DotPath { none, compiled_in, library };

inline Bf16DotPath bf16_dot_path() {
  const simd::KernelChoice choice = simd::kernel_choice();
#if defined(LATENTKIT_HAS_AVX512_BF16_GEMM)
  const bool compiled = simd::cpu_levels().avx512_bf16;
#else
  const bool compiled = false;
#endif
  if (compiled && (choice == simd::KernelChoice::automatic || choice == simd::KernelChoice::compiled_in))
    return Bf16DotPath::compiled_in;
  return simd::library_bf16_dot() ? Bf16DotPath::library : Bf16DotPath::none;
}

[[noreturn]] inline void no_bf16_dot(const char* where) {
  throw Error(std::string(where) + ": no AVX512-BF16 kernel runs here (" +
              (simd::cpu_levels().avx512_bf16 ? "this build has none: compile with -march=native or link latentkit::kernels"
                                              : "this CPU has no AVX512-BF16") +
              "); gemm() with bf16 weights widens them instead");
}
}  // namespace gemm_kernel

/// Whether gemm_bf16_dot runs on this CPU in this build (compiled in, or from the kernel library).
inline bool bf16_dot_available() { return gemm_kernel::bf16_dot_path() != gemm_kernel::Bf16DotPath::none; }

/// Weights (the right operand of gemm_bf16_dot) packed once into vdpbf16ps pair panels.
class PackedBf16Weights {
 public:
  PackedBf16Weights() = default;
  index_t rows() const noexcept { return k_; }  // K
  index_t cols() const noexcept { return n_; }  // N
  const std::uint16_t* data() const noexcept { return reinterpret_cast<const std::uint16_t*>(storage_.get()); }

  /// Packs op(B) [K x N] (element (k, j) at b[k * ldb + j], or b[j * ldb + k] when transposed).
  static PackedBf16Weights pack(Transpose trans_b, index_t k, index_t n, const bf16* b, index_t ldb) {
    using namespace gemm_kernel;
    gemm_kernel::detail::check_extents(0, n, k, "pack_weights_b_bf16_dot");
    const bool tb = trans_b == Transpose::yes;
    if (k > 0 && n > 0) gemm_kernel::detail::check_leading("pack_weights_b_bf16_dot", "ldb", ldb, tb ? k : n);
    const Bf16DotPath path = bf16_dot_path();
    if (path == Bf16DotPath::none) no_bf16_dot("pack_weights_b_bf16_dot");
    PackedBf16Weights w;
    w.k_ = k, w.n_ = n;
    // Every slice but the last is KC (even) long; the last is padded to whole pairs: 2 * ceil(k / 2) rows.
    const index_t padded_n = (n + Bf16DotLayout::nr - 1) / Bf16DotLayout::nr * Bf16DotLayout::nr;
    const index_t elements = padded_n * 2 * ((k + 1) / 2);
    w.storage_ = AlignedFloats((elements + 1) / 2);
    auto* out = reinterpret_cast<std::uint16_t*>(w.storage_.get());
    const StridedMatrix<bf16> bm{b, k, n, tb ? 1 : ldb, tb ? ldb : 1};
#if defined(LATENTKIT_HAS_AVX512_BF16_GEMM)
    if (path == Bf16DotPath::compiled_in) {
      bf16_dot_pack(bm, out);
      return w;
    }
#endif
    simd::library_bf16_dot()->pack(to_table(bm), out);
    return w;
  }

 private:
  index_t k_ = 0, n_ = 0;
  gemm_kernel::AlignedFloats storage_;
};

/// Packs bf16 weights for gemm_bf16_dot: a linear layer's W [out, in] is
/// pack_weights_b_bf16_dot(Transpose::yes, in, out, W, in).
inline PackedBf16Weights pack_weights_b_bf16_dot(Transpose trans_b, index_t k, index_t n, const bf16* b, index_t ldb) {
  return PackedBf16Weights::pack(trans_b, k, n, b, ldb);
}

namespace gemm_kernel::detail {
inline StridedMatrix<float> checked_bf16_dot_a(Transpose trans_a, index_t m, index_t k, const float* a, index_t lda,
                                               index_t n, index_t ldc) {
  check_extents(m, n, k, "gemm_bf16_dot");
  const bool ta = trans_a == Transpose::yes;
  if (k > 0 && m > 0) check_leading("gemm_bf16_dot", "lda", lda, ta ? m : k);
  if (m > 0 && n > 0) check_leading("gemm_bf16_dot", "ldc", ldc, n);
  return {a, m, k, ta ? 1 : lda, ta ? lda : 1};
}
}  // namespace gemm_kernel::detail

/// C[M x N] = alpha * bf16(op(A)) * op(B) + beta * C: op(A) float [M x K] rounded to bf16 while packed, op(B)
/// bf16 [K x N] (a linear layer's W [N, K] is op(B) with Transpose::yes). C is not read when beta == 0.
inline void gemm_bf16_dot(Transpose trans_a, Transpose trans_b, index_t m, index_t n, index_t k, float alpha,
                          const float* a, index_t lda, const bf16* b, index_t ldb, float beta, float* c, index_t ldc) {
  using namespace gemm_kernel;
  const StridedMatrix<float> am = gemm_kernel::detail::checked_bf16_dot_a(trans_a, m, k, a, lda, n, ldc);
  const bool tb = trans_b == Transpose::yes;
  if (k > 0 && n > 0) gemm_kernel::detail::check_leading("gemm_bf16_dot", "ldb", ldb, tb ? k : n);
  const Bf16DotPath path = bf16_dot_path();
  if (path == Bf16DotPath::none) no_bf16_dot("gemm_bf16_dot");
  if (m == 0 || n == 0) return;
  const StridedMatrix<bf16> bm{b, k, n, tb ? 1 : ldb, tb ? ldb : 1};
#if defined(LATENTKIT_HAS_AVX512_BF16_GEMM)
  if (path == Bf16DotPath::compiled_in) return bf16_dot_gemm(alpha, am, bm, beta, c, ldc);
#endif
  simd::library_bf16_dot()->gemm(alpha, to_table(am), to_table(bm), beta, c, ldc);
}

/// The same with B packed once by pack_weights_b_bf16_dot (N and K are the packed matrix's).
inline void gemm_bf16_dot(Transpose trans_a, index_t m, float alpha, const float* a, index_t lda,
                          const PackedBf16Weights& b, float beta, float* c, index_t ldc) {
  using namespace gemm_kernel;
  const index_t n = b.cols(), k = b.rows();
  const StridedMatrix<float> am = gemm_kernel::detail::checked_bf16_dot_a(trans_a, m, k, a, lda, n, ldc);
  const Bf16DotPath path = bf16_dot_path();
  if (path == Bf16DotPath::none) no_bf16_dot("gemm_bf16_dot");
  if (m == 0 || n == 0) return;
#if defined(LATENTKIT_HAS_AVX512_BF16_GEMM)
  if (path == Bf16DotPath::compiled_in) return bf16_dot_gemm_packed(alpha, am, b.data(), k, n, beta, c, ldc);
#endif
  simd::library_bf16_dot()->gemm_packed(alpha, to_table(am), b.data(), k, n, beta, c, ldc);
}

LATENTKIT_NAMESPACE_END
