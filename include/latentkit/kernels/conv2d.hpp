// 2-D convolution, NCHW, float32 activations, float/bf16/f16 weights [O, C, kh, kw], optional bias [O].
//
// Implemented as an implicit GEMM per batch item: out[o, p] = bias[o] + sum_k W[o, k] * X[k, p] where
// k = (c, dy, dx) and X is the im2col matrix. The weights are the packed A operand (pack once with
// pack_conv2d_weights and reuse), and X's panels are packed straight from the image per KC x NC block
// (conv/im2col_source.hpp): the same micro-kernel and blocking as gemm(), no full-size im2col buffer.
// Any kernel size, stride and (asymmetric) padding: 3x3 stride 1 pad 1, 3x3 stride 2 with the VAE's (0,1,0,1)
// padding and 1x1 are the cases SD uses.
#pragma once
#include <algorithm>
#include <string>

#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/kernel_library/table.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/core/tensor_view.hpp"
#include "latentkit/kernels/conv/geometry.hpp"
#include "latentkit/kernels/conv/im2col_source.hpp"
#include "latentkit/kernels/gemm.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Convolution weights packed once as the GEMM's A operand ([O, C*kh*kw] in micro-kernel panels).
struct PackedConv2dWeights {
  PackedMatrix matrix;
  index_t out_channels = 0, in_channels = 0, kernel_h = 0, kernel_w = 0;
};

/// Packs weights [O, C, kh, kw] (any strides; float, bf16 or f16, widened to float here).
template <gemm_kernel::GemmOperand T>
PackedConv2dWeights pack_conv2d_weights(TensorView<const T> weight) {
  if (weight.rank() != 4)
    throw ShapeError("conv2d: weights must be [O, C, kh, kw], got " + weight.shape().str());
  PackedConv2dWeights w{{}, weight.size(0), weight.size(1), weight.size(2), weight.size(3)};
  if (w.out_channels < 1 || w.in_channels < 1 || w.kernel_h < 1 || w.kernel_w < 1)
    throw ShapeError("conv2d: weights " + weight.shape().str() + " have an empty axis");
  const index_t k = w.in_channels * w.kernel_h * w.kernel_w;
  // Packing reads W as an [O, K] matrix with k = (c, dy, dx): a non-contiguous view is copied first.
  if (weight.is_contiguous()) {
    w.matrix = gemm_kernel::pack_matrix(gemm_kernel::Operand::a,
                                        gemm_kernel::StridedMatrix<T>{weight.data(), w.out_channels, k, k, 1});
  } else {
    const Tensor<T> dense = contiguous(weight);
    w.matrix = gemm_kernel::pack_matrix(gemm_kernel::Operand::a,
                                        gemm_kernel::StridedMatrix<T>{dense.data(), w.out_channels, k, k, 1});
  }
  return w;
}

namespace gemm_kernel::detail {

/// Every batch item: out[O, pixels] = bias + packed weights * im2col(image). The call is the kernel library's
/// plain description (backend/kernel_library/table.hpp), so both sides run this same code.
struct Conv2dBatch {
  template <class Arch>
  void operator()(Arch arch, const PrepackedSource& weights, const kernel_library::Conv2dCall& call,
                  const Workspace& ws) const noexcept {
    const Conv2dGeometry geometry{call.stride_h, call.stride_w, call.pad_top, call.pad_bottom, call.pad_left, call.pad_right};
    const index_t out_channels = weights.layout.extent, pixels = call.pixels;
    for (index_t b = 0; b < call.batch; ++b) {
      float* out = call.output + b * call.output_item_stride;
      if (call.bias) {  // C starts as the bias and the GEMM accumulates onto it (beta = 1): one rounding per output
        LATENTKIT_OMP(parallel for schedule(static))
        for (index_t o = 0; o < out_channels; ++o) std::fill(out + o * pixels, out + (o + 1) * pixels, call.bias[o]);
      }
      const Im2colSource<GemmBlocking<Arch>::nr> source{call.input + b * call.input_strides[0], call.height, call.width,
                                                        call.input_strides[1], call.input_strides[2],
                                                        call.input_strides[3], call.kernel_h, call.kernel_w, geometry,
                                                        call.out_width};
      run_blocked(arch, out_channels, pixels, weights.layout.depth, 1.0f, weights, source, call.bias ? 1.0f : 0.0f,
                  out, pixels, ws);
    }
  }
};

}  // namespace gemm_kernel::detail

