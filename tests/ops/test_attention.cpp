// Fused attention against the float64 reference: shapes, layouts, masks, determinism, working memory.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "latentkit/kernels/attention.hpp"
#include "latentkit/kernels/reference/ops.hpp"
#include "support.hpp"

using namespace latentkit;
using ops_test::u32;

namespace {

struct Case {
  index_t b, h, lq, lk, d, dv;
  bool causal;
  double q_sigma;  // larger sigma: sharper softmax (scores of several units)
};

/// Float32 error bound of fused attention for these inputs (u = 2^-24, A = max_ij scale * sum_c |q_ic k_jc|,
/// S = max |score|): scores carry <= (d+1) u A; exp(s - m) adds 2 u |s - m| <= 4 u S and its own ~3 u; each key block
/// rescales once (~2 u); the weighted sums over Lk keys (numerator and l) add <= 2 Lk u. Relative weight errors
/// become absolute output errors through max|v| because the weights sum to 1.
double attention_bound(TensorView<const float> q, TensorView<const float> k, TensorView<const float> v, double scale,
                       TensorView<const float> mask) {
  double a = 0.0, s = 0.0, vmax = 0.0;
  const index_t lq = q.size(2), lk = k.size(2), d = q.size(3);
  for (index_t b = 0; b < q.size(0); ++b)
    for (index_t h = 0; h < q.size(1); ++h)
      for (index_t i = 0; i < lq; ++i)
        for (index_t j = 0; j < lk; ++j) {
          double abs_dot = 0.0, dot = 0.0;
          for (index_t c = 0; c < d; ++c) {
            abs_dot += std::abs(double(q(b, h, i, c)) * k(b, h, j, c));
            dot += double(q(b, h, i, c)) * k(b, h, j, c);
          }
          a = std::max(a, abs_dot * scale);
          double sc = dot * scale;
          if (mask.data() && std::isfinite(mask(b, h, i, j))) sc += mask(b, h, i, j);
          s = std::max(s, std::abs(sc));
        }
  v.for_each([&](const float& x) { vmax = std::max(vmax, double(std::abs(x))); });
  const double blocks = double((lk + 63) / 64);
  return vmax * u32 * (2.0 * (double(d) + 1.0) * a + 4.0 * s + 10.0 + 2.0 * blocks + 2.0 * double(lk)) + 1e-30;
}

void check_case(const Case& c, std::uint32_t seed, bool with_mask, bool fused_layout) {
  CAPTURE(c.b, c.h, c.lq, c.lk, c.d, c.dv, c.causal, with_mask, fused_layout);
  // Fused layout: [B, L, H*d] buffers viewed as [B, H, L, d] (strided, no copy).
  const auto make = [&](index_t len, index_t dim, std::uint32_t s, double sigma) {
    if (!fused_layout) return ops_test::random_tensor({c.b, c.h, len, dim}, s, sigma);
    return ops_test::random_tensor({c.b, len, c.h * dim}, s, sigma);
  };
  const auto as_bhld = [&](const Tensor<float>& t, index_t len, index_t dim) {
    TensorView<const float> view = t.view();
    return fused_layout ? view.reshape({c.b, len, c.h, dim}).permute({0, 2, 1, 3}) : view;
  };
  const Tensor<float> qt = make(c.lq, c.d, seed, c.q_sigma), kt = make(c.lk, c.d, seed + 1, 1.0),
                      vt = make(c.lk, c.dv, seed + 2, 1.0);
  const auto q = as_bhld(qt, c.lq, c.d), k = as_bhld(kt, c.lk, c.d), v = as_bhld(vt, c.lk, c.dv);

  AttentionOptions opt;
  opt.causal = c.causal;
  Tensor<float> mask = ops_test::random_tensor({c.b, 1, 1, c.lk}, seed + 3, 0.5);  // key padding mask per batch
  if (with_mask) {
    for (index_t b = 0; b < c.b; ++b)
      for (index_t j = 0; j < c.lk; j += 3) mask(b, index_t{0}, index_t{0}, j) = -std::numeric_limits<float>::infinity();
    opt.mask = mask.view();
  }
  Tensor<float> out_buf = fused_layout ? Tensor<float>(Dims{c.b, c.lq, c.h * c.dv}) : Tensor<float>(Dims{c.b, c.h, c.lq, c.dv});
  const TensorView<float> out = fused_layout
      ? out_buf.view().reshape({c.b, c.lq, c.h, c.dv}).permute({0, 2, 1, 3}) : out_buf.view();
  attention(q, k, v, out, opt);

  const Tensor<double> want = reference::attention(q, k, v, opt);
  const double bound = attention_bound(q, k, v, 1.0 / std::sqrt(double(c.d)), opt.mask.data() ? opt.mask.broadcast_to({c.b, c.h, c.lq, c.lk}) : TensorView<const float>{});
  const double ratio = ops_test::worst_ratio(out, want, [&](index_t) { return bound; });
  INFO("worst error / bound = " << ratio);  // the bound is a worst case: typical errors are far smaller
  CHECK(ratio <= 1.0);
}

const Case cases[] = {
    {1, 1, 1, 1, 1, 1, false, 1.0},      {2, 3, 37, 53, 40, 40, false, 1.0},  {1, 2, 130, 77, 64, 64, false, 1.0},
    {1, 1, 77, 77, 64, 64, true, 1.0},   {2, 2, 65, 129, 33, 17, false, 1.0}, {1, 2, 200, 200, 40, 40, true, 3.0},
    {1, 1, 20, 30, 160, 160, false, 1.0}, {1, 2, 64, 200, 80, 80, false, 4.0}, {3, 1, 129, 7, 5, 9, true, 1.0},
    {1, 1, 9, 300, 8, 8, false, 2.0},
};

}  // namespace

