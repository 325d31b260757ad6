// Classifier-free guidance: a Denoiser that wraps a conditioned denoiser and runs cond and uncond in ONE call.
#pragma once
#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/denoisers/denoiser.hpp"
#include "latentkit/samplers/latent.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// A latent that can be stacked along its first (batch) axis: contiguous row-major storage and X::from_shape.
template <class X>
concept BatchableLatent = ContiguousLatent<X> && requires(const X& x) { X::from_shape(x.shape()); };

/// (B, ...) and (B', ...) -> (B + B', ...): rows of a, then rows of b.
template <BatchableLatent X>
X batch_concat(const X& a, const X& b) {
  auto shape = a.shape();
  const auto& other = b.shape();
  if (std::size(shape) == 0 || std::size(shape) != std::size(other) ||
      !std::equal(std::begin(shape) + 1, std::end(shape), std::begin(other) + 1))
    throw ShapeError("batch_concat: both tensors need shape (B, ...) with equal trailing extents");
  shape[0] += other[0];
  X out = X::from_shape(shape);
  std::copy_n(a.data(), a.size(), out.data());
  std::copy_n(b.data(), b.size(), out.data() + a.size());
  return out;
}

/// Rows [first, first + count) of a (B, ...) tensor.
template <BatchableLatent X>
X batch_rows(const X& x, std::size_t first, std::size_t count) {
  auto shape = x.shape();
  const std::size_t rows = static_cast<std::size_t>(shape[0]);
  if (first + count > rows) throw ShapeError("batch_rows: rows out of range");
  const std::size_t row = rows ? x.size() / rows : 0;
  shape[0] = count;
  X out = X::from_shape(shape);
  std::copy_n(x.data() + first * row, count * row, out.data());
  return out;
}

/// D_cfg(x, sigma) = D_u + scale * (D_c - D_u), with D_u = inner(x, sigma, uncond) and D_c = inner(x, sigma, cond).
/// Both come from ONE call of the inner denoiser on a doubled batch (as k-diffusion's CFGDenoiser does):
///   x_in   = [x; x]            (2B, ...)  rows 0..B-1 for the unconditional half, rows B..2B-1 for the conditional
///   ctx_in = [uncond; cond]    (2B, ...)  formed once, when the guidance object is built
/// and the output is split back at row B. uncond and cond must each have the latent's batch size B.
template <class Inner, BatchableLatent C>
class ClassifierFreeGuidance {
 public:
  ClassifierFreeGuidance(Inner inner, const C& uncond, const C& cond, double scale)
      : inner_(std::forward<Inner>(inner)), context_(batch_concat(uncond, cond)),
        batch_(static_cast<std::size_t>(uncond.shape()[0])), scale_(scale) {
    if (static_cast<std::size_t>(cond.shape()[0]) != batch_)
      throw ShapeError("ClassifierFreeGuidance: cond and uncond must have the same batch size");
  }

  template <BatchableLatent X>
    requires ConditionedDenoiser<std::remove_reference_t<Inner>, X, C>
  X operator()(const X& x, double sigma) {
    if (static_cast<std::size_t>(x.shape()[0]) != batch_)
      throw ShapeError("ClassifierFreeGuidance: latent batch does not match the conditioning batch");
    const X both = inner_(batch_concat(x, x), sigma, context_);
    const X uncond = batch_rows(both, 0, batch_);
    const X cond = batch_rows(both, batch_, batch_);
    return X(uncond + (cond - uncond) * scale_);
  }

  double sigma_min() const { return static_cast<double>(inner_.sigma_min()); }
  double sigma_max() const { return static_cast<double>(inner_.sigma_max()); }
  double scale() const noexcept { return scale_; }
  /// The inner denoiser's training schedule, when it has one, so table spacings (normal, simple) work through CFG.
  decltype(auto) schedule() const
    requires requires(const std::remove_reference_t<Inner>& inner) { inner.schedule(); }
  {
    return inner_.schedule();
  }

 private:
  Inner inner_;
  C context_;  // (2B, ...): [uncond; cond]
  std::size_t batch_;
  double scale_;
};

template <class Inner, class C>
ClassifierFreeGuidance(Inner&&, const C&, const C&, double) -> ClassifierFreeGuidance<Inner, C>;

LATENTKIT_NAMESPACE_END
