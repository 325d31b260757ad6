// Element-wise arithmetic on float/double tensors: add, sub, mul, div, scale, axpy/axpby, lerp, clamp, fill, map.
//
// Conventions (every operation):
//  - Arguments are Tensor<T> or TensorView<T>, T = float or double; scalars are given as double and rounded to T.
//  - op(inputs..., out) writes into `out`; every input is broadcast to out's shape (NumPy rules), so a bias of shape
//    [C, 1, 1] or a stride-0 broadcast view can be added to [N, C, H, W]. `out` may be one of the inputs (in place)
//    but must not partly overlap one, nor have stride 0 along an axis longer than 1.
//  - op(inputs...) returns a new Tensor with the first input's shape; op_inplace(x, ...) updates x.
//  - axpy(alpha, x, y) and axpby(alpha, x, beta, y) update y in place, as BLAS does.
// Kernels are xsimd functors picked by simd::dispatch. Every element goes through the same vector code whatever its
// position (the tail of a row is computed in a padded batch, strided operands are gathered into small buffers), so
// results are identical for contiguous and strided layouts and for any thread count. Work is split into fixed
// chunks of rows/elements processed in parallel with OpenMP.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/backend/simd/fma.hpp"
#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN

namespace detail {
template <class X> struct tensor_arg {};
template <class T> struct tensor_arg<Tensor<T>> {
  using value_type = T;
};
template <class T> struct tensor_arg<TensorView<T>> {
  using value_type = std::remove_cv_t<T>;
};

template <class T> TensorView<const T> read_view(const Tensor<T>& t) noexcept { return t.view(); }
template <class T> TensorView<const std::remove_cv_t<T>> read_view(const TensorView<T>& v) noexcept { return v; }
template <class T> TensorView<T> write_view(Tensor<T>& t) noexcept { return t.view(); }
template <class T>
  requires(!std::is_const_v<T>)
TensorView<T> write_view(const TensorView<T>& v) noexcept { return v; }
}  // namespace detail

/// A Tensor<T> or TensorView<T> (const or not) of float or double: what element-wise ops and reductions take.
template <class X>
concept RealTensor = requires { typename detail::tensor_arg<std::remove_cvref_t<X>>::value_type; } &&
                     std::floating_point<typename detail::tensor_arg<std::remove_cvref_t<X>>::value_type> &&
                     (sizeof(typename detail::tensor_arg<std::remove_cvref_t<X>>::value_type) >= 4);

/// The element type of a RealTensor argument.
template <RealTensor X>
using real_t = typename detail::tensor_arg<std::remove_cvref_t<X>>::value_type;

