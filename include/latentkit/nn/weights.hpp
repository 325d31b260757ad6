// How a layer keeps its weights for compute: the one policy every layer and model takes at prepare() time.
//
// Loading always writes float32 tensors (the state-dict views that visit_parameters hands out, filled from F32,
// F16 or BF16 files). prepare(WeightOptions) then packs them once into the form the kernels read:
//   f32   float32 panels of the GEMM micro-kernel (exact: the reference numerics);
//   bf16  weights rounded to bf16; linear layers run on the AVX512-BF16 dot-product GEMM (vdpbf16ps: activations
//         rounded to bf16 while packed, float32 accumulation) where the CPU has it; convolutions keep the bf16
//         values widened into float32 panels (same weights, f32 arithmetic).
// With release_unpacked the float32 load targets are dropped after packing, so a model holds one copy of its
// weights. This is also the seam of the later CUDA backend: a device weight holder packs the same tensors.
#pragma once
#include <array>
#include <string_view>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/core/convert.hpp"
#include "latentkit/core/names.hpp"
#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN

enum class WeightType { f32, bf16 };

inline std::string_view weight_type_name(WeightType t) noexcept { return t == WeightType::f32 ? "f32" : "bf16"; }

inline WeightType parse_weight_type(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, WeightType>, 4> names{
      {{"f32", WeightType::f32}, {"fp32", WeightType::f32}, {"bf16", WeightType::bf16}, {"bfloat16", WeightType::bf16}}};
  return lookup_name("weight type", name, names);
}

struct WeightOptions {
  WeightType type = WeightType::f32;
  bool release_unpacked = false;  ///< free the float32 load targets once packed
};

/// The weights rounded to bf16 (round to nearest even): what every layer packs for WeightType::bf16.
inline Tensor<bf16> round_to_bf16(const Tensor<float>& weights) {
  Tensor<bf16> rounded(weights.shape());
  convert(weights.data(), rounded.data(), static_cast<std::size_t>(weights.numel()));
  return rounded;
}

LATENTKIT_NAMESPACE_END