TEST_CASE("fused attention matches the float64 reference over many shapes", "[attention]") {
  std::uint32_t seed = 100;
  for (const Case& c : cases) {
    check_case(c, seed, false, false);
    seed += 10;
  }
}

TEST_CASE("fused attention reads strided [B, L, H*d] layouts and writes into one", "[attention]") {
  std::uint32_t seed = 300;
  for (const Case& c : cases) {
    check_case(c, seed, false, true);
    seed += 10;
  }
}

TEST_CASE("fused attention applies an additive key mask, with and without causality", "[attention]") {
  std::uint32_t seed = 500;
  for (const Case& c : cases) {
    if (c.lk < 2) continue;  // every third key is -inf; a single key would mask whole rows (tested below)
    check_case(c, seed, true, false);
    seed += 10;
  }
}

TEST_CASE("fused attention gives zeros for a query whose keys are all masked", "[attention]") {
  const Tensor<float> q = ops_test::random_tensor({1, 2, 70, 24}, 1), k = ops_test::random_tensor({1, 2, 90, 24}, 2),
                      v = ops_test::random_tensor({1, 2, 90, 24}, 3);
  Tensor<float> mask = ops_test::random_tensor({70, 90}, 4);
  for (index_t j = 0; j < 90; ++j) mask(index_t{5}, j) = mask(index_t{66}, j) = -std::numeric_limits<float>::infinity();
  AttentionOptions opt;
  opt.mask = mask.view();
  const Tensor<float> out = attention(q.view(), k.view(), v.view(), opt);
  const Tensor<double> want = reference::attention(q.view(), k.view(), v.view(), opt);
  for (index_t h = 0; h < 2; ++h)
    for (index_t c = 0; c < 24; ++c) {
      CHECK(out(index_t{0}, h, index_t{5}, c) == 0.0f);
      CHECK(out(index_t{0}, h, index_t{66}, c) == 0.0f);
    }
  double worst = 0.0;
  for (index_t i = 0; i < out.numel(); ++i) worst = std::max(worst, std::abs(out.data()[i] - want.data()[i]));
  CHECK(worst < 1e-5);
}

