// Multi-head self-attention with torch nn.MultiheadAttention / HF CLIPAttention semantics:
// q|k|v = x W_in^T + b_in, per-head softmax(q k^T / sqrt(d)) v (optionally causal), then out_proj.
// The q, k and v projections always live in one [3W, W] matrix (rows q|k|v) so the forward pass does a single GEMM
// and hands strided views of its output to the fused attention kernel. Checkpoints store that matrix either packed
// (`in_proj_weight`, open_clip / openai CLIP) or as three Linear layers (`q_proj`, `k_proj`, `v_proj`, HF): the
// parameter walk yields row blocks of the packed matrix under the separate names.
#pragma once
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/attention.hpp"
#include "latentkit/nn/linear.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// How a checkpoint stores the q/k/v projections.
enum class QkvLayout {
  separate,  ///< q_proj.{weight,bias}, k_proj.*, v_proj.* (HF CLIPAttention)
  packed,    ///< in_proj_weight [3W, W], in_proj_bias [3W], rows q|k|v (nn.MultiheadAttention)
};

class MultiheadSelfAttention {
 public:
  MultiheadSelfAttention() = default;
  MultiheadSelfAttention(index_t width, index_t heads, QkvLayout layout)
      : in_proj(width, 3 * width), out_proj(width, width), heads_(heads), layout_(layout) {
    if (heads < 1 || width % heads != 0)
      throw ShapeError("MultiheadSelfAttention: width " + std::to_string(width) + " is not a multiple of " +
                       std::to_string(heads) + " heads");
  }

  Linear in_proj;   ///< [3W, W], rows q|k|v
  Linear out_proj;  ///< [W, W]

  index_t width() const { return out_proj.out_features(); }
  index_t heads() const noexcept { return heads_; }
  QkvLayout layout() const noexcept { return layout_; }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    if (layout_ == QkvLayout::packed) {
      visit(prefix + "in_proj_weight", in_proj.weight.view());
      visit(prefix + "in_proj_bias", in_proj.bias.view());
    } else {
      const index_t w = width();
      const char* names[] = {"q_proj.", "k_proj.", "v_proj."};
      for (index_t p = 0; p < 3; ++p) {
        visit(prefix + names[p] + "weight", in_proj.weight.view().slice(0, p * w, (p + 1) * w));
        visit(prefix + names[p] + "bias", in_proj.bias.view().slice(0, p * w, (p + 1) * w));
      }
    }
    out_proj.visit_parameters(visit, prefix + "out_proj.");
  }
  void prepare() {
    in_proj.prepare();
    out_proj.prepare();
  }

  /// y [B, L, W] = attention over x [B, L, W] (both contiguous; y must not alias x).
  void forward(TensorView<const float> x, TensorView<float> y, bool causal) const {
    const index_t w = width();
    if (x.rank() != 3 || x.size(2) != w || !(y.shape() == x.shape()) || !x.is_contiguous() || !y.is_contiguous())
      throw ShapeError("MultiheadSelfAttention: x " + x.shape().str() + ", y " + y.shape().str() +
                       "; expected contiguous [batch, length, " + std::to_string(w) + "] for both");
    const index_t b = x.size(0), l = x.size(1), d = w / heads_;
    Tensor<float> qkv({b * l, 3 * w});
    in_proj.forward(x.reshape({b * l, w}), qkv.view());
    // [B*L, 3W] rows seen as [B, H, L, d] without copies: head h of q starts at column h*d, k at W + h*d, v at 2W + h*d.
    const Dims shape{b, heads_, l, d}, qkv_strides{l * 3 * w, d, 3 * w, 1};
    const TensorView<const float> q(qkv.data(), shape, qkv_strides), k(qkv.data() + w, shape, qkv_strides),
        v(qkv.data() + 2 * w, shape, qkv_strides);
    Tensor<float> heads_out({b * l, w});
    AttentionOptions options;
    options.causal = causal;
    attention(q, k, v, TensorView<float>(heads_out.data(), shape, Dims{l * w, d, w, 1}), options);
    out_proj.forward(heads_out.view(), y.reshape({b * l, w}));
  }

 private:
  index_t heads_ = 1;
  QkvLayout layout_ = QkvLayout::packed;
};

LATENTKIT_NAMESPACE_END
