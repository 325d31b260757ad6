// Linear multistep (LMS): Adams-Bashforth in sigma over the last 'order' derivatives, coefficients exact.
#pragma once
#include <cmath>
#include <cstddef>
#include <optional>
#include <utility>

#include "latentkit/samplers/step.hpp"

#include <algorithm>
#include <deque>
#include <string>
#include <vector>
LATENTKIT_NAMESPACE_BEGIN

/// Integral over [sigmas[i], sigmas[i+1]] of the Lagrange basis polynomial that is 1 at sigmas[i-j] and 0 at the
/// other nodes sigmas[i-k], k < order. k-diffusion integrates it numerically (scipy quad, epsrel 1e-4); the
/// polynomial has degree order-1, so we expand it in u = tau - sigmas[i] and integrate exactly.
inline double lms_coefficient(int order, Sigmas sigmas, std::size_t i, int j) {
  if (order < 1 || j < 0 || j >= order || static_cast<std::size_t>(order - 1) > i || i + 1 >= sigmas.size())
    throw Error("lms_coefficient: order " + std::to_string(order) + ", j " + std::to_string(j) + " invalid at step " +
                std::to_string(i) + " of " + std::to_string(sigmas.size() - 1));
  std::vector<double> poly{1.0};  // coefficients of prod (u - root_k), lowest degree first
  double denominator = 1.0;
  const double node_j = sigmas[i - j];
  for (int k = 0; k < order; ++k) {
    if (k == j) continue;
    const double node_k = sigmas[i - k];
    const double root = node_k - sigmas[i];
    std::vector<double> next(poly.size() + 1, 0.0);
    for (std::size_t p = 0; p < poly.size(); ++p) {
      next[p + 1] += poly[p];
      next[p] -= root * poly[p];
    }
    poly = std::move(next);
    denominator *= node_j - node_k;
  }
  const double h = sigmas[i + 1] - sigmas[i];
  double integral = 0.0, h_power = h;
  for (std::size_t p = 0; p < poly.size(); ++p, h_power *= h) integral += poly[p] * h_power / static_cast<double>(p + 1);
  return integral / denominator;
}

struct LMS {
  int order = 4;

  template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
    requires NoiseSource<std::remove_cvref_t<N>, X> && StepCallback<std::remove_cvref_t<C>, X>
  X operator()(D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) const {
    check_sigmas(sigmas, "LMS");
    (void)noise;  // deterministic
    if (order < 1) throw Error("LMS: order must be >= 1, got " + std::to_string(order));
    std::deque<X> derivatives;  // newest first
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const X denoised = model(x, sigmas[i]);
      derivatives.push_front(to_d(x, sigmas[i], denoised));
      if (derivatives.size() > static_cast<std::size_t>(order)) derivatives.pop_back();
      callback(i, sigmas[i], x, denoised);
      const int current = static_cast<int>(std::min<std::size_t>(i + 1, static_cast<std::size_t>(order)));
      X step = X(derivatives[0] * lms_coefficient(current, sigmas, i, 0));
      for (int j = 1; j < current; ++j) step = X(step + derivatives[j] * lms_coefficient(current, sigmas, i, j));
      x = X(x + step);
    }
    return x;
  }
};

LATENTKIT_NAMESPACE_END
