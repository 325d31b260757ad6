// Tensor<T>: an owning, contiguous, 64-byte aligned tensor. Everything shape-related is done through views.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include "latentkit/core/tensor_view.hpp"

LATENTKIT_NAMESPACE_BEGIN

inline constexpr std::size_t tensor_alignment = 64;  // a cache line, and an AVX-512 register

namespace detail {
struct AlignedFree {
  void operator()(void* p) const noexcept { ::operator delete[](p, std::align_val_t{tensor_alignment}); }
};
}  // namespace detail

template <Element T>
class Tensor {
 public:
  using value_type = T;

  Tensor() = default;
  /// Uninitialised storage of `shape` (use zeros()/full() for defined contents).
  explicit Tensor(const Dims& shape) : shape_(shape) {
    const std::size_t n = static_cast<std::size_t>(shape.checked_numel());
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T))
      throw ShapeError("shape " + shape.str() + " needs more bytes than size_t can count");
    if (n) storage_.reset(static_cast<T*>(::operator new[](n * sizeof(T), std::align_val_t{tensor_alignment})));
    if constexpr (!std::is_trivially_default_constructible_v<T>) std::uninitialized_default_construct_n(data(), n);
  }
  static Tensor zeros(const Dims& shape) { return full(shape, T{}); }
  static Tensor full(const Dims& shape, T value) {
    Tensor t(shape);
    std::fill_n(t.data(), t.numel(), value);
    return t;
  }
  /// A contiguous copy of any view.
  template <class U>
    requires std::is_same_v<std::remove_cv_t<U>, T>
  static Tensor copy_of(TensorView<U> src) {
    Tensor t(src.shape());
    T* out = t.data();
    src.for_each([&out](const T& x) { *out++ = x; });
    return t;
  }

  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;
  /// Copies are explicit (clone()) so that large tensors are never duplicated by accident.
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  Tensor clone() const { return copy_of(view()); }

  T* data() noexcept { return storage_.get(); }
  const T* data() const noexcept { return storage_.get(); }
  const Dims& shape() const noexcept { return shape_; }
  Dims strides() const { return contiguous_strides(shape_); }
  int rank() const noexcept { return shape_.rank(); }
  index_t size(int axis) const { return shape_.at(axis); }
  index_t numel() const noexcept { return shape_.numel(); }
  static constexpr DType dtype() noexcept { return dtype_of_v<T>; }

  TensorView<T> view() noexcept { return TensorView<T>(data(), shape_); }
  TensorView<const T> view() const noexcept { return TensorView<const T>(data(), shape_); }
  operator TensorView<T>() noexcept { return view(); }
  operator TensorView<const T>() const noexcept { return view(); }

  template <std::integral... I> T& operator()(I... idx) noexcept { return view()(idx...); }
  template <std::integral... I> const T& operator()(I... idx) const noexcept { return view()(idx...); }

  /// Changes the shape in place (same number of elements; one extent may be -1).
  Tensor& reshape(const Dims& shape) & {
    shape_ = view().reshape(shape).shape();
    return *this;
  }
  Tensor&& reshape(const Dims& shape) && { return std::move(reshape(shape)); }

 private:
  Dims shape_;
  std::unique_ptr<T[], detail::AlignedFree> storage_;
};

/// Copies `src` into `dst` element by element (same element type and shape; either may be strided).
template <class T, class U>
  requires std::is_same_v<std::remove_cv_t<U>, T>
void copy(TensorView<U> src, TensorView<T> dst) {
  if (!(src.shape() == dst.shape())) throw ShapeError("copy from " + src.shape().str() + " to " + dst.shape().str());
  if (src.numel() == 0) return;
  if (src.is_contiguous() && dst.is_contiguous()) {
    std::memcpy(dst.data(), src.data(), static_cast<std::size_t>(src.numel()) * sizeof(T));
  } else if (src.is_contiguous()) {
    const T* in = src.data();
    dst.for_each([&in](T& x) { x = *in++; });
  } else if (dst.is_contiguous()) {
    T* out = dst.data();
    src.for_each([&out](const T& x) { *out++ = x; });
  } else {
    Tensor<T> dense = Tensor<T>::copy_of(src);
    const T* in = dense.data();
    dst.for_each([&in](T& x) { x = *in++; });
  }
}

/// A contiguous copy of a view (use when a kernel needs dense rows).
template <class U>
Tensor<std::remove_cv_t<U>> contiguous(TensorView<U> v) {
  return Tensor<std::remove_cv_t<U>>::copy_of(v);
}

LATENTKIT_NAMESPACE_END
