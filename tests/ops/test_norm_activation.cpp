// GroupNorm, LayerNorm, activations, softmax, GEGLU and resampling against float64 references.
#include <catch2/catch.hpp>

#include <string>

#include "latentkit/kernels/activation.hpp"
#include "latentkit/kernels/norm.hpp"
#include "latentkit/kernels/reference/ops.hpp"
#include "latentkit/kernels/resample.hpp"
#include "support.hpp"

using namespace latentkit;
using ops_test::u32;

namespace {

/// Error bound of a normalisation y = (x - mean) * rstd * gamma + beta computed in float: x - mean_f costs
/// u (|x| + |mean|) (mean rounded to float, then one subtraction); the statistics' relative error is <= ~70 u
/// (64 float terms per lane, then double), which scales |z|; the affine step and the store add 2 u |y| + u |beta|.
/// `z` = (x - mean) * rstd, `rstd` of the element's group/row, from the double reference.
double norm_bound(double x, double mean, double rstd, double z, double gamma, double beta, double y) {
  return 4.0 * u32 * (std::abs(gamma) * ((std::abs(x) + std::abs(mean)) * rstd + 80.0 * std::abs(z)) + std::abs(beta) + std::abs(y)) + 1e-30;
}

struct GroupCase {
  Dims shape;
  index_t groups;
  float eps;
  bool affine;
  double offset;  // a large mean offset tests the two-pass statistics
};

}  // namespace

TEST_CASE("group norm and fused group norm + SiLU match the float64 reference", "[norm]") {
  const GroupCase cases[] = {
      {{2, 64, 9, 7}, 32, 1e-5f, true, 0.0},  {{1, 320, 16, 16}, 32, 1e-6f, true, 0.0}, {{3, 6, 5}, 3, 1e-5f, false, 0.0},
      {{1, 96, 11, 13}, 32, 1e-5f, true, 100.0}, {{2, 4, 1, 1}, 2, 1e-6f, true, -3.0}, {{1, 32, 33, 17}, 1, 1e-5f, true, 5.0},
  };
  std::uint32_t seed = 1;
  for (const GroupCase& gc : cases) {
    CAPTURE(gc.shape.str(), gc.groups, gc.affine, gc.offset);
    const index_t c = gc.shape[1];
    const Tensor<float> x = ops_test::random_tensor(gc.shape, seed++, 2.0, gc.offset);
    const Tensor<float> gamma = ops_test::random_tensor({c}, seed++, 0.1, 1.0), beta = ops_test::random_tensor({c}, seed++, 0.05);
    const TensorView<const float> g = gc.affine ? gamma.view() : TensorView<const float>{};
    const TensorView<const float> b = gc.affine ? beta.view() : TensorView<const float>{};
    const Tensor<double> z = reference::group_norm(x.view(), gc.groups, gc.eps);
    for (bool silu : {false, true}) {
      CAPTURE(silu);
      const Tensor<float> got = silu ? group_norm_silu(x.view(), gc.groups, gc.eps, g, b) : group_norm(x.view(), gc.groups, gc.eps, g, b);
      const Tensor<double> want = reference::group_norm(x.view(), gc.groups, gc.eps, g, b, silu);
      const index_t spatial = x.numel() / (gc.shape[0] * c), per_group = c / gc.groups;
      const double ratio = ops_test::worst_ratio(got.view(), want, [&](index_t i) {
        const index_t ch = (i / spatial) % c;
        // mean and rstd of the element's group, recovered from the reference's normalised z = (x - mean) * rstd
        const index_t first = (i / spatial / c * c + ch / per_group * per_group) * spatial;
        const double x0 = x.data()[first], x1 = x.data()[first + 1 < x.numel() ? first + 1 : first];
        const double z0 = z.data()[first], z1 = z.data()[first + 1 < x.numel() ? first + 1 : first];
        const double rstd = (x1 != x0) ? (z1 - z0) / (x1 - x0) : 1.0 / std::sqrt(gc.eps);
        const double mean = x0 - z0 / rstd;
        const double ga = gc.affine ? gamma.data()[ch] : 1.0, be = gc.affine ? beta.data()[ch] : 0.0;
        const double bound = norm_bound(x.data()[i], mean, rstd, z.data()[i], ga, be, want.data()[i]);
        return silu ? 1.1 * bound + 8.0 * u32 * std::abs(want.data()[i]) : bound;  // SiLU' <= 1.1, exp/div ~ few u
      });
      INFO("worst error / bound = " << ratio);
      CHECK(ratio <= 1.0);
    }
  }
}

