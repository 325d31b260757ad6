// TensorView<T>: a non-owning window on memory: data pointer + shape + element strides (CuTe's "storage plus
// layout"). Views never copy; slicing, permuting and broadcasting only make new layouts over the same storage.
#pragma once
#include <cassert>
#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>

#include "latentkit/core/dtype.hpp"
#include "latentkit/core/shape.hpp"

LATENTKIT_NAMESPACE_BEGIN

template <class T>
class TensorView {
 public:
  using value_type = std::remove_cv_t<T>;
  using element_type = T;

  constexpr TensorView() noexcept = default;
  /// A contiguous row-major view of `shape` at `data`.
  constexpr TensorView(T* data, const Dims& shape) : data_(data), shape_(shape), strides_(contiguous_strides(shape)) {}
  constexpr TensorView(T* data, const Dims& shape, const Dims& strides) : data_(data), shape_(shape), strides_(strides) {
    if (shape.rank() != strides.rank())
      throw ShapeError("shape " + shape.str() + " and strides " + strides.str() + " differ in rank");
  }
  /// A view of T converts to a view of const T.
  template <class U>
    requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
  constexpr TensorView(const TensorView<U>& other) noexcept
      : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr const Dims& shape() const noexcept { return shape_; }
  constexpr const Dims& strides() const noexcept { return strides_; }
  constexpr int rank() const noexcept { return shape_.rank(); }
  constexpr index_t size(int axis) const { return shape_.at(axis); }
  constexpr index_t stride(int axis) const { return strides_.at(axis); }
  constexpr index_t numel() const noexcept { return shape_.numel(); }
  static constexpr DType dtype() noexcept { return dtype_of_v<value_type>; }

  /// True when the elements are laid out densely in row-major order (size-1 axes may have any stride).
  constexpr bool is_contiguous() const noexcept {
    index_t expected = 1;
    for (int i = rank() - 1; i >= 0; --i) {
      if (shape_[i] != 1 && strides_[i] != expected) return false;
      expected *= shape_[i];
    }
    return true;
  }

  /// Element access by coordinates (unchecked in release builds).
  template <std::integral... I>
  constexpr T& operator()(I... idx) const noexcept {
    assert(sizeof...(I) == static_cast<std::size_t>(rank()));
    index_t offset = 0;
    int axis = 0;
    ((offset += static_cast<index_t>(idx) * strides_[axis++]), ...);
    return data_[offset];
  }
  /// Element access by a coordinate list, bounds-checked.
  T& at(const Dims& idx) const {
    if (idx.rank() != rank()) throw ShapeError("index " + idx.str() + " has the wrong rank for shape " + shape_.str());
    index_t offset = 0;
    for (int i = 0; i < rank(); ++i) {
      if (idx[i] < 0 || idx[i] >= shape_[i]) throw ShapeError("index " + idx.str() + " out of bounds for shape " + shape_.str());
      offset += idx[i] * strides_[i];
    }
    return data_[offset];
  }

