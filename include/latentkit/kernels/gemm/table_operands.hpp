// GEMM operands to and from the kernel library's plain types (backend/kernel_library/table.hpp): the caller turns
// its StridedMatrix / PrepackedSource into kernel_library::Matrix / Packed, the library turns them back.
#pragma once
#include <type_traits>

#include "latentkit/backend/kernel_library/table.hpp"
#include "latentkit/config/config.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/kernels/gemm/blocking.hpp"
#include "latentkit/kernels/gemm/pack.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace gemm_kernel {

static_assert(std::is_same_v<index_t, kernel_library::extent>, "the table's extents are index_t");

template <GemmOperand T>
constexpr kernel_library::Element element_of() noexcept {
  if constexpr (std::is_same_v<T, float>) return kernel_library::Element::f32;
  else if constexpr (std::is_same_v<T, bf16>) return kernel_library::Element::bf16;
  else return kernel_library::Element::f16;
}

template <GemmOperand T>
kernel_library::Matrix to_table(const StridedMatrix<T>& m) noexcept {
  return {m.data, element_of<T>(), m.rows, m.cols, m.row_stride, m.col_stride};
}
inline kernel_library::Packed to_table(const PrepackedSource& p) noexcept {
  return {p.data, p.layout.extent, p.layout.depth, p.layout.panel_width, p.layout.kc};
}
inline PrepackedSource from_table(const kernel_library::Packed& p) noexcept {
  return {p.data, {p.extent_, p.depth, p.panel_width, p.kc}};
}
inline BlockingInfo from_table(const kernel_library::Blocking& b) noexcept { return {b.mr, b.nr, b.mc, b.kc, b.nc}; }

/// Calls f(StridedMatrix<T>) with the element type `m` names.
template <class F>
decltype(auto) with_matrix(const kernel_library::Matrix& m, F&& f) {
  const auto as = [&](auto* data) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(data)>>;
    return f(StridedMatrix<T>{data, m.rows, m.cols, m.row_stride, m.col_stride});
  };
  switch (m.element) {
    case kernel_library::Element::bf16: return as(static_cast<const bf16*>(m.data));
    case kernel_library::Element::f16: return as(static_cast<const f16*>(m.data));
    default: return as(static_cast<const float*>(m.data));
  }
}

}  // namespace gemm_kernel
LATENTKIT_NAMESPACE_END