TEST_CASE("layer norm over the last axis matches the float64 reference, strided input too", "[norm]") {
  std::uint32_t seed = 40;
  for (index_t d : {1, 7, 64, 77, 768, 1030}) {
    for (double offset : {0.0, 50.0}) {
      CAPTURE(d, offset);
      const Tensor<float> x = ops_test::random_tensor({3, 5, d}, seed++, 1.5, offset);
      const Tensor<float> gamma = ops_test::random_tensor({d}, seed++, 0.1, 1.0), beta = ops_test::random_tensor({d}, seed++, 0.05);
      const Tensor<float> got = layer_norm(x.view(), 1e-5f, gamma.view(), beta.view());
      const Tensor<double> want = reference::layer_norm(x.view(), 1e-5, gamma.view(), beta.view());
      const Tensor<double> z = reference::layer_norm(x.view(), 1e-5);
      const double ratio = ops_test::worst_ratio(got.view(), want, [&](index_t i) {
        const index_t j = i % d, row = i - j;
        double mean = 0.0, rstd = 1.0 / std::sqrt(1e-5);
        if (d > 1) {
          const index_t o = j == 0 ? 1 : 0;  // another element of the same row
          if (x.data()[row + o] != x.data()[i]) rstd = (z.data()[row + o] - z.data()[i]) / (double(x.data()[row + o]) - x.data()[i]);
          mean = x.data()[i] - z.data()[i] / rstd;
        } else {
          mean = x.data()[i];
        }
        return norm_bound(x.data()[i], mean, rstd, z.data()[i], gamma.data()[j], beta.data()[j], want.data()[i]);
      });
      INFO("worst error / bound = " << ratio);
      CHECK(ratio <= 1.0);
    }
  }
  // A transposed (strided) input gives the same result as its dense copy.
  const Tensor<float> x = ops_test::random_tensor({33, 20}, 99);
  const TensorView<const float> xt = x.view().transpose();
  const Tensor<float> dense = contiguous(xt);
  CHECK(ops_test::bit_identical(layer_norm(xt, 1e-6f), layer_norm(dense.view(), 1e-6f)));
}

TEST_CASE("norms, softmax and activations are bit-identical for 1, 2 and 3 threads", "[norm][activation][threads]") {
  const Tensor<float> x = ops_test::random_tensor({2, 64, 24, 24}, 7, 1.0, 0.5);
  const Tensor<float> gamma = ops_test::random_tensor({64}, 8, 0.1, 1.0), beta = ops_test::random_tensor({64}, 9, 0.05);
  Tensor<float> gn[3], ln[3], sm[3], ge[3], gg[3];  // x spans several parallel chunks of the elementwise kernels
  for (int t = 1; t <= 3; ++t) {
    ops_test::ThreadScope scope(t);
    gn[t - 1] = group_norm_silu(x.view(), 32, 1e-5f, gamma.view(), beta.view());
    ln[t - 1] = layer_norm(x.view(), 1e-5f);
    sm[t - 1] = softmax(x.view());
    ge[t - 1] = gelu(x.view());
    gg[t - 1] = geglu(x.view());
  }
  for (int t = 1; t < 3; ++t) {
    CHECK(ops_test::bit_identical(gn[0], gn[t]));
    CHECK(ops_test::bit_identical(ln[0], ln[t]));
    CHECK(ops_test::bit_identical(sm[0], sm[t]));
    CHECK(ops_test::bit_identical(ge[0], ge[t]));
    CHECK(ops_test::bit_identical(gg[0], gg[t]));
  }
}