/// output[B, O, Ho, Wo] = conv(input[B, C, H, W], weights) + bias. `bias` may be an empty view (no bias).
/// The input may have any strides; each output item must be contiguous ([O, Ho, Wo] row-major).
inline void conv2d(TensorView<const float> input, const PackedConv2dWeights& weights, TensorView<const float> bias,
                   const Conv2dGeometry& geometry, TensorView<float> output) {
  const auto describe = [&] { return " (input " + input.shape().str() + ", weights [" + std::to_string(weights.out_channels) + ", " +
                                     std::to_string(weights.in_channels) + ", " + std::to_string(weights.kernel_h) + ", " +
                                     std::to_string(weights.kernel_w) + "], output " + output.shape().str() + ")"; };
  if (input.rank() != 4 || output.rank() != 4) throw ShapeError("conv2d: input and output must be NCHW" + describe());
  if (input.size(1) != weights.in_channels)
    throw ShapeError("conv2d: input has " + std::to_string(input.size(1)) + " channels, weights expect " +
                     std::to_string(weights.in_channels) + describe());
  const index_t batch = input.size(0), height = input.size(2), width = input.size(3);
  const index_t out_h = geometry.output_extent(height, weights.kernel_h, true);
  const index_t out_w = geometry.output_extent(width, weights.kernel_w, false);
  if (output.size(0) != batch || output.size(1) != weights.out_channels || output.size(2) != out_h || output.size(3) != out_w)
    throw ShapeError("conv2d: output must be [" + std::to_string(batch) + ", " + std::to_string(weights.out_channels) +
                     ", " + std::to_string(out_h) + ", " + std::to_string(out_w) + "]" + describe());
  if (output.stride(3) != 1 || output.stride(2) != out_w || output.stride(1) != out_h * out_w)
    throw ShapeError("conv2d: each output item must be contiguous" + describe());
  const bool has_bias = bias.rank() != 0 && bias.numel() != 0;
  if (has_bias && (bias.rank() != 1 || bias.size(0) != weights.out_channels))
    throw ShapeError("conv2d: bias must be [" + std::to_string(weights.out_channels) + "], got " + bias.shape().str());
  // The kernel reads the bias as a plain array: a strided one (rare) is copied once per call.
  const Tensor<float> bias_copy = has_bias && bias.stride(0) != 1 ? contiguous(bias) : Tensor<float>();
  const float* bias_data = !has_bias ? nullptr : bias.stride(0) == 1 ? bias.data() : bias_copy.data();
  const index_t pixels = out_h * out_w;
  weights.matrix.check_for(gemm_kernel::Operand::a, gemm_kernel::running_blocking());
  const kernel_library::Conv2dCall call{input.data(), batch, height, width,
                                        {input.stride(0), input.stride(1), input.stride(2), input.stride(3)},
                                        weights.kernel_h, weights.kernel_w, geometry.stride_h, geometry.stride_w,
                                        geometry.pad_top, geometry.pad_bottom, geometry.pad_left, geometry.pad_right,
                                        out_w, pixels, bias_data, output.data(),
                                        output.stride(0)};
  if (batch == 0) return;
  if (const kernel_library::Table* library = simd::library_kernels())
    return library->conv2d(gemm_kernel::to_table(weights.matrix.source()), call);
  const gemm_kernel::Workspace ws(weights.out_channels, pixels, weights.matrix.cols(), false, true);
  simd::dispatch(gemm_kernel::detail::Conv2dBatch{})(weights.matrix.source(), call, ws);
}

/// conv2d into a new contiguous tensor [B, O, Ho, Wo], packing the weights for this call.
template <gemm_kernel::GemmOperand T>
Tensor<float> conv2d(TensorView<const float> input, TensorView<const T> weight, TensorView<const float> bias,
                     const Conv2dGeometry& geometry) {
  const PackedConv2dWeights packed = pack_conv2d_weights(weight);
  if (input.rank() != 4) throw ShapeError("conv2d: input must be NCHW, got " + input.shape().str());
  const index_t out_h = geometry.output_extent(input.size(2), packed.kernel_h, true);
  const index_t out_w = geometry.output_extent(input.size(3), packed.kernel_w, false);
  Tensor<float> output({input.size(0), packed.out_channels, out_h, out_w});
  conv2d(input, packed, bias, geometry, output.view());
  return output;
}

LATENTKIT_NAMESPACE_END