  /// Elements [begin, end) with `step` along `axis` (negative begin/end count from the end, as in Python).
  TensorView slice(int axis, index_t begin, index_t end, index_t step = 1) const {
    const int a = normalize_axis(axis);
    const index_t n = shape_[a];
    if (begin < 0) begin += n;
    if (end < 0) end += n;
    if (step <= 0 || begin < 0 || end > n || begin > end)
      throw ShapeError("slice [" + std::to_string(begin) + ":" + std::to_string(end) + ":" + std::to_string(step) +
                       "] is out of range for axis " + std::to_string(axis) + " of shape " + shape_.str());
    TensorView v = *this;
    v.data_ = data_ + begin * strides_[a];
    v.shape_[a] = (end - begin + step - 1) / step;
    v.strides_[a] = strides_[a] * step;
    return v;
  }
  /// The sub-tensor at `index` along `axis` (rank drops by one).
  TensorView select(int axis, index_t index) const {
    const int a = normalize_axis(axis);
    if (index < 0) index += shape_[a];
    if (index < 0 || index >= shape_[a])
      throw ShapeError("index " + std::to_string(index) + " out of range for axis " + std::to_string(axis) + " of shape " + shape_.str());
    TensorView v = *this;
    v.data_ = data_ + index * strides_[a];
    v.shape_.erase(a);
    v.strides_.erase(a);
    return v;
  }
  /// Reorders the axes: result axis i is this view's axis `order[i]`.
  TensorView permute(const Dims& order) const {
    if (order.rank() != rank()) throw ShapeError("permutation " + order.str() + " does not match rank " + std::to_string(rank()));
    bool seen[max_rank] = {};
    TensorView v = *this;
    for (int i = 0; i < rank(); ++i) {
      const index_t a = order[i];
      if (a < 0 || a >= rank() || seen[a]) throw ShapeError(order.str() + " is not a permutation of the axes of " + shape_.str());
      seen[a] = true;
      v.shape_[i] = shape_[static_cast<int>(a)];
      v.strides_[i] = strides_[static_cast<int>(a)];
    }
    return v;
  }
  /// Swaps two axes (the last two by default: a matrix transpose).
  TensorView transpose(int a = -2, int b = -1) const {
    Dims order = Dims::filled(rank(), 0);
    for (int i = 0; i < rank(); ++i) order[i] = i;
    const int x = normalize_axis(a), y = normalize_axis(b);
    order[x] = y;
    order[y] = x;
    return permute(order);
  }
  /// Same elements, new shape; needs a contiguous view (call contiguous() first otherwise). One extent may be -1.
  TensorView reshape(Dims shape) const {
    int infer = -1;
    index_t known = 1;
    for (int i = 0; i < shape.rank(); ++i) {
      if (shape[i] == -1 && infer < 0) infer = i;
      else if (shape[i] < 0) throw ShapeError("invalid target shape " + shape.str());
      else known *= shape[i];
    }
    if (infer >= 0) shape[infer] = known == 0 ? 0 : numel() / known;
    if (shape.numel() != numel())
      throw ShapeError("cannot reshape " + shape_.str() + " (" + std::to_string(numel()) + " elements) to " + shape.str());
    if (!is_contiguous()) throw ShapeError("reshape of a non-contiguous view of shape " + shape_.str() + "; copy it first");
    return TensorView(data_, shape);
  }
  /// A view of `shape` that repeats this one along new or size-1 axes (stride 0), NumPy rules.
  TensorView broadcast_to(const Dims& shape) const {
    if (shape.rank() < rank()) throw ShapeError("cannot broadcast " + shape_.str() + " to lower rank " + shape.str());
    const int lead = shape.rank() - rank();
    Dims strides = Dims::filled(shape.rank(), 0);
    for (int i = 0; i < rank(); ++i) {
      if (shape_[i] == shape[lead + i]) strides[lead + i] = strides_[i];
      else if (shape_[i] == 1) strides[lead + i] = 0;
      else throw ShapeError("cannot broadcast " + shape_.str() + " to " + shape.str());
    }
    return TensorView(data_, shape, strides);
  }
  /// Inserts a size-1 axis at `axis`.
  TensorView unsqueeze(int axis) const {
    const int a = axis < 0 ? axis + rank() + 1 : axis;
    if (a < 0 || a > rank()) throw ShapeError("unsqueeze axis " + std::to_string(axis) + " out of range for " + shape_.str());
    TensorView v = *this;
    v.shape_.insert(a, 1);
    v.strides_.insert(a, a < rank() ? strides_[a] * shape_[a] : 1);
    return v;
  }

  /// Calls f(element&) for every element in row-major order of the view's coordinates.
  template <class F>
  void for_each(F&& f) const {
    if (numel() == 0) return;
    if (is_contiguous()) {
      for (index_t i = 0, n = numel(); i < n; ++i) f(data_[i]);
      return;
    }
    Dims idx = Dims::filled(rank(), 0);
    index_t offset = 0;
    for (index_t count = numel(); count > 0; --count) {
      f(data_[offset]);
      for (int a = rank() - 1; a >= 0; --a) {  // odometer increment
        if (++idx[a] < shape_[a]) { offset += strides_[a]; break; }
        offset -= (shape_[a] - 1) * strides_[a];
        idx[a] = 0;
      }
    }
  }

 private:
  int normalize_axis(int axis) const {
    const int a = axis < 0 ? axis + rank() : axis;
    if (a < 0 || a >= rank()) throw ShapeError("axis " + std::to_string(axis) + " out of range for shape " + shape_.str());
    return a;
  }

  T* data_ = nullptr;
  Dims shape_;
  Dims strides_;
};

template <class T> TensorView(T*, const Dims&) -> TensorView<T>;
template <class T> TensorView(T*, const Dims&, const Dims&) -> TensorView<T>;

/// Anything that can be seen as a TensorView.
template <class V>
concept TensorLike = requires(const V& v) {
  { v.shape() } -> std::convertible_to<Dims>;
  v.data();
};

LATENTKIT_NAMESPACE_END
