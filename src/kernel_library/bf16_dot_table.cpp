// The kernel library's vdpbf16ps GEMM: gemm/bf16_dot_kernel.hpp compiled with -march=x86-64-v4 -mavx512bf16
// (LATENTKIT_ABI_ISA=x86_64_v4_bf16), behind a kernel_library::Bf16DotTable.
#if !defined(LATENTKIT_ABI_ISA)
#error "compile bf16_dot_table.cpp through the latentkit_kernels target (it defines LATENTKIT_ABI_ISA)"
#endif

#include "latentkit/backend/kernel_library/table.hpp"
#include "latentkit/kernels/gemm/bf16_dot_kernel.hpp"
#include "latentkit/kernels/gemm/table_operands.hpp"

#if !defined(LATENTKIT_HAS_AVX512_BF16_GEMM)
#error "bf16_dot_table.cpp needs a target with AVX512-BF16 and AVX512-BW"
#endif

namespace {

namespace gk = latentkit::gemm_kernel;
namespace table = latentkit::kernel_library;

/// The matrix `m` as the element type the kernel takes (the caller passes float A and bf16 B, as table.hpp says).
template <class T>
gk::StridedMatrix<T> as(const table::Matrix& m) noexcept {
  return {static_cast<const T*>(m.data), m.rows, m.cols, m.row_stride, m.col_stride};
}

void gemm(float alpha, const table::Matrix& a, const table::Matrix& b, float beta, float* c, table::extent ldc) {
  gk::bf16_dot_gemm(alpha, as<float>(a), as<latentkit::bf16>(b), beta, c, ldc);
}

void pack(const table::Matrix& b, std::uint16_t* out) { gk::bf16_dot_pack(as<latentkit::bf16>(b), out); }

void gemm_packed(float alpha, const table::Matrix& a, const std::uint16_t* b, table::extent k, table::extent n,
                 float beta, float* c, table::extent ldc) {
  gk::bf16_dot_gemm_packed(alpha, as<float>(a), b, k, n, beta, c, ldc);
}

}  // namespace

namespace latentkit::kernel_library {

const Bf16DotTable& x86_64_v4_bf16() noexcept {
  static const Bf16DotTable kernels{"avx512bw+avx512bf16", gemm, pack, gemm_packed};
  return kernels;
}

}  // namespace latentkit::kernel_library
