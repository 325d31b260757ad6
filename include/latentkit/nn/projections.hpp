// The two projections between an NCHW feature map and its tokens, each one GEMM without a transpose pass:
//   TokenProjection    tokens [B*HW, O] = x_b[C, HW]^T W^T + b for every item b: proj_in of a spatial transformer,
//                      q|k|v of the VAE's attention (a 1x1 conv that outputs token rows);
//   ChannelProjection  y_b[C, HW] += W [C, I] tokens_b[HW, I]^T + b: proj_out, written straight into the NCHW
//                      residual stream (the skip connection costs no extra pass).
// Checkpoints store these as 1x1 convs ([O, C, 1, 1]: SD1, the VAE) or Linear weights ([O, C]: SD2's
// use_linear_in_transformer); `conv_shaped` picks the view visit_parameters hands out. A TokenProjection may stack
// several state-dict projections of the same input as row blocks of one matrix (q|k|v: one GEMM).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/convert.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/nn/linear.hpp"
#include "latentkit/nn/profile.hpp"
#include "latentkit/nn/weights.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// One stacked part: its state-dict prefix and its number of output rows.
struct ProjectionPart {
  std::string name;
  index_t rows;
};

class TokenProjection {
 public:
  TokenProjection() = default;
  TokenProjection(index_t in_channels, std::vector<ProjectionPart> parts, bool conv_shaped, bool has_bias = true)
      : parts_(std::move(parts)), conv_shaped_(conv_shaped) {
    index_t rows = 0;
    for (const auto& p : parts_) rows += p.rows;
    linear = Linear(in_channels, rows, has_bias);
  }

  Linear linear;  ///< [sum of parts, C]

  index_t in_channels() const { return linear.in_features(); }
  index_t out_features() const { return linear.out_features(); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    index_t first = 0;
    for (const auto& p : parts_) {
      TensorView<float> w = linear.weight.view().slice(0, first, first + p.rows);
      visit(prefix + p.name + "weight", conv_shaped_ ? w.reshape({p.rows, in_channels(), 1, 1}) : w);
      if (linear.has_bias()) visit(prefix + p.name + "bias", linear.bias.view().slice(0, first, first + p.rows));
      first += p.rows;
    }
  }
  void prepare(const WeightOptions& options = {}) { linear.prepare(options); }

  /// tokens [B*H*W, O] (row b*HW + p is pixel p of item b) from x [B, C, H, W] (contiguous).
  void forward(TensorView<const float> x, TensorView<float> tokens, Profile* profile = nullptr) const {
    if (x.rank() != 4 || x.size(1) != in_channels() || !x.is_contiguous())
      throw ShapeError("TokenProjection: input " + x.shape().str() + " is not a contiguous [B, " +
                       std::to_string(in_channels()) + ", H, W]");
    const index_t batch = x.size(0), pixels = x.size(2) * x.size(3);
    if (tokens.rank() != 2 || tokens.size(0) != batch * pixels || tokens.size(1) != out_features() || !tokens.is_contiguous())
      throw ShapeError("TokenProjection: tokens " + tokens.shape().str() + " should be [" + std::to_string(batch * pixels) +
                       ", " + std::to_string(out_features()) + "]");
    for (index_t b = 0; b < batch; ++b)
      linear.apply(Transpose::yes, pixels, x.data() + b * in_channels() * pixels, pixels,
                   tokens.data() + b * pixels * out_features(), out_features(), false, profile);
  }

 private:
  std::vector<ProjectionPart> parts_;
  bool conv_shaped_ = true;
};

class ChannelProjection {
 public:
  ChannelProjection() = default;
  ChannelProjection(index_t in_features, index_t channels, bool conv_shaped)
      : weight(Dims{channels, in_features}), bias(Dims{channels}), conv_shaped_(conv_shaped) {}

  Tensor<float> weight;  ///< [C, I]
  Tensor<float> bias;    ///< [C]

  index_t channels() const { return weight.size(0); }
  index_t in_features() const { return weight.size(1); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    visit(prefix + "weight", conv_shaped_ ? weight.view().reshape({channels(), in_features(), 1, 1}) : weight.view());
    visit(prefix + "bias", bias.view());
  }
  void prepare(const WeightOptions& options = {}) {
    if (options.type == WeightType::bf16) {  // the bf16 values, widened: there is no packed-A vdpbf16ps path
      const Tensor<bf16> rounded = round_to_bf16(weight);
      packed_ = pack_weights_a(Transpose::no, channels(), in_features(), rounded.data(), in_features());
    } else {
      packed_ = pack_weights_a(Transpose::no, channels(), in_features(), weight.data(), in_features());
    }
    if (options.release_unpacked) weight = Tensor<float>(weight.shape());
  }

  /// y [B, C, H, W] += projection of tokens [B*H*W, I] (+ bias); y contiguous.
  void forward_add(TensorView<const float> tokens, TensorView<float> y, Profile* profile = nullptr) const {
    if (y.rank() != 4 || y.size(1) != channels() || !y.is_contiguous())
      throw ShapeError("ChannelProjection: output " + y.shape().str() + " is not a contiguous [B, " +
                       std::to_string(channels()) + ", H, W]");
    const index_t batch = y.size(0), pixels = y.size(2) * y.size(3), c = channels(), in = in_features();
    if (tokens.rank() != 2 || tokens.size(0) != batch * pixels || tokens.size(1) != in || !tokens.is_contiguous())
      throw ShapeError("ChannelProjection: tokens " + tokens.shape().str() + " should be [" +
                       std::to_string(batch * pixels) + ", " + std::to_string(in) + "]");
    const ProfileScope scope(profile, LayerKind::linear, 2.0 * static_cast<double>(batch * pixels) * c * in);
    for (index_t b = 0; b < batch; ++b) {
      float* yb = y.data() + b * c * pixels;
      LATENTKIT_OMP(parallel for schedule(static))
      for (index_t o = 0; o < c; ++o)
        for (index_t p = 0; p < pixels; ++p) yb[o * pixels + p] += bias.data()[o];
      const float* tb = tokens.data() + b * pixels * in;
      if (!packed_.empty())
        gemm(packed_, Transpose::yes, pixels, 1.0f, tb, in, 1.0f, yb, pixels);
      else
        gemm(Transpose::no, Transpose::yes, c, pixels, in, 1.0f, weight.data(), in, tb, in, 1.0f, yb, pixels);
    }
  }

 private:
  bool conv_shaped_ = true;
  PackedMatrix packed_;
};

LATENTKIT_NAMESPACE_END
