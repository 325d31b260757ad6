// Reductions over float/double tensors: sum, mean, dot, norm2, max, min, max_abs_diff, and sum/mean along one axis.
//
// Reproducibility: the elements are cut into fixed blocks of reduce_block elements (boundaries depend only on the
// shape, never on the number of threads); each block is reduced by the same SIMD code in a fixed order (four batch
// accumulators, combined pairwise, then a horizontal add), and the block results are added in block order by one
// thread. The result is therefore bit-identical for any thread count (on a given build and CPU architecture).
//
// Precision: sums, means, dot products and norms accumulate in double for float AND double inputs. For float
// inputs every product x*y and square x*x is exact in double, so the only rounding is the additions; the error of
// a sum of n terms is at most (n-1) * 2^-53 * sum|terms| (any order of addition), far below float resolution.
// max, min are exact; max_abs_diff computes |a - b| in double.
// NaN: sum/mean/dot/norm2 follow IEEE (NaN in, NaN out); max, min and max_abs_diff return NaN when any element
// (or difference) is NaN, rather than the instructions' "ignore one NaN operand" behaviour.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "latentkit/backend/simd/fma.hpp"
#include "latentkit/core/elementwise.hpp"

LATENTKIT_NAMESPACE_BEGIN

inline constexpr index_t reduce_block = 4096;  // elements per partial result

namespace detail {

inline constexpr index_t reduce_parallel_min = index_t{1} << 15;

enum class ReduceKind { sum, sum_squares, dot, max, min, max_abs_diff };

/// N same-shape operands seen as `count` segments of `length` elements each: either all elements in row-major
/// order (axis < 0, count 1) or the lines along `axis` (one per output element).
template <class T, std::size_t N>
struct ReduceSegments {
  std::array<TensorView<const T>, N> views;
  int axis = -1;
  index_t count = 1, length = 0;
  Dims outer_shape;   // the shape without `axis`
  std::array<Dims, N> strides_without_axis;  // per operand: operands share a shape, not necessarily strides

  /// Elements [start, start + n) of segment m of operand k, gathered into buf unless they are already contiguous.
  const T* fetch(std::size_t k, index_t m, index_t start, index_t n, T* buf) const {
    const TensorView<const T>& v = views[k];
    if (axis < 0) {
      if (v.is_contiguous()) return v.data() + start;
      gather_flat(v, start, n, buf);
      return buf;
    }
    index_t offset = 0, rest = m;
    for (int a = outer_shape.rank() - 1; a >= 0; --a) {
      offset += (rest % outer_shape[a]) * strides_without_axis[k][a];
      rest /= outer_shape[a];
    }
    const index_t stride = v.strides()[axis];
    const T* p = v.data() + offset + start * stride;
    if (stride == 1) return p;
    for (index_t i = 0; i < n; ++i) buf[i] = p[i * stride];
    return buf;
  }

