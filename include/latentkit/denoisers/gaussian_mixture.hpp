// The exact denoiser of an isotropic Gaussian mixture: latentkit's embedded model for tests, examples and benchmarks.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/samplers/latent.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Data x0 ~ sum_k w_k N(mu_k, s_k^2 I) in `dim` dimensions. For x = x0 + sigma n the MMSE denoiser is closed form:
///   v_k = s_k^2 + sigma^2,   l_k = log w_k - (dim/2) log v_k - |x - mu_k|^2 / (2 v_k)   (2 pi cancels in the softmax)
///   D(x, sigma) = sum_k softmax(l)_k (mu_k + (s_k^2 / v_k)(x - mu_k)).
/// Latents have shape (B, ...) with dim elements per batch row; each row is denoised independently, in double
/// whatever the latent's scalar type, with a fixed order of operations (bit-identical for any thread count).
class GaussianMixtureDenoiser {
 public:
  /// means: K*dim values, row k = mu_k; weights: K positive values (normalised here); variances: K values s_k^2 > 0.
  GaussianMixtureDenoiser(std::vector<double> means, std::vector<double> weights, std::vector<double> variances,
                          double sigma_min, double sigma_max)
      : means_(std::move(means)), log_weights_(std::move(weights)), variances_(std::move(variances)),
        sigma_min_(sigma_min), sigma_max_(sigma_max) {
    const std::size_t k = log_weights_.size();
    if (k == 0) throw ShapeError("GaussianMixtureDenoiser: at least one component expected, got 0 weights");
    if (variances_.size() != k)
      throw ShapeError("GaussianMixtureDenoiser: " + std::to_string(k) + " weights but " +
                       std::to_string(variances_.size()) + " variances");
    if (means_.empty() || means_.size() % k != 0)
      throw ShapeError("GaussianMixtureDenoiser: means must hold K*dim values with K=" + std::to_string(k) + ", got " +
                       std::to_string(means_.size()));
    dim_ = means_.size() / k;
    double total = 0;
    for (double w : log_weights_) {
      if (!(w > 0) || !std::isfinite(w)) throw Error("GaussianMixtureDenoiser: weights must be finite and > 0");
      total += w;
    }
    for (double& w : log_weights_) w = std::log(w / total);
    for (double v : variances_)
      if (!(v > 0) || !std::isfinite(v)) throw Error("GaussianMixtureDenoiser: variances must be finite and > 0");
    if (!(sigma_min > 0) || !(sigma_max > sigma_min))
      throw Error("GaussianMixtureDenoiser: expected 0 < sigma_min < sigma_max");
  }

  std::size_t components() const noexcept { return variances_.size(); }
  std::size_t dim() const noexcept { return dim_; }
  double sigma_min() const noexcept { return sigma_min_; }
  double sigma_max() const noexcept { return sigma_max_; }

  template <ContiguousLatent X>
  X operator()(const X& x, double sigma) const {
    const auto& shape = x.shape();
    if (std::size(shape) < 1 || shape[0] == 0)
      throw ShapeError("GaussianMixtureDenoiser: latent must have shape (B, ...) with B >= 1");
    const std::size_t batch = static_cast<std::size_t>(shape[0]);
    if (x.size() != batch * dim_)
      throw ShapeError("GaussianMixtureDenoiser: each batch row must hold " + std::to_string(dim_) + " values, got " +
                       std::to_string(x.size() / batch));
    if (!(sigma >= 0) || !std::isfinite(sigma))
      throw Error("GaussianMixtureDenoiser: sigma must be finite and >= 0, got " + std::to_string(sigma));
    X out = x;
    const auto* in = x.data();
    auto* res = out.data();
    const long rows = static_cast<long>(batch);
    // Rows are independent, so threading never changes the bits; below ~16k multiply-adds per call (e.g. 4 rows of
    // 64 x 3 components) the OpenMP fork/join costs more than the work, so small batches stay serial.
    const bool parallel = batch * means_.size() >= parallel_work_threshold;
    (void)parallel;  // unused when OpenMP is off
    LATENTKIT_OMP(parallel for schedule(static) if(parallel))
    for (long b = 0; b < rows; ++b) denoise_row(in + b * dim_, res + b * dim_, sigma);
    return out;
  }

 private:
  static constexpr std::size_t parallel_work_threshold = std::size_t{1} << 14;  // rows x components x dim
  template <class T>
  void denoise_row(const T* x, T* out, double sigma) const {
    const std::size_t k_count = variances_.size();
    constexpr std::size_t small = 16;  // components held on the stack; larger mixtures use the heap
    double logits_small[small];
    std::vector<double> logits_large(k_count > small ? k_count : 0);
    double* logits = k_count > small ? logits_large.data() : logits_small;
    const double s2 = sigma * sigma;
    double max_logit = -std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < k_count; ++k) {
      const double v = variances_[k] + s2;
      const double* mu = means_.data() + k * dim_;
      double dist2 = 0;
      for (std::size_t j = 0; j < dim_; ++j) {
        const double diff = static_cast<double>(x[j]) - mu[j];
        dist2 += diff * diff;
      }
      logits[k] = log_weights_[k] - 0.5 * static_cast<double>(dim_) * std::log(v) - dist2 / (2 * v);
      max_logit = std::max(max_logit, logits[k]);
    }
    double norm = 0;
    for (std::size_t k = 0; k < k_count; ++k) norm += (logits[k] = std::exp(logits[k] - max_logit));
    for (std::size_t j = 0; j < dim_; ++j) {
      double acc = 0;
      for (std::size_t k = 0; k < k_count; ++k) {
        const double mu = means_[k * dim_ + j];
        const double shrink = variances_[k] / (variances_[k] + s2);
        acc += (logits[k] / norm) * (mu + shrink * (static_cast<double>(x[j]) - mu));
      }
      out[j] = static_cast<T>(acc);
    }
  }

  std::vector<double> means_;        // (K, dim)
  std::vector<double> log_weights_;  // (K): log of the normalised weights
  std::vector<double> variances_;    // (K): s_k^2
  std::size_t dim_ = 0;
  double sigma_min_, sigma_max_;
};

LATENTKIT_NAMESPACE_END
