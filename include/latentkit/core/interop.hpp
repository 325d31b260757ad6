// Zero-copy bridges between latentkit tensors and xtensor / Eigen, both ways.
//
//  latentkit -> xtensor: as_xarray(view) (any rank) and as_xtensor<N>(view) (rank N) adapt the memory with the
//                        view's shape and strides (xt::adapt, no ownership): writes go to latentkit memory.
//  latentkit -> Eigen:   as_eigen_vector(view) (rank 1) and as_eigen_matrix(view) (rank 2, row-major, any strides,
//                        so a transposed view is the transposed matrix) are Eigen::Map objects.
//  xtensor / Eigen -> latentkit: as_tensor_view(container) gives a TensorView of the same memory (shape and element
//                        strides copied; const containers give TensorView<const T>).
// Nothing here owns memory: the source must outlive what is made from it.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <xtensor/xadapt.hpp>

#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN

namespace detail {
/// Elements between the first and one past the last addressable element of a view (what xt::adapt must cover).
template <class T>
std::size_t span_size(const TensorView<T>& v) {
  if (v.numel() == 0) return 0;
  index_t last = 0;
  for (int a = 0; a < v.rank(); ++a) {
    if (v.strides()[a] < 0) throw ShapeError("negative stride in a view of shape " + v.shape().str());
    last += (v.shape()[a] - 1) * v.strides()[a];
  }
  return static_cast<std::size_t>(last + 1);
}
/// xtensor's convention: a size-1 axis has stride 0 (its broadcasting relies on it).
template <class T>
index_t xt_stride(const TensorView<T>& v, int a) {
  return v.shape()[a] == 1 ? 0 : v.strides()[a];
}
}  // namespace detail

/// An xtensor expression (dynamic rank) over the view's memory, with its shape and strides.
template <class T>
auto as_xarray(TensorView<T> v) {
  std::vector<std::size_t> shape(static_cast<std::size_t>(v.rank()));
  std::vector<std::ptrdiff_t> strides(shape.size());
  for (int a = 0; a < v.rank(); ++a) {
    shape[static_cast<std::size_t>(a)] = static_cast<std::size_t>(v.shape()[a]);
    strides[static_cast<std::size_t>(a)] = static_cast<std::ptrdiff_t>(detail::xt_stride(v, a));
  }
  return xt::adapt(v.data(), detail::span_size(v), xt::no_ownership(), std::move(shape), std::move(strides));
}
template <class T> auto as_xarray(Tensor<T>& t) { return as_xarray(t.view()); }
template <class T> auto as_xarray(const Tensor<T>& t) { return as_xarray(t.view()); }

/// An xtensor expression of fixed rank N over the view's memory (ShapeError when the rank differs).
template <std::size_t N, class T>
auto as_xtensor(TensorView<T> v) {
  if (v.rank() != static_cast<int>(N))
    throw ShapeError("as_xtensor<" + std::to_string(N) + ">: the view has shape " + v.shape().str());
  std::array<std::size_t, N> shape{};
  std::array<std::ptrdiff_t, N> strides{};
  for (std::size_t a = 0; a < N; ++a) {
    shape[a] = static_cast<std::size_t>(v.shape()[static_cast<int>(a)]);
    strides[a] = static_cast<std::ptrdiff_t>(detail::xt_stride(v, static_cast<int>(a)));
  }
  return xt::adapt(v.data(), detail::span_size(v), xt::no_ownership(), shape, strides);
}
template <std::size_t N, class T> auto as_xtensor(Tensor<T>& t) { return as_xtensor<N>(t.view()); }
template <std::size_t N, class T> auto as_xtensor(const Tensor<T>& t) { return as_xtensor<N>(t.view()); }

/// Eigen::Map types for views of T (const T gives read-only maps).
template <class T>
using EigenVectorMap = Eigen::Map<std::conditional_t<std::is_const_v<T>,
                                                     const Eigen::Matrix<std::remove_cv_t<T>, Eigen::Dynamic, 1>,
                                                     Eigen::Matrix<T, Eigen::Dynamic, 1>>,
                                  Eigen::Unaligned, Eigen::InnerStride<Eigen::Dynamic>>;
template <class T>
using EigenMatrixMap =
    Eigen::Map<std::conditional_t<std::is_const_v<T>,
                                  const Eigen::Matrix<std::remove_cv_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                                  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>,
               Eigen::Unaligned, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