  /// Row-major elements [start, start + n) of a strided view.
  static void gather_flat(const TensorView<const T>& v, index_t start, index_t n, T* buf) {
    const int r = v.rank();
    Dims idx = Dims::filled(r, 0);
    index_t offset = 0, rest = start;
    for (int a = r - 1; a >= 0; --a) {
      idx[a] = rest % v.shape()[a];
      rest /= v.shape()[a];
      offset += idx[a] * v.strides()[a];
    }
    for (index_t i = 0; i < n; ++i) {
      buf[i] = v.data()[offset];
      for (int a = r - 1; a >= 0; --a) {  // odometer increment
        if (++idx[a] < v.shape()[a]) { offset += v.strides()[a]; break; }
        offset -= (v.shape()[a] - 1) * v.strides()[a];
        idx[a] = 0;
      }
    }
  }
};

/// One block of a sum-like reduction, in double, fixed order.
template <class Arch, ReduceKind Kind, class T, std::size_t N>
double sum_block(const std::array<const T*, N>& p, std::size_t n) {
  using D = xsimd::batch<double, Arch>;
  constexpr std::size_t width = D::size;
  // Adding -0.0 changes nothing (even -0.0 + -0.0), so it is the sum's identity; products use +0.0.
  const double identity = Kind == ReduceKind::sum ? -0.0 : 0.0;
  const auto step = [](const D& acc, const auto& load) {
    if constexpr (Kind == ReduceKind::sum) return acc + load(0);
    else if constexpr (Kind == ReduceKind::sum_squares) return simd::fma(load(0), load(0), acc);
    else return simd::fma(load(0), load(N - 1), acc);
  };
  D acc[4] = {D(identity), D(identity), D(identity), D(identity)};
  std::size_t i = 0;
  for (; i + 4 * width <= n; i += 4 * width)
    for (std::size_t u = 0; u < 4; ++u)
      acc[u] = step(acc[u], [&](std::size_t k) { return D::load_unaligned(p[k] + i + u * width); });
  for (; i + width <= n; i += width) acc[0] = step(acc[0], [&](std::size_t k) { return D::load_unaligned(p[k] + i); });
  if (i < n) {
    alignas(64) double pad[N][width];
    for (std::size_t k = 0; k < N; ++k)
      for (std::size_t j = 0; j < width; ++j) pad[k][j] = i + j < n ? static_cast<double>(p[k][i + j]) : identity;
    acc[1] = step(acc[1], [&](std::size_t k) { return D::load_aligned(pad[k]); });
  }
  return xsimd::hadd((acc[0] + acc[1]) + (acc[2] + acc[3]));
}

/// One block of max / min / max |a - b|; NaN when any lane saw a NaN.
template <class Arch, ReduceKind Kind, class T, std::size_t N>
double extreme_block(const std::array<const T*, N>& p, std::size_t n) {
  using V = std::conditional_t<Kind == ReduceKind::max_abs_diff, double, T>;
  using B = xsimd::batch<V, Arch>;
  constexpr std::size_t width = B::size;
  const V identity = Kind == ReduceKind::max ? -std::numeric_limits<V>::infinity()
                     : Kind == ReduceKind::min ? std::numeric_limits<V>::infinity()
                                               : V(0);
  B acc(identity);
  xsimd::batch_bool<V, Arch> nan(false);
  const auto step = [&](const auto& load) {
    B v;
    if constexpr (Kind == ReduceKind::max_abs_diff) v = xsimd::abs(load(0) - load(N - 1));
    else v = load(0);
    nan = nan | xsimd::isnan(v);
    acc = Kind == ReduceKind::min ? xsimd::min(acc, v) : xsimd::max(acc, v);
  };
  std::size_t i = 0;
  for (; i + width <= n; i += width) step([&](std::size_t k) { return B::load_unaligned(p[k] + i); });
  if (i < n) {
    alignas(64) V pad[N][width];
    for (std::size_t k = 0; k < N; ++k)
      for (std::size_t j = 0; j < width; ++j) pad[k][j] = i + j < n ? static_cast<V>(p[k][i + j]) : identity;
    step([&](std::size_t k) { return B::load_aligned(pad[k]); });
  }
  if (xsimd::any(nan)) return std::numeric_limits<double>::quiet_NaN();
  alignas(64) V lanes[width];
  acc.store_aligned(lanes);
  V r = lanes[0];
  for (std::size_t j = 1; j < width; ++j) r = Kind == ReduceKind::min ? std::min(r, lanes[j]) : std::max(r, lanes[j]);
  return static_cast<double>(r);
}

/// Blocks per segment: the partials are indexed m * blocks + b.
template <class T, std::size_t N>
index_t reduce_blocks(const ReduceSegments<T, N>& s) noexcept {
  return std::max<index_t>(1, (s.length + reduce_block - 1) / reduce_block);
}

/// partial[m * blocks + b]: the reduction of block b of segment m, blocks computed in parallel. `partial` holds
/// count * blocks doubles, allocated by the caller: this runs inside xsimd::dispatch (noexcept) and an OpenMP
/// region, where an allocation failure would call std::terminate instead of reaching the caller.
template <ReduceKind Kind, class T, std::size_t N>
struct BlockRunner {
  template <class Arch>
  void operator()(Arch, const ReduceSegments<T, N>& s, double* partial) const noexcept {
    const index_t blocks = reduce_blocks(s);
    const index_t items = s.count * blocks;
    const bool parallel = s.count * s.length >= reduce_parallel_min && items > 1;
    (void)parallel;
    LATENTKIT_OMP(parallel for schedule(static) if(parallel))
    for (index_t item = 0; item < items; ++item) {
      const index_t m = item / blocks, start = (item % blocks) * reduce_block;
      const index_t n = std::min(reduce_block, s.length - start);
      alignas(64) T buffers[N][reduce_block];
      std::array<const T*, N> p;
      for (std::size_t k = 0; k < N; ++k) p[k] = s.fetch(k, m, start, n, buffers[k]);
      constexpr bool extreme = Kind == ReduceKind::max || Kind == ReduceKind::min || Kind == ReduceKind::max_abs_diff;
      partial[item] = extreme ? extreme_block<Arch, Kind, T, N>(p, static_cast<std::size_t>(n))
                              : sum_block<Arch, Kind, T, N>(p, static_cast<std::size_t>(n));
    }
  }
};

/// Combines the partials of segment m in block order.
template <ReduceKind Kind>
double combine_partials(const std::vector<double>& partial, index_t m, index_t blocks) {
  const double* p = partial.data() + m * blocks;
  double r = p[0];
  for (index_t b = 1; b < blocks; ++b) {
    if constexpr (Kind == ReduceKind::max || Kind == ReduceKind::min || Kind == ReduceKind::max_abs_diff) {
      if (std::isnan(r) || std::isnan(p[b])) return std::numeric_limits<double>::quiet_NaN();
      r = Kind == ReduceKind::min ? std::min(r, p[b]) : std::max(r, p[b]);
    } else {
      r += p[b];
    }
  }
  return r;
}

/// The reduction of every element of the operands (same shape).
template <ReduceKind Kind, class T, std::size_t N>
double reduce_all(const char* name, const std::array<TensorView<const T>, N>& views) {
  for (std::size_t k = 1; k < N; ++k)
    if (!(views[k].shape() == views[0].shape()))
      throw ShapeError(std::string(name) + ": shapes " + views[0].shape().str() + " and " + views[k].shape().str() +
                       " differ");
  ReduceSegments<T, N> s;
  s.views = views;
  s.length = views[0].numel();
  std::vector<double> partial(static_cast<std::size_t>(reduce_blocks(s)));
  simd::dispatch(BlockRunner<Kind, T, N>{})(s, partial.data());
  return combine_partials<Kind>(partial, 0, static_cast<index_t>(partial.size()));
}

template <ReduceKind Kind, class T>
Tensor<T> reduce_axis(const char* name, const TensorView<const T>& v, int axis, bool keepdims, bool average) {
  const int a = axis < 0 ? axis + v.rank() : axis;
  if (a < 0 || a >= v.rank())
    throw ShapeError(std::string(name) + ": axis " + std::to_string(axis) + " out of range for shape " + v.shape().str());
  ReduceSegments<T, 1> s;
  s.views = {v};
  s.axis = a;
  s.length = v.shape()[a];
  s.outer_shape = v.shape();
  s.outer_shape.erase(a);
  s.strides_without_axis[0] = v.strides();
  s.strides_without_axis[0].erase(a);
  s.count = s.outer_shape.numel();
  if (average && s.length == 0)
    throw ShapeError(std::string(name) + ": mean over axis " + std::to_string(axis) + " of length 0 in " + v.shape().str());
  Dims out_shape = s.outer_shape;
  if (keepdims) out_shape.insert(a, 1);
  Tensor<T> out(out_shape);
  if (s.count == 0) return out;
  const index_t blocks = reduce_blocks(s);
  std::vector<double> partial(static_cast<std::size_t>(s.count * blocks));
  simd::dispatch(BlockRunner<Kind, T, 1>{})(s, partial.data());
  for (index_t m = 0; m < s.count; ++m) {
    const double total = combine_partials<Kind>(partial, m, blocks);
    out.data()[m] = static_cast<T>(average ? total / static_cast<double>(s.length) : total);
  }
  return out;
}

template <class T>
void require_elements(const char* name, const TensorView<const T>& v) {
  if (v.numel() == 0) throw ShapeError(std::string(name) + " of an empty tensor of shape " + v.shape().str());
}

}  // namespace detail