TEST_CASE("norms reject bad shapes with ShapeError", "[norm][errors]") {
  const Tensor<float> x = ops_test::random_tensor({2, 30, 4, 4}, 1), g = ops_test::random_tensor({29}, 2);
  CHECK_THROWS_AS(group_norm(x.view(), 32, 1e-5f), ShapeError);
  CHECK_THROWS_AS(group_norm(x.view(), 0, 1e-5f), ShapeError);
  CHECK_THROWS_AS(group_norm(x.view(), 3, 1e-5f, g.view(), g.view()), ShapeError);
  CHECK_THROWS_AS(layer_norm(x.view(), 1e-5f, g.view()), ShapeError);
}

TEST_CASE("elementwise activations match float64 within a few ulp", "[activation]") {
  // exp/erf/tanh of xsimd are within ~2 ulp; each formula adds a handful of roundings. For the GELUs, 1 + erf(.)
  // (or 1 + tanh) cancels for negative x, so the error is a few u relative to |x| rather than to |y|.
  const Tensor<float> x = ops_test::random_tensor({3, 1001}, 5, 4.0);
  const Tensor<float> wide = ops_test::random_tensor({77}, 6, 30.0);  // saturated regions and large |x|
  struct Fn {
    const char* name;
    Tensor<float> (*fast)(TensorView<const float>);
    double (*ref)(double);
    bool cancels;
    double arg_scale;  // exp(-a x) with a rounded to float: the argument's rounding, 2 u a |x|, is relative error of y
  };
  const Fn fns[] = {{"silu", &silu, &reference::silu, false, 0.0},
                    {"gelu", &gelu, &reference::gelu, true, 0.0},
                    {"gelu_tanh", &gelu_tanh, &reference::gelu_tanh, true, 0.0},
                    {"quick_gelu", &quick_gelu, &reference::quick_gelu, false, 1.702}};
  for (const Fn& fn : fns) {
    for (const Tensor<float>* in : {&x, &wide}) {
      CAPTURE(fn.name, in->numel());
      const Tensor<float> got = fn.fast(in->view());
      const Tensor<double> want = reference::map(in->view(), fn.ref);
      const double ratio = ops_test::worst_ratio(got.view(), want, [&](index_t i) {
        const double xi = std::abs(in->data()[i]), yi = std::abs(want.data()[i]);
        return 8.0 * u32 * (yi + (fn.cancels ? xi : 0.0)) + 2.0 * u32 * fn.arg_scale * xi * yi + 1e-37;
      });
      INFO("worst error / bound = " << ratio);
      CHECK(ratio <= 1.0);
    }
  }
  // In place on a strided view: same values as out of place on a dense copy.
  Tensor<float> y = ops_test::random_tensor({9, 13}, 7);
  const Tensor<float> dense_t = contiguous(y.view().transpose());
  const Tensor<float> expected = silu(dense_t.view());
  silu(y.view().transpose(), y.view().transpose());
  CHECK(ops_test::bit_identical(contiguous(TensorView<const float>(y.view().transpose())), expected));
}

TEST_CASE("softmax over the last axis matches float64 and maps -inf rows to zeros", "[activation]") {
  for (index_t cols : {1, 5, 8, 77, 4096}) {
    CAPTURE(cols);
    Tensor<float> x = ops_test::random_tensor({4, cols}, 10 + std::uint32_t(cols), 3.0);
    x(index_t{1}, index_t{0}) = -std::numeric_limits<float>::infinity();
    for (index_t j = 0; j < cols; ++j) x(index_t{3}, j) = -std::numeric_limits<float>::infinity();
    const Tensor<float> got = softmax(x.view());
    const Tensor<double> want = reference::softmax(x.view());
    // exp ~3 u plus 2 u |x - max| (rounded argument), the sum over `cols` terms and one division, relative to |y|.
    const double ratio = ops_test::worst_ratio(got.view(), want, [&](index_t i) {
      return u32 * (8.0 + 2.0 * 12.0 * 3.0 + double(cols)) * std::abs(want.data()[i]) + 1e-37;
    });
    INFO("worst error / bound = " << ratio);
    CHECK(ratio <= 1.0);
    for (index_t j = 0; j < cols; ++j) CHECK(got(index_t{3}, j) == 0.0f);
  }
}

