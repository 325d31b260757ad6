// The Latent concept: what a sampler needs from the type it integrates (vector-space arithmetic and a shape).
#pragma once
#include <concepts>
#include <cstddef>
#include <type_traits>

#include "latentkit/config/config.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// A latent X is a value with vector-space arithmetic: X+X, X-X, s*X, X*s, X/s (s a double), each convertible back
/// to X (lazy expressions such as xtensor's are fine: the work happens when the result is assigned to an X), and a
/// shape. xt::xarray<double> and xt::xarray<float> model it; so does any owning tensor with these operators.
template <class X>
concept Latent = std::copy_constructible<X> && std::is_assignable_v<X&, const X&> && requires(const X& a, const X& b,
                                                                                           double s) {
  typename X::value_type;  // the scalar type samples are stored in (float, double, ...)
  a.shape();
  X(a + b);
  X(a - b);
  X(s * a);
  X(a * s);
  X(a / s);
};

/// A latent whose elements are one contiguous row-major buffer (needed by kernels that walk raw memory, such as the
/// analytic Gaussian-mixture denoiser and the seeded noise source).
template <class X>
concept ContiguousLatent = Latent<X> && requires(X& m, const X& c) {
  { m.data() } -> std::convertible_to<typename X::value_type*>;
  { c.data() } -> std::convertible_to<const typename X::value_type*>;
  { c.size() } -> std::convertible_to<std::size_t>;
};

template <Latent X>
using latent_scalar_t = typename X::value_type;

/// x with every element rounded to float32 and back: reproduces code that casts a sample to float32 before an update
/// (diffusers' multistep solver does) when X holds doubles. The identity for float latents.
template <ContiguousLatent X>
X round_through_float(const X& x) {
  X out = x;
  if constexpr (!std::is_same_v<latent_scalar_t<X>, float>) {
    auto* p = out.data();
    const std::size_t n = out.size();
    for (std::size_t k = 0; k < n; ++k) p[k] = static_cast<latent_scalar_t<X>>(static_cast<float>(p[k]));
  }
  return out;
}

LATENTKIT_NAMESPACE_END