TEST_CASE("fused attention honours an explicit scale", "[attention]") {
  const Tensor<float> q = ops_test::random_tensor({2, 1, 33, 16}, 7), k = ops_test::random_tensor({2, 1, 45, 16}, 8),
                      v = ops_test::random_tensor({2, 1, 45, 12}, 9);
  AttentionOptions opt;
  opt.scale = 0.7f;
  const Tensor<float> out = attention(q.view(), k.view(), v.view(), opt);
  const Tensor<double> want = reference::attention(q.view(), k.view(), v.view(), opt);
  double worst = 0.0;
  for (index_t i = 0; i < out.numel(); ++i) worst = std::max(worst, std::abs(out.data()[i] - want.data()[i]));
  CHECK(worst < 1e-5);
  opt.scale = 0.25f;
  const Tensor<float> other = attention(q.view(), k.view(), v.view(), opt);
  CHECK_FALSE(ops_test::bit_identical(out, other));
}

TEST_CASE("fused attention is bit-identical for 1, 2 and 3 threads", "[attention][threads]") {
  const Tensor<float> q = ops_test::random_tensor({2, 3, 150, 40}, 11), k = ops_test::random_tensor({2, 3, 170, 40}, 12),
                      v = ops_test::random_tensor({2, 3, 170, 40}, 13);
  for (bool causal : {false, true}) {
    AttentionOptions opt;
    opt.causal = causal;
    Tensor<float> outs[3];
    for (int t = 1; t <= 3; ++t) {
      ops_test::ThreadScope scope(t);
      outs[t - 1] = attention(q.view(), k.view(), v.view(), opt);
    }
    CHECK(ops_test::bit_identical(outs[0], outs[1]));
    CHECK(ops_test::bit_identical(outs[0], outs[2]));
  }
}

TEST_CASE("fused attention's working memory is independent of sequence length", "[attention][memory]") {
  // SD1.5's first level: Lq = Lk = 4096, 8 heads of 40. A materialised score matrix would be Lq * Lk * 4 bytes per head.
  for (int threads : {1, 2, 16}) {
    CAPTURE(threads);
    // Even 16 threads together use far less than one head's 4096 x 4096 score matrix ...
    CHECK(attention_workspace_bytes(40, 40, threads) * 16 < std::size_t{4096} * 4096 * 4);
    // ... and one thread less than the score matrix of SD's smallest level (16x16 latents: 256 tokens, d = 160).
    CHECK(attention_workspace_bytes(160, 160, 1) < std::size_t{256} * 256 * 4);
  }
  CHECK(attention_workspace_bytes(40, 40, 2) == 2 * attention_workspace_bytes(40, 40, 1));
}

TEST_CASE("fused attention rejects inconsistent shapes with ShapeError", "[attention][errors]") {
  const Tensor<float> q = ops_test::random_tensor({1, 2, 8, 16}, 1), k = ops_test::random_tensor({1, 2, 9, 16}, 2),
                      v = ops_test::random_tensor({1, 2, 9, 16}, 3), k_bad = ops_test::random_tensor({1, 2, 9, 15}, 4),
                      v_bad = ops_test::random_tensor({1, 2, 8, 16}, 5), q3 = ops_test::random_tensor({2, 8, 16}, 6);
  CHECK_THROWS_AS(attention(q.view(), k_bad.view(), v.view()), ShapeError);
  CHECK_THROWS_AS(attention(q.view(), k.view(), v_bad.view()), ShapeError);
  CHECK_THROWS_AS(attention(q3.view(), k.view(), v.view()), ShapeError);
  Tensor<float> out(Dims{1, 2, 8, 15});
  CHECK_THROWS_AS(attention(q.view(), k.view(), v.view(), out.view()), ShapeError);
  const Tensor<float> mask = ops_test::random_tensor({8, 10}, 7);
  AttentionOptions opt;
  opt.mask = mask.view();
  CHECK_THROWS_AS(attention(q.view(), k.view(), v.view(), opt), ShapeError);
}