namespace detail {

inline constexpr index_t elementwise_chunk = index_t{1} << 14;        // elements per parallel work item
inline constexpr index_t elementwise_parallel_min = index_t{1} << 16;  // smaller tensors stay on one thread
inline constexpr std::size_t gather_len = 256;                          // buffer for strided operands

// --- operations: one batch in, one batch out; scalars are already T ------------------------------------------------
template <class T> struct AddOp { template <class B> B operator()(const B& a, const B& b) const { return a + b; } };
template <class T> struct SubOp { template <class B> B operator()(const B& a, const B& b) const { return a - b; } };
template <class T> struct MulOp { template <class B> B operator()(const B& a, const B& b) const { return a * b; } };
template <class T> struct DivOp { template <class B> B operator()(const B& a, const B& b) const { return a / b; } };
template <class T> struct ScaleOp {
  T alpha;
  template <class B> B operator()(const B& x) const { return B(alpha) * x; }
};
/// alpha x + beta y with alpha x fused into the final addition (one rounding fewer than mul, mul, add).
template <class T> struct AxpbyOp {
  T alpha, beta;
  template <class B> B operator()(const B& x, const B& y) const { return simd::fma(B(alpha), x, B(beta) * y); }
};
/// alpha x + y, fused.
template <class T> struct AxpyOp {
  T alpha;
  template <class B> B operator()(const B& x, const B& y) const { return simd::fma(B(alpha), x, y); }
};
/// a + t (b - a), fused: exact at t = 0.
template <class T> struct LerpOp {
  T t;
  template <class B> B operator()(const B& a, const B& b) const { return simd::fma(B(t), b - a, a); }
};
/// min(max(x, lo), hi); NaN stays NaN (as torch.clamp, unlike the bare max/min instructions).
template <class T> struct ClampOp {
  T lo, hi;
  template <class B> B operator()(const B& x) const {
    return xsimd::select(xsimd::isnan(x), x, xsimd::min(xsimd::max(x, B(lo)), B(hi)));
  }
};
template <class T> struct FillOp {
  T value;
  template <class B> B make() const { return B(value); }
};
/// Holds the first exception a map functor throws until the parallel region is over: an exception must not
/// leave an OpenMP region or xsimd::dispatch (whose call operator is noexcept), both of which std::terminate.
struct DeferredError {
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // written once, by the thread that set `failed`; read after the region has joined
  void capture() noexcept {
    bool expected = false;
    if (failed.compare_exchange_strong(expected, true)) error = std::current_exception();
  }
};
/// A scalar function applied element by element (not vectorised, still threaded).
template <class F> struct MapOp {
  F f;
  DeferredError* error;
};
template <class Op> inline constexpr bool is_map_op = false;
template <class F> inline constexpr bool is_map_op<MapOp<F>> = true;

/// op applied to the N batches load(0), ..., load(N-1).
template <class B, std::size_t N, class Op, class Load>
B apply_op(const Op& op, Load&& load) {
  if constexpr (N == 0) {
    return op.template make<B>();
  } else {
    return [&]<std::size_t... K>(std::index_sequence<K...>) { return B(op(load(K)...)); }(std::make_index_sequence<N>{});
  }
}

/// out[i] = op(in0[i], in1[i]...) for i < n on contiguous memory. The tail goes through a padded batch so that
/// every element is computed by the same instructions.
template <class Arch, class T, class Op, std::size_t N>
void run_dense(const Op& op, T* out, const std::array<const T*, N>& in, std::size_t n) {
  if constexpr (is_map_op<Op>) {
    if (op.error->failed.load(std::memory_order_relaxed)) return;  // another piece failed: map() will throw
    try {
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(op.f(in[0][i]));
    } catch (...) {
      op.error->capture();
    }
  } else {
    using B = xsimd::batch<T, Arch>;
    constexpr std::size_t width = B::size;
    std::size_t i = 0;
    for (; i + width <= n; i += width)
      apply_op<B, N>(op, [&](std::size_t k) { return B::load_unaligned(in[k] + i); }).store_unaligned(out + i);
    if (i < n) {
      alignas(64) T pad[N ? N : 1][width] = {};
      alignas(64) T result[width];
      for (std::size_t k = 0; k < N; ++k) std::copy(in[k] + i, in[k] + n, pad[k]);
      apply_op<B, N>(op, [&](std::size_t k) { return B::load_aligned(pad[k]); }).store_aligned(result);
      std::copy(result, result + (n - i), out + i);
    }
  }
}

/// The shape and per-operand strides after dropping size-1 axes and merging axes that are contiguous for every
/// operand (so a dense tensor becomes one row, and a per-channel bias on NCHW rows of H*W).
template <std::size_t M>
struct ElementwiseLayout {
  Dims shape;
  std::array<Dims, M> strides;
};

template <std::size_t M>
ElementwiseLayout<M> coalesce_axes(const Dims& shape, const std::array<Dims, M>& strides) {
  ElementwiseLayout<M> l;
  for (int a = 0; a < shape.rank(); ++a) {
    if (shape[a] == 1) continue;
    const int last = l.shape.rank() - 1;
    bool merge = last >= 0;
    for (std::size_t k = 0; k < M && merge; ++k) merge = l.strides[k][last] == strides[k][a] * shape[a];
    if (merge) {
      l.shape[last] *= shape[a];
      for (std::size_t k = 0; k < M; ++k) l.strides[k][last] = strides[k][a];
    } else {
      l.shape.push_back(shape[a]);
      for (std::size_t k = 0; k < M; ++k) l.strides[k].push_back(strides[k][a]);
    }
  }
  if (l.shape.empty()) {  // a single element
    l.shape.push_back(1);
    for (std::size_t k = 0; k < M; ++k) l.strides[k].push_back(1);
  }
  return l;
}

template <class T, class Op, std::size_t N>
struct ElementwiseRunner {
  template <class Arch>
  void operator()(Arch, const Op& op, TensorView<T> out, const std::array<TensorView<const T>, N>& in) const {
    std::array<Dims, N + 1> strides;
    strides[0] = out.strides();
    for (std::size_t k = 0; k < N; ++k) strides[k + 1] = in[k].strides();
    const ElementwiseLayout<N + 1> l = coalesce_axes(out.shape(), strides);
    const int inner = l.shape.rank() - 1;
    const index_t row_len = l.shape[inner];
    const index_t rows = out.numel() / row_len;
    // Work items: a row cut in pieces when rows are long, or a group of whole rows when they are short.
    const index_t pieces_per_row = std::max<index_t>(1, (row_len + elementwise_chunk - 1) / elementwise_chunk);
    const index_t piece_len = (row_len + pieces_per_row - 1) / pieces_per_row;
    const index_t rows_per_item = pieces_per_row > 1 ? 1 : std::max<index_t>(1, elementwise_chunk / row_len);
    const index_t items = pieces_per_row > 1 ? rows * pieces_per_row : (rows + rows_per_item - 1) / rows_per_item;
    const bool parallel = out.numel() >= elementwise_parallel_min && items > 1;
    (void)parallel;

    LATENTKIT_OMP(parallel for schedule(static) if(parallel))
    for (index_t item = 0; item < items; ++item) {
      index_t row_begin, row_end, col_begin, col_end;
      if (pieces_per_row > 1) {
        row_begin = item / pieces_per_row;
        row_end = row_begin + 1;
        col_begin = (item % pieces_per_row) * piece_len;
        col_end = std::min(row_len, col_begin + piece_len);
      } else {
        row_begin = item * rows_per_item;
        row_end = std::min(rows, row_begin + rows_per_item);
        col_begin = 0;
        col_end = row_len;
      }
      for (index_t row = row_begin; row < row_end; ++row) {
        // Offsets of this row for every operand: unravel the row index over the outer axes.
        std::array<index_t, N + 1> offset{};
        index_t rest = row;
        for (int a = inner - 1; a >= 0; --a) {
          const index_t coord = rest % l.shape[a];
          rest /= l.shape[a];
          for (std::size_t k = 0; k <= N; ++k) offset[k] += coord * l.strides[k][a];
        }
        run_row<Arch>(op, out.data() + offset[0] + col_begin * l.strides[0][inner], l.strides[0][inner], in, offset,
                      l, col_begin, col_end - col_begin);
      }
    }
  }

