// Multi-head attention of the SD UNet's transformer blocks (ldm attention.CrossAttention): queries from the tokens,
// keys and values from the tokens themselves (attn1, self-attention) or from the text context (attn2), bias-free
// to_q / to_k / to_v, and to_out.0 with bias:
//   y += to_out(softmax(q k^T / sqrt(d)) v)   per head, d = dim_head
// The projections that read the same input share one GEMM (self: q|k|v, cross: k|v) whose output the fused
// attention kernel reads through strided [B, H, L, d] views; to_out accumulates onto the residual stream.
#pragma once
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/kernels/attention.hpp"
#include "latentkit/nn/linear.hpp"
#include "latentkit/nn/profile.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Fused attention over views into projection buffers: q rows [B*Lq, ldq] at column offset 0 per head block,
/// k/v rows [B*Lk, ldkv]; writes heads side by side into out [B*Lq, H*dv].
inline void attention_over_rows(const float* q, index_t ldq, const float* k, const float* v, index_t ldkv, float* out,
                                index_t batch, index_t heads, index_t lq, index_t lk, index_t dim_head,
                                Profile* profile = nullptr) {
  const double flops = 4.0 * static_cast<double>(batch * heads) * static_cast<double>(lq) * static_cast<double>(lk) *
                       static_cast<double>(dim_head);
  const ProfileScope scope(profile, LayerKind::attention, flops);
  const Dims qs{batch, heads, lq, dim_head}, ks{batch, heads, lk, dim_head};
  const TensorView<const float> qv(q, qs, Dims{lq * ldq, dim_head, ldq, 1});
  const TensorView<const float> kv(k, ks, Dims{lk * ldkv, dim_head, ldkv, 1});
  const TensorView<const float> vv(v, ks, Dims{lk * ldkv, dim_head, ldkv, 1});
  const index_t w = heads * dim_head;
  attention(qv, kv, vv, TensorView<float>(out, qs, Dims{lq * w, dim_head, w, 1}));
}

class CrossAttention {
 public:
  CrossAttention() = default;
  /// `context_dim` 0: self-attention (attn1).
  CrossAttention(index_t query_dim, index_t context_dim, index_t heads, index_t dim_head)
      : heads_(heads), dim_head_(dim_head), self_(context_dim == 0) {
    const index_t inner = heads * dim_head;
    if (self_) {
      qkv = Linear(query_dim, 3 * inner, false);
    } else {
      q = Linear(query_dim, inner, false);
      kv = Linear(context_dim, 2 * inner, false);
    }
    out = Linear(inner, query_dim);
  }

  Linear qkv;      ///< self-attention: [3I, D], rows to_q | to_k | to_v
  Linear q, kv;    ///< cross-attention: to_q [I, D]; to_k | to_v [2I, Dc]
  Linear out;      ///< to_out.0 [D, I] + bias

  index_t heads() const noexcept { return heads_; }
  index_t dim_head() const noexcept { return dim_head_; }
  index_t inner() const noexcept { return heads_ * dim_head_; }
  bool is_self_attention() const noexcept { return self_; }
  index_t context_dim() const { return self_ ? 0 : kv.in_features(); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    const index_t i = inner();
    if (self_) {
      visit(prefix + "to_q.weight", qkv.weight.view().slice(0, 0, i));
      visit(prefix + "to_k.weight", qkv.weight.view().slice(0, i, 2 * i));
      visit(prefix + "to_v.weight", qkv.weight.view().slice(0, 2 * i, 3 * i));
    } else {
      visit(prefix + "to_q.weight", q.weight.view());
      visit(prefix + "to_k.weight", kv.weight.view().slice(0, 0, i));
      visit(prefix + "to_v.weight", kv.weight.view().slice(0, i, 2 * i));
    }
    out.visit_parameters(visit, prefix + "to_out.0.");
  }
  void prepare(const WeightOptions& options = {}) {
    if (self_) qkv.prepare(options);
    else q.prepare(options), kv.prepare(options);
    out.prepare(options);
  }

  /// y [B*L, D] += attention of x [B*L, D] (tokens of `batch` items) over itself or over context [B, Lc, Dc].
  void forward_add(TensorView<const float> x, index_t batch, TensorView<const float> context, TensorView<float> y,
                   Profile* profile = nullptr) const {
    const index_t rows = x.size(0), length = batch > 0 ? rows / batch : 0, i = inner();
    Tensor<float> heads_out({rows, i});
    if (self_) {
      Tensor<float> proj({rows, 3 * i});
      qkv.forward(x, proj.view(), profile);
      attention_over_rows(proj.data(), 3 * i, proj.data() + i, proj.data() + 2 * i, 3 * i, heads_out.data(), batch,
                          heads_, length, length, dim_head_, profile);
    } else {
      if (context.rank() != 3 || context.size(0) != batch || context.size(2) != context_dim() || !context.is_contiguous())
        throw ShapeError("CrossAttention: context " + context.shape().str() + " should be a contiguous [" +
                         std::to_string(batch) + ", tokens, " + std::to_string(context_dim()) + "]");
      const index_t lc = context.size(1);
      Tensor<float> qp({rows, i}), kvp({batch * lc, 2 * i});
      q.forward(x, qp.view(), profile);
      kv.forward(context.reshape({batch * lc, context_dim()}), kvp.view(), profile);
      attention_over_rows(qp.data(), i, kvp.data(), kvp.data() + i, 2 * i, heads_out.data(), batch, heads_, length, lc,
                          dim_head_, profile);
    }
    out.apply(Transpose::no, rows, heads_out.data(), i, y.data(), y.stride(0), true, profile);
  }

 private:
  index_t heads_ = 1, dim_head_ = 1;
  bool self_ = true;
};

LATENTKIT_NAMESPACE_END