/// Sum of all elements, accumulated in double (0 for an empty tensor).
template <RealTensor X>
double sum(const X& x) {
  return detail::reduce_all<detail::ReduceKind::sum>("sum", std::array{detail::read_view(x)});
}
/// Mean of all elements (ShapeError when empty).
template <RealTensor X>
double mean(const X& x) {
  const auto v = detail::read_view(x);
  detail::require_elements("mean", v);
  return sum(v) / static_cast<double>(v.numel());
}
/// sum x[i] * y[i] over same-shape tensors, accumulated in double.
template <RealTensor X, RealTensor Y>
  requires std::same_as<real_t<X>, real_t<Y>>
double dot(const X& x, const Y& y) {
  return detail::reduce_all<detail::ReduceKind::dot>("dot", std::array{detail::read_view(x), detail::read_view(y)});
}
/// Euclidean norm sqrt(sum x^2), accumulated in double (no rescaling: squares above ~1e308 overflow).
template <RealTensor X>
double norm2(const X& x) {
  return std::sqrt(detail::reduce_all<detail::ReduceKind::sum_squares>("norm2", std::array{detail::read_view(x)}));
}
/// Largest element; NaN if any element is NaN; ShapeError when empty.
template <RealTensor X>
real_t<X> max(const X& x) {
  const auto v = detail::read_view(x);
  detail::require_elements("max", v);
  return static_cast<real_t<X>>(detail::reduce_all<detail::ReduceKind::max>("max", std::array{v}));
}
/// Smallest element; NaN if any element is NaN; ShapeError when empty.
template <RealTensor X>
real_t<X> min(const X& x) {
  const auto v = detail::read_view(x);
  detail::require_elements("min", v);
  return static_cast<real_t<X>>(detail::reduce_all<detail::ReduceKind::min>("min", std::array{v}));
}
/// max |a[i] - b[i]| over same-shape tensors, in double; NaN if any difference is NaN; 0 when empty.
template <RealTensor A, RealTensor B>
  requires std::same_as<real_t<A>, real_t<B>>
double max_abs_diff(const A& a, const B& b) {
  return detail::reduce_all<detail::ReduceKind::max_abs_diff>("max_abs_diff",
                                                               std::array{detail::read_view(a), detail::read_view(b)});
}

/// Sums along `axis` (negative counts from the end): the axis disappears, or stays with extent 1 with keepdims.
/// Each line is accumulated in double, then rounded once to T.
template <RealTensor X>
Tensor<real_t<X>> sum(const X& x, int axis, bool keepdims = false) {
  return detail::reduce_axis<detail::ReduceKind::sum>("sum", detail::read_view(x), axis, keepdims, false);
}
/// Means along `axis` (ShapeError when the axis has length 0); accumulated in double, rounded once to T.
template <RealTensor X>
Tensor<real_t<X>> mean(const X& x, int axis, bool keepdims = false) {
  return detail::reduce_axis<detail::ReduceKind::sum>("mean", detail::read_view(x), axis, keepdims, true);
}

LATENTKIT_NAMESPACE_END