  template <class Arch>
  static void run_row(const Op& op, T* out, index_t out_stride, const std::array<TensorView<const T>, N>& in,
                      const std::array<index_t, N + 1>& offset, const ElementwiseLayout<N + 1>& l, index_t col, index_t len) {
    const int inner = l.shape.rank() - 1;
    std::array<const T*, N> src;
    std::array<index_t, N> src_stride;
    bool dense = out_stride == 1;
    for (std::size_t k = 0; k < N; ++k) {
      src_stride[k] = l.strides[k + 1][inner];
      src[k] = in[k].data() + offset[k + 1] + col * src_stride[k];
      dense = dense && src_stride[k] == 1;
    }
    if (dense) {
      run_dense<Arch>(op, out, src, static_cast<std::size_t>(len));
      return;
    }
    alignas(64) T gathered[N ? N : 1][gather_len];
    alignas(64) T result[gather_len];
    for (std::size_t k = 0; k < N; ++k)
      if (src_stride[k] == 0) std::fill_n(gathered[k], gather_len, *src[k]);  // broadcast along the row
    for (index_t done = 0; done < len; done += static_cast<index_t>(gather_len)) {
      const std::size_t n = static_cast<std::size_t>(std::min<index_t>(len - done, static_cast<index_t>(gather_len)));
      std::array<const T*, N> piece;
      for (std::size_t k = 0; k < N; ++k) {
        if (src_stride[k] == 1) {
          piece[k] = src[k] + done;
        } else {
          if (src_stride[k] != 0)
            for (std::size_t i = 0; i < n; ++i) gathered[k][i] = src[k][(done + static_cast<index_t>(i)) * src_stride[k]];
          piece[k] = gathered[k];
        }
      }
      if (out_stride == 1) {
        run_dense<Arch>(op, out + done, piece, n);
      } else {
        run_dense<Arch>(op, result, piece, n);
        for (std::size_t i = 0; i < n; ++i) out[(done + static_cast<index_t>(i)) * out_stride] = result[i];
      }
    }
  }
};

/// Checks shapes, broadcasts the inputs to out's shape and runs op over every element.
template <class T, class Op, class... In>
void elementwise(const char* name, const Op& op, TensorView<T> out, const In&... inputs) {
  for (int a = 0; a < out.rank(); ++a)
    if (out.shape()[a] > 1 && out.strides()[a] == 0)
      throw ShapeError(std::string(name) + ": the output " + out.shape().str() + " has stride 0 along axis " +
                       std::to_string(a) + " (a broadcast view cannot be written)");
  std::array<TensorView<const T>, sizeof...(In)> in{};
  std::size_t k = 0;
  ((in[k++] = [&](const TensorView<const T>& v) {
     try {
       return v.broadcast_to(out.shape());
     } catch (const ShapeError&) {
       throw ShapeError(std::string(name) + ": operand of shape " + v.shape().str() +
                        " does not broadcast to the output shape " + out.shape().str());
     }
   }(read_view(inputs))),
   ...);
  if (out.numel() == 0) return;
  simd::dispatch(ElementwiseRunner<T, Op, sizeof...(In)>{})(op, out, in);
}

template <class T>
T to_real(double x) noexcept { return static_cast<T>(x); }

}  // namespace detail