TEST_CASE("GEGLU multiplies the first half by GELU of the second half", "[activation]") {
  for (index_t f : {1, 3, 16, 40, 1280}) {
    CAPTURE(f);
    const Tensor<float> x = ops_test::random_tensor({2, 3, 2 * f}, 20 + std::uint32_t(f), 2.0);
    const Tensor<float> got = geglu(x.view());
    const Tensor<double> want = reference::geglu(x.view());
    REQUIRE(got.shape() == Dims{2, 3, f});
    const double ratio = ops_test::worst_ratio(got.view(), want, [&](index_t i) {
      const index_t row = i / f, j = i % f;
      const double value = x.data()[row * 2 * f + j], gate = x.data()[row * 2 * f + f + j];
      return 8.0 * u32 * (std::abs(want.data()[i]) + std::abs(value) * (std::abs(reference::gelu(gate)) + std::abs(gate))) + 1e-37;
    });
    INFO("worst error / bound = " << ratio);
    CHECK(ratio <= 1.0);
  }
  // Swapping the halves changes the result: the gate really is the second half.
  const Tensor<float> x = ops_test::random_tensor({1, 8}, 3);
  Tensor<float> swapped(Dims{1, 8});
  for (index_t j = 0; j < 4; ++j) {
    swapped(index_t{0}, j) = x(index_t{0}, j + 4);
    swapped(index_t{0}, j + 4) = x(index_t{0}, j);
  }
  CHECK_FALSE(ops_test::bit_identical(geglu(x.view()), geglu(swapped.view())));
  CHECK_THROWS_AS(geglu(ops_test::random_tensor({2, 5}, 1).view()), ShapeError);
}

TEST_CASE("nearest 2x upsampling, channel concatenation and residual add are exact", "[resample]") {
  const Tensor<float> x = ops_test::random_tensor({2, 3, 5, 7}, 1);
  const Tensor<float> up = upsample_nearest2x(x.view());
  const Tensor<double> want = reference::upsample_nearest2x(x.view());
  REQUIRE(up.shape() == Dims{2, 3, 10, 14});
  for (index_t i = 0; i < up.numel(); ++i) REQUIRE(double(up.data()[i]) == want.data()[i]);
  // strided input (a channel slice) and strided output
  const TensorView<const float> sliced = x.view().slice(1, 1, 3);
  Tensor<float> big(Dims{2, 4, 10, 14});
  upsample_nearest2x(sliced, big.view().slice(1, 2, 4));
  for (index_t n = 0; n < 2; ++n)
    for (index_t c = 0; c < 2; ++c)
      for (index_t h = 0; h < 10; ++h)
        for (index_t w = 0; w < 14; ++w) REQUIRE(big(n, c + 2, h, w) == x(n, c + 1, h / 2, w / 2));

  const Tensor<float> a = ops_test::random_tensor({2, 3, 4, 5}, 2), b = ops_test::random_tensor({2, 6, 4, 5}, 3);
  const Tensor<float> cat = concat_channels(a.view(), b.view());
  REQUIRE(cat.shape() == Dims{2, 9, 4, 5});
  for (index_t n = 0; n < 2; ++n)
    for (index_t c = 0; c < 9; ++c)
      for (index_t h = 0; h < 4; ++h)
        for (index_t w = 0; w < 5; ++w) REQUIRE(cat(n, c, h, w) == (c < 3 ? a(n, c, h, w) : b(n, c - 3, h, w)));
  CHECK_THROWS_AS(concat_channels(a.view(), ops_test::random_tensor({2, 6, 4, 6}, 4).view()), ShapeError);

  const Tensor<float> r1 = ops_test::random_tensor({3, 1000}, 5), r2 = ops_test::random_tensor({3, 1000}, 6);
  Tensor<float> sum = r1.clone();
  residual_add(sum.view(), r2.view(), sum.view());  // in place, as the UNet does
  for (index_t i = 0; i < sum.numel(); ++i) REQUIRE(sum.data()[i] == r1.data()[i] + r2.data()[i]);
  const Tensor<float> sum_t = residual_add(r1.view().transpose(), r2.view().transpose());
  for (index_t i = 0; i < 1000; ++i)
    for (index_t j = 0; j < 3; ++j) REQUIRE(sum_t(i, j) == r1(j, i) + r2(j, i));
  CHECK_THROWS_AS(residual_add(r1.view(), a.view()), ShapeError);
}