/// A rank-1 view as an Eigen column vector (any stride).
template <class T>
EigenVectorMap<T> as_eigen_vector(TensorView<T> v) {
  if (v.rank() != 1) throw ShapeError("as_eigen_vector needs a rank-1 view, got shape " + v.shape().str());
  return EigenVectorMap<T>(v.data(), static_cast<Eigen::Index>(v.shape()[0]),
                           Eigen::InnerStride<Eigen::Dynamic>(static_cast<Eigen::Index>(v.strides()[0])));
}
template <class T> EigenVectorMap<T> as_eigen_vector(Tensor<T>& t) { return as_eigen_vector(t.view()); }
template <class T> EigenVectorMap<const T> as_eigen_vector(const Tensor<T>& t) { return as_eigen_vector(t.view()); }

/// A rank-2 view as a row-major Eigen matrix: outer stride = row stride, inner stride = column stride.
template <class T>
EigenMatrixMap<T> as_eigen_matrix(TensorView<T> v) {
  if (v.rank() != 2) throw ShapeError("as_eigen_matrix needs a rank-2 view, got shape " + v.shape().str());
  return EigenMatrixMap<T>(v.data(), static_cast<Eigen::Index>(v.shape()[0]), static_cast<Eigen::Index>(v.shape()[1]),
                           Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(static_cast<Eigen::Index>(v.strides()[0]),
                                                                         static_cast<Eigen::Index>(v.strides()[1])));
}
template <class T> EigenMatrixMap<T> as_eigen_matrix(Tensor<T>& t) { return as_eigen_matrix(t.view()); }
template <class T> EigenMatrixMap<const T> as_eigen_matrix(const Tensor<T>& t) { return as_eigen_matrix(t.view()); }

/// An xtensor container or adaptor (xarray, xtensor, xt::adapt results) seen as a TensorView, without copying.
template <class E>
  requires requires(E& e) {
    e.data();
    e.data_offset();
    e.shape();
    e.strides();
  }
auto as_tensor_view(E& e) {
  using T = std::remove_pointer_t<decltype(e.data())>;
  static_assert(Element<T>, "the container's element type is not a latentkit element type");
  Dims shape, strides;
  const int rank = static_cast<int>(e.shape().size());
  if (rank > max_rank) throw ShapeError("an xtensor expression of rank " + std::to_string(rank) + " exceeds max_rank");
  for (int a = 0; a < rank; ++a) {
    const auto stride = static_cast<index_t>(e.strides()[static_cast<std::size_t>(a)]);
    if (stride < 0) throw ShapeError("an xtensor expression with a negative stride cannot be a TensorView");
    shape.push_back(static_cast<index_t>(e.shape()[static_cast<std::size_t>(a)]));
    strides.push_back(stride);
  }
  return TensorView<T>(e.data() + e.data_offset(), shape, strides);
}

/// An Eigen matrix, vector or Map seen as a TensorView: rank 1 for vectors, else rank 2 [rows, cols].
template <class Derived>
  requires requires(Derived& d) {
    d.data();
    d.innerStride();
    d.outerStride();
  }
auto as_tensor_view(Eigen::DenseBase<Derived>& m) {
  Derived& d = m.derived();
  using T = std::remove_pointer_t<decltype(d.data())>;
  const auto inner = static_cast<index_t>(d.innerStride()), outer = static_cast<index_t>(d.outerStride());
  if constexpr (Derived::IsVectorAtCompileTime) {
    return TensorView<T>(d.data(), Dims{static_cast<index_t>(d.size())}, Dims{inner});
  } else {
    const Dims shape{static_cast<index_t>(d.rows()), static_cast<index_t>(d.cols())};
    return Derived::IsRowMajor ? TensorView<T>(d.data(), shape, Dims{outer, inner})
                               : TensorView<T>(d.data(), shape, Dims{inner, outer});
  }
}
template <class Derived>
  requires requires(const Derived& d) {
    d.data();
    d.innerStride();
    d.outerStride();
  }
auto as_tensor_view(const Eigen::DenseBase<Derived>& m) {
  const Derived& d = m.derived();
  using T = std::remove_pointer_t<decltype(d.data())>;
  using CT = const std::remove_cv_t<T>;
  const auto inner = static_cast<index_t>(d.innerStride()), outer = static_cast<index_t>(d.outerStride());
  if constexpr (Derived::IsVectorAtCompileTime) {
    return TensorView<CT>(d.data(), Dims{static_cast<index_t>(d.size())}, Dims{inner});
  } else {
    const Dims shape{static_cast<index_t>(d.rows()), static_cast<index_t>(d.cols())};
    return Derived::IsRowMajor ? TensorView<CT>(d.data(), shape, Dims{outer, inner})
                               : TensorView<CT>(d.data(), shape, Dims{inner, outer});
  }
}

LATENTKIT_NAMESPACE_END
