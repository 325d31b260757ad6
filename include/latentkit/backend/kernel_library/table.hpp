// The compiled kernel library's interface: one table of kernel entry points per instruction set.
//
// latentkit's kernels are templates on an xsimd architecture, compiled into the caller's translation unit for the
// instruction sets its -m/-march flags allow. A portable build (no such flags) would run SSE2 on a CPU with
// AVX-512. The kernel library (src/kernel_library/, target latentkit::kernels) compiles the same templates once
// more per x86-64 level (-march=x86-64-v3: AVX2+FMA; -march=x86-64-v4: AVX-512) and hands each level's entry
// points to the header code through a Table; backend/kernel_library/selection.hpp picks the table at run time
// from CPUID.
//
// Everything here is plain data and function pointers, outside the ABI-tagged namespace on purpose: each
// library translation unit has its own copy of latentkit's types (LATENTKIT_ABI_ISA in config.hpp), so what
// crosses the boundary must be types that mean the same on both sides.
#pragma once
#include <cstdint>

namespace latentkit::kernel_library {

using extent = std::int64_t;

/// Element type of a GEMM operand.
enum class Element : int { f32, bf16, f16 };

/// A strided matrix: element (r, c) at data[r * row_stride + c * col_stride], of type `element`.
struct Matrix {
  const void* data;
  Element element;
  extent rows, cols, row_stride, col_stride;
};

/// A matrix packed into micro-kernel panels (gemm_kernel::PrepackedLayout and its storage).
struct Packed {
  const float* data;
  extent extent_, depth;  // M or N (the panel axis), and K
  int panel_width;        // MR or NR
  extent kc;              // the K slice it was packed for
};

/// The micro-tile and cache blocks of a table's f32 GEMM (gemm_kernel::BlockingInfo).
struct Blocking {
  int mr, nr;
  extent mc, kc, nc;
};

/// A 4-D float view (attention's [batch, heads, length, dim]); data null: absent.
struct View4 {
  const float* data;
  extent shape[4], strides[4];
};

/// One convolution as an implicit GEMM over every batch item (kernels/conv2d.hpp).
struct Conv2dCall {
  const float* input;
  extent batch, height, width;
  extent input_strides[4];
  extent kernel_h, kernel_w;
  extent stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right;
  extent out_width, pixels;
  const float* bias;  // [O] or null
  float* output;      // [B, O, pixels], item b at output + b * output_item_stride
  extent output_item_stride;
};

/// One fused attention (kernels/attention.hpp), workspace allocated by the caller.
struct AttentionCall {
  View4 q, k, v, mask;
  float* out;
  extent out_shape[4], out_strides[4];
  float scale;
  bool causal;
  float* workspace;
  int threads;
};

/// The kernels of one instruction-set level. Entry points may throw std::bad_alloc (their packing buffers).
struct Table {
  const char* level;  // "x86-64-v4"
  const char* arch;   // the xsimd architecture its kernels are instantiated for: "avx512bw"
  unsigned arch_version;  // that architecture's xsimd version number (ordering only)
  Blocking blocking;

  /// C = alpha * A * B + beta * C (row stride ldc, unit column stride).
  void (*gemm)(float alpha, const Matrix& a, const Matrix& b, float beta, float* c, extent ldc);
  /// Packs `m` (the A operand when `operand_a`, else B) into `out` with the layout `packed` describes.
  void (*pack)(bool operand_a, const Matrix& m, const Packed& packed, float* out);
  /// C = alpha * A * packed(B) + beta * C.
  void (*gemm_packed_b)(float alpha, const Matrix& a, const Packed& b, float beta, float* c, extent ldc);
  /// C = alpha * packed(A) * B + beta * C.
  void (*gemm_packed_a)(float alpha, const Packed& a, const Matrix& b, float beta, float* c, extent ldc);
  /// output = conv(input, packed weights [O, C*kh*kw]) (+ bias).
  void (*conv2d)(const Packed& weights, const Conv2dCall& call);
  void (*attention)(const AttentionCall& call);
  void (*group_norm)(bool silu, const float* x, float* y, extent batch, extent channels, extent spatial,
                     extent groups, float eps, const float* gamma, const float* beta);
  void (*layer_norm)(const float* x, float* y, extent rows, extent cols, float eps, const float* gamma,
                     const float* beta);
  void (*softmax)(const float* x, float* y, extent rows, extent cols);
  void (*geglu)(const float* x, float* y, extent rows, extent half);
};

/// The AVX512-BF16 vdpbf16ps GEMM (kernels/gemm/bf16_dot.hpp): A float, rounded to bf16 while packed; B bf16.
struct Bf16DotTable {
  const char* arch;  // "avx512bw+avx512bf16"
  void (*gemm)(float alpha, const Matrix& a, const Matrix& b, float beta, float* c, extent ldc);
  /// Packs all of B [K x N] into pair panels (PackedBf16Weights' layout).
  void (*pack)(const Matrix& b, std::uint16_t* out);
  void (*gemm_packed)(float alpha, const Matrix& a, const std::uint16_t* b, extent k, extent n, float beta, float* c,
                      extent ldc);
};

// Defined in the kernel library, one translation unit per level.
const Table& x86_64_v3() noexcept;
const Table& x86_64_v4() noexcept;
const Bf16DotTable& x86_64_v4_bf16() noexcept;  // -march=x86-64-v4 -mavx512bf16

}  // namespace latentkit::kernel_library