// --- binary arithmetic: a (op) b, b broadcast ----------------------------------------------------------------------
#define LATENTKIT_BINARY_OP(name, Op)                                                                 \
  template <RealTensor A, RealTensor B, class Out>                                                    \
    requires std::same_as<real_t<A>, real_t<B>>                                                       \
  void name(const A& a, const B& b, Out&& out) {                                                      \
    detail::elementwise(#name, detail::Op<real_t<A>>{}, detail::write_view(out), a, b);               \
  }                                                                                                   \
  template <RealTensor A, RealTensor B>                                                               \
    requires std::same_as<real_t<A>, real_t<B>>                                                       \
  Tensor<real_t<A>> name(const A& a, const B& b) {                                                    \
    Tensor<real_t<A>> out(detail::read_view(a).shape());                                              \
    name(a, b, out);                                                                                  \
    return out;                                                                                       \
  }                                                                                                   \
  template <class X, RealTensor B>                                                                    \
    requires RealTensor<X> && std::same_as<real_t<X>, real_t<B>>                                      \
  void name##_inplace(X&& x, const B& b) {                                                            \
    const auto target = detail::write_view(x);                                                        \
    detail::elementwise(#name, detail::Op<real_t<X>>{}, target, target, b);                           \
  }

/// a + b
LATENTKIT_BINARY_OP(add, AddOp)
/// a - b
LATENTKIT_BINARY_OP(sub, SubOp)
/// a * b (element-wise)
LATENTKIT_BINARY_OP(mul, MulOp)
/// a / b (element-wise, IEEE: x / 0 is +-inf or NaN)
LATENTKIT_BINARY_OP(div, DivOp)
#undef LATENTKIT_BINARY_OP

// --- scaling and linear combinations -------------------------------------------------------------------------------
/// out = alpha x
template <RealTensor X, class Out>
void scale(const X& x, double alpha, Out&& out) {
  using T = real_t<X>;
  detail::elementwise("scale", detail::ScaleOp<T>{detail::to_real<T>(alpha)}, detail::write_view(out), x);
}
template <RealTensor X>
Tensor<real_t<X>> scale(const X& x, double alpha) {
  Tensor<real_t<X>> out(detail::read_view(x).shape());
  scale(x, alpha, out);
  return out;
}
template <RealTensor X>
void scale_inplace(X&& x, double alpha) {
  const auto target = detail::write_view(x);
  scale(target, alpha, target);
}

/// y = alpha x + y (in place, BLAS axpy), computed as fma(alpha, x, y).
template <RealTensor X, RealTensor Y>
  requires std::same_as<real_t<X>, real_t<Y>>
void axpy(double alpha, const X& x, Y&& y) {
  using T = real_t<X>;
  const auto target = detail::write_view(y);
  detail::elementwise("axpy", detail::AxpyOp<T>{detail::to_real<T>(alpha)}, target, x, target);
}
/// out = alpha x + beta y, computed as fma(alpha, x, beta * y).
template <RealTensor X, RealTensor Y, class Out>
  requires std::same_as<real_t<X>, real_t<Y>>
void axpby(double alpha, const X& x, double beta, const Y& y, Out&& out) {
  using T = real_t<X>;
  detail::elementwise("axpby", detail::AxpbyOp<T>{detail::to_real<T>(alpha), detail::to_real<T>(beta)},
                      detail::write_view(out), x, y);
}
/// y = alpha x + beta y (in place).
template <RealTensor X, RealTensor Y>
  requires std::same_as<real_t<X>, real_t<Y>>
void axpby(double alpha, const X& x, double beta, Y&& y) {
  const auto target = detail::write_view(y);
  axpby(alpha, x, beta, target, target);
}

/// out = a + t (b - a), computed as fma(t, b - a, a).
template <RealTensor A, RealTensor B, class Out>
  requires std::same_as<real_t<A>, real_t<B>>
void lerp(const A& a, const B& b, double t, Out&& out) {
  using T = real_t<A>;
  detail::elementwise("lerp", detail::LerpOp<T>{detail::to_real<T>(t)}, detail::write_view(out), a, b);
}
template <RealTensor A, RealTensor B>
  requires std::same_as<real_t<A>, real_t<B>>
Tensor<real_t<A>> lerp(const A& a, const B& b, double t) {
  Tensor<real_t<A>> out(detail::read_view(a).shape());
  lerp(a, b, t, out);
  return out;
}

// --- clamp, fill, map ----------------------------------------------------------------------------------------------
/// out = min(max(x, lo), hi); NaN stays NaN. Bounds with lo > hi (or NaN) throw Error.
template <RealTensor X, class Out>
void clamp(const X& x, double lo, double hi, Out&& out) {
  using T = real_t<X>;
  if (!(lo <= hi)) throw Error("clamp: lower bound " + std::to_string(lo) + " is above upper bound " + std::to_string(hi));
  detail::elementwise("clamp", detail::ClampOp<T>{detail::to_real<T>(lo), detail::to_real<T>(hi)},
                      detail::write_view(out), x);
}
template <RealTensor X>
Tensor<real_t<X>> clamp(const X& x, double lo, double hi) {
  Tensor<real_t<X>> out(detail::read_view(x).shape());
  clamp(x, lo, hi, out);
  return out;
}
template <RealTensor X>
void clamp_inplace(X&& x, double lo, double hi) {
  const auto target = detail::write_view(x);
  clamp(target, lo, hi, target);
}

/// Sets every element of x to value.
template <RealTensor X>
void fill(X&& x, double value) {
  using T = real_t<X>;
  detail::elementwise("fill", detail::FillOp<T>{detail::to_real<T>(value)}, detail::write_view(x));
}

/// out[i] = f(x[i]) with a scalar function T -> T. Threaded: f must be safe to call concurrently. If f throws,
/// the remaining pieces are skipped and the first exception is rethrown here once all threads have stopped
/// (out is then partly written).
template <RealTensor X, class F, class Out>
  requires std::invocable<const F&, real_t<X>>
void map(const X& x, F f, Out&& out) {
  detail::DeferredError error;
  detail::elementwise("map", detail::MapOp<F>{std::move(f), &error}, detail::write_view(out), x);
  if (error.error) std::rethrow_exception(error.error);
}
template <RealTensor X, class F>
  requires std::invocable<const F&, real_t<X>>
Tensor<real_t<X>> map(const X& x, F f) {
  Tensor<real_t<X>> out(detail::read_view(x).shape());
  map(x, std::move(f), out);
  return out;
}
template <RealTensor X, class F>
  requires std::invocable<const F&, real_t<X>>
void map_inplace(X&& x, F f) {
  const auto target = detail::write_view(x);
  map(target, std::move(f), target);
}

LATENTKIT_NAMESPACE_END
