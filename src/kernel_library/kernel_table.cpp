// One level of the kernel library: latentkit's kernels instantiated for the single xsimd architecture this
// translation unit is compiled for, behind a kernel_library::Table.
//
// CMake compiles this file once per level, with that level's flags and two definitions:
//   LATENTKIT_ABI_ISA    x86_64_v3 / x86_64_v4: names this copy of latentkit's symbols apart (config.hpp)
//   LATENTKIT_LEVEL      the same, the name of the table getter this file defines (table.hpp)
// The entry points have internal linkage; only the getter is visible outside.
#if !defined(LATENTKIT_ABI_ISA) || !defined(LATENTKIT_LEVEL)
#error "compile kernel_table.cpp through the latentkit_kernels target (it defines LATENTKIT_ABI_ISA and LATENTKIT_LEVEL)"
#endif

#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "latentkit/backend/kernel_library/table.hpp"
#include "latentkit/kernels/activation.hpp"
#include "latentkit/kernels/attention.hpp"
#include "latentkit/kernels/conv2d.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/kernels/norm.hpp"

namespace {

namespace lk = latentkit;
namespace gk = latentkit::gemm_kernel;
namespace table = latentkit::kernel_library;

/// The architecture every kernel of this level runs: the best one the level's flags enable.
using Arch = xsimd::default_arch;

#define LATENTKIT_STR_IMPL_(x) #x
#define LATENTKIT_STR_(x) LATENTKIT_STR_IMPL_(x)
constexpr std::string_view level_id = LATENTKIT_STR_(LATENTKIT_LEVEL);
static_assert(level_id != "x86_64_v4" || std::is_same_v<Arch, xsimd::avx512bw>, "x86-64-v4 runs avx512bw");
static_assert(level_id != "x86_64_v3" || std::is_same_v<Arch, xsimd::fma3<xsimd::avx2>>, "x86-64-v3 runs fma3+avx2");

void gemm(float alpha, const table::Matrix& a, const table::Matrix& b, float beta, float* c, table::extent ldc) {
  gk::with_matrix(a, [&](const auto& am) {
    gk::with_matrix(b, [&](const auto& bm) {
      const gk::Workspace ws(am.rows, bm.cols, am.cols, true, true);
      gk::detail::StridedGemm{ws}(Arch{}, alpha, am, bm, beta, c, ldc);
    });
  });
}

void pack(bool operand_a, const table::Matrix& m, const table::Packed& packed, float* out) {
  gk::with_matrix(m, [&](const auto& mm) {
    gk::PackedMatrix::Packer{}(Arch{}, operand_a ? gk::Operand::a : gk::Operand::b, mm, gk::from_table(packed).layout,
                               out);
  });
}

void gemm_packed_b(float alpha, const table::Matrix& a, const table::Packed& b, float beta, float* c, table::extent ldc) {
  gk::with_matrix(a, [&](const auto& am) {
    const gk::Workspace ws(am.rows, b.extent_, am.cols, true, false);
    gk::detail::GemmPackedB{}(Arch{}, alpha, am, gk::from_table(b), beta, c, ldc, ws);
  });
}

void gemm_packed_a(float alpha, const table::Packed& a, const table::Matrix& b, float beta, float* c, table::extent ldc) {
  gk::with_matrix(b, [&](const auto& bm) {
    const gk::Workspace ws(a.extent_, bm.cols, a.depth, false, true);
    gk::detail::GemmPackedA{}(Arch{}, alpha, gk::from_table(a), bm, beta, c, ldc, ws);
  });
}

void conv2d(const table::Packed& weights, const table::Conv2dCall& call) {
  const gk::Workspace ws(weights.extent_, call.pixels, weights.depth, false, true);
  gk::detail::Conv2dBatch{}(Arch{}, gk::from_table(weights), call, ws);
}

void attention(const table::AttentionCall& call) {
  lk::attention_detail::AttentionKernel{}(Arch{}, lk::attention_detail::from_table(call));
}

void group_norm(bool silu, const float* x, float* y, table::extent batch, table::extent channels,
                table::extent spatial, table::extent groups, float eps, const float* gamma, const float* beta) {
  if (silu)
    lk::ops_detail::GroupNormKernel<true>{}(Arch{}, x, y, batch, channels, spatial, groups, eps, gamma, beta);
  else
    lk::ops_detail::GroupNormKernel<false>{}(Arch{}, x, y, batch, channels, spatial, groups, eps, gamma, beta);
}

void layer_norm(const float* x, float* y, table::extent rows, table::extent cols, float eps, const float* gamma,
                const float* beta) {
  lk::ops_detail::LayerNormKernel{}(Arch{}, x, y, rows, cols, eps, gamma, beta);
}

void softmax(const float* x, float* y, table::extent rows, table::extent cols) {
  lk::ops_detail::SoftmaxKernel{}(Arch{}, x, y, rows, cols);
}

void geglu(const float* x, float* y, table::extent rows, table::extent half) {
  lk::ops_detail::GegluKernel{}(Arch{}, x, y, rows, half);
}

table::Blocking blocking() {
  const lk::gemm_kernel::BlockingInfo b = gk::detail::BlockingQuery{}(Arch{});
  return {b.mr, b.nr, b.mc, b.kc, b.nc};
}

table::Table make_table() {
  return {level_id == "x86_64_v4" ? "x86-64-v4" : "x86-64-v3", Arch::name(), Arch::version(), blocking(), gemm, pack,
          gemm_packed_b, gemm_packed_a, conv2d, attention, group_norm, layer_norm, softmax, geglu};
}

}  // namespace

namespace latentkit::kernel_library {

const Table& LATENTKIT_LEVEL() noexcept {
  static const Table kernels = make_table();  // built on first use: no static initialisation order to rely on
  return kernels;
}

}  // namespace latentkit::kernel_library
