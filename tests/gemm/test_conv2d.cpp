// conv2d (implicit GEMM) against the float64 reference: 3x3 stride 1 and 2 (VAE padding), 1x1, rectangular
// kernels, odd sizes, batches, bias, bf16/f16 weights, strided input, thread determinism, bad shapes.
#include <cstring>

#include "gemm_test_support.hpp"
#include "latentkit/kernels/conv2d.hpp"
#include "latentkit/kernels/reference/gemm_conv.hpp"

using namespace latentkit;
using gemm_test::check_within_bound;
using gemm_test::random_values;

namespace {

struct ConvCase {
  index_t batch, channels, height, width, out_channels, kernel_h, kernel_w;
  Conv2dGeometry geometry;
  bool bias;
};

const ConvCase cases[] = {
    {1, 3, 7, 9, 5, 3, 3, Conv2dGeometry::padded(1), true},            // 3x3 "same", odd H/W
    {2, 8, 16, 16, 12, 3, 3, Conv2dGeometry::padded(1), true},         // batch 2, W = one register panel
    {1, 20, 33, 70, 17, 3, 3, Conv2dGeometry::padded(1), false},       // K = 180, panels spanning rows
    {1, 32, 64, 64, 8, 3, 3, Conv2dGeometry::padded(1), true},         // K = 288 > KC, SD-like width
    {2, 6, 9, 11, 7, 3, 3, Conv2dGeometry{2, 2, 0, 1, 0, 1}, true},    // VAE downsample: stride 2, pad (0,1,0,1)
    {1, 5, 16, 15, 4, 3, 3, Conv2dGeometry::padded(1, 2), false},      // stride 2, symmetric pad
    {1, 3, 21, 40, 5, 3, 3, Conv2dGeometry{2, 2, 0, 1, 0, 1}, true},   // stride 2, rows long enough for vectors
    {3, 40, 5, 6, 9, 1, 1, Conv2dGeometry{}, true},                    // 1x1
    {1, 4, 10, 13, 3, 1, 3, Conv2dGeometry{1, 1, 0, 0, 2, 1}, true},   // 1x3, asymmetric horizontal pad
    {1, 2, 4, 4, 3, 5, 5, Conv2dGeometry::padded(2), true},            // kernel larger than half the image
    {1, 300, 6, 5, 150, 3, 3, Conv2dGeometry::padded(1), true},        // K = 2700, M > MC
};

Tensor<float> random_tensor(const Dims& shape, std::uint32_t seed) {
  Tensor<float> t(shape);
  const auto v = random_values<float>(static_cast<std::size_t>(t.numel()), seed);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

/// conv2d with weights stored as T, checked against the reference on the rounded weights.
template <class T>
void check_case(const ConvCase& cs, TensorView<const float> input, std::uint32_t seed) {
  Tensor<T> weight({cs.out_channels, cs.channels, cs.kernel_h, cs.kernel_w});
  const auto wv = random_values<T>(static_cast<std::size_t>(weight.numel()), seed);
  std::copy(wv.begin(), wv.end(), weight.data());
  const Tensor<float> bias = random_tensor({cs.out_channels}, seed + 1);
  const TensorView<const float> bias_view = cs.bias ? TensorView<const float>(bias.view()) : TensorView<const float>();
  const Tensor<float> out = conv2d(input, TensorView<const T>(weight.view()), bias_view, cs.geometry);

  const reference::ConvGeometry g{cs.geometry.stride_h, cs.geometry.stride_w, cs.geometry.pad_top,
                                  cs.geometry.pad_bottom, cs.geometry.pad_left, cs.geometry.pad_right};
  const auto W = [&](index_t o, index_t c, index_t y, index_t x) { return static_cast<float>(weight(o, c, y, x)); };
  const auto X = [&](index_t b, index_t c, index_t y, index_t x) { return input(b, c, y, x); };
  index_t out_h = 0, out_w = 0;
  const auto exact = reference::conv2d(cs.batch, cs.channels, cs.height, cs.width, cs.out_channels, cs.kernel_h,
                                       cs.kernel_w, g, X, W, [&](index_t o) { return cs.bias ? bias(o) : 0.0f; }, out_h, out_w);
  const auto magnitude = reference::conv2d(
      cs.batch, cs.channels, cs.height, cs.width, cs.out_channels, cs.kernel_h, cs.kernel_w, g,
      [&](index_t b, index_t c, index_t y, index_t x) { return std::abs(X(b, c, y, x)); },
      [&](index_t o, index_t c, index_t y, index_t x) { return std::abs(W(o, c, y, x)); },
      [&](index_t o) { return cs.bias ? std::abs(bias(o)) : 0.0f; }, out_h, out_w);
  REQUIRE(out.shape() == Dims{cs.batch, cs.out_channels, out_h, out_w});
  const std::vector<float> computed(out.data(), out.data() + out.numel());
  check_within_bound(exact, magnitude, computed, cs.channels * cs.kernel_h * cs.kernel_w + (cs.bias ? 1 : 0));
}

}  // namespace

TEST_CASE("conv2d matches the float64 reference for every geometry within the float32 error bound") {
  std::uint32_t seed = 10;
  for (const auto& cs : cases) {
    INFO("input [" << cs.batch << "," << cs.channels << "," << cs.height << "," << cs.width << "] -> " << cs.out_channels
                   << ", kernel " << cs.kernel_h << "x" << cs.kernel_w << ", stride " << cs.geometry.stride_h << "x"
                   << cs.geometry.stride_w << ", pad " << cs.geometry.pad_top << "," << cs.geometry.pad_bottom << ","
                   << cs.geometry.pad_left << "," << cs.geometry.pad_right);
    const Tensor<float> input = random_tensor({cs.batch, cs.channels, cs.height, cs.width}, seed += 5);
    check_case<float>(cs, input.view(), seed += 5);
    check_case<bf16>(cs, input.view(), seed += 5);
    check_case<f16>(cs, input.view(), seed += 5);
  }
}

TEST_CASE("conv2d reads strided (non-contiguous) inputs and weights") {
  const ConvCase cs{2, 6, 9, 10, 5, 3, 3, Conv2dGeometry::padded(1), true};
  const Tensor<float> big = random_tensor({2, 12, 9, 20}, 90);
  const TensorView<const float> input = big.view().slice(1, 0, 12, 2).slice(3, 0, 20, 2);  // channel and x strides 2
  check_case<float>(cs, input, 91);
  const Tensor<float> w_big = random_tensor({5, 6, 3, 6}, 92);
  const TensorView<const float> weight = w_big.view().slice(3, 0, 6, 2);
  const Tensor<float> dense_input = contiguous(input);
  const Tensor<float> dense_weight = contiguous(weight);
  const Tensor<float> a = conv2d(input, weight, TensorView<const float>(), cs.geometry);
  const Tensor<float> b = conv2d(TensorView<const float>(dense_input.view()), TensorView<const float>(dense_weight.view()),
                                 TensorView<const float>(), cs.geometry);
  REQUIRE(std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.numel())) == 0);
}

TEST_CASE("conv2d with pre-packed weights writes into a given output and is bit-identical for 1, 2 and 3 threads") {
  const Tensor<float> input = random_tensor({2, 24, 19, 23}, 80);
  const Tensor<float> weight = random_tensor({33, 24, 3, 3}, 81);
  const Tensor<float> bias = random_tensor({33}, 82);
  const PackedConv2dWeights packed = pack_conv2d_weights(TensorView<const float>(weight.view()));
  const int default_threads = max_threads();
  std::vector<Tensor<float>> results;
  for (int threads : {1, 2, 3}) {
#if LATENTKIT_HAS_OPENMP
    omp_set_num_threads(threads);
#endif
    auto& out = results.emplace_back(Dims{2, 33, 19, 23});
    conv2d(input.view(), packed, bias.view(), Conv2dGeometry::padded(1), out.view());
  }
#if LATENTKIT_HAS_OPENMP
  omp_set_num_threads(default_threads);
#endif
  const auto bytes = sizeof(float) * static_cast<std::size_t>(results[0].numel());
  CHECK(std::memcmp(results[0].data(), results[1].data(), bytes) == 0);
  CHECK(std::memcmp(results[0].data(), results[2].data(), bytes) == 0);
  const Tensor<float> fresh = conv2d(TensorView<const float>(input.view()), TensorView<const float>(weight.view()),
                                     TensorView<const float>(bias.view()), Conv2dGeometry::padded(1));
  CHECK(std::memcmp(results[0].data(), fresh.data(), bytes) == 0);
}

TEST_CASE("conv2d rejects mismatched shapes with ShapeError") {
  const Tensor<float> input = random_tensor({1, 4, 5, 5}, 70);
  const Tensor<float> weight = random_tensor({3, 4, 3, 3}, 71);
  const Tensor<float> wrong_channels = random_tensor({3, 5, 3, 3}, 72);
  const Tensor<float> bias = random_tensor({4}, 73);
  const TensorView<const float> in = input.view(), none;
  CHECK_THROWS_AS(conv2d(in, TensorView<const float>(wrong_channels.view()), none, Conv2dGeometry::padded(1)), ShapeError);
  CHECK_THROWS_AS(conv2d(in, TensorView<const float>(weight.view()), TensorView<const float>(bias.view()),
                         Conv2dGeometry::padded(1)), ShapeError);
  CHECK_THROWS_AS(conv2d(in, TensorView<const float>(weight.view()), none, Conv2dGeometry{0, 1}), ShapeError);
  const Tensor<float> tiny = random_tensor({1, 4, 2, 2}, 74);
  CHECK_THROWS_AS(conv2d(TensorView<const float>(tiny.view()), TensorView<const float>(weight.view()), none,
                         Conv2dGeometry{}), ShapeError);
  const PackedConv2dWeights packed = pack_conv2d_weights(TensorView<const float>(weight.view()));
  Tensor<float> wrong_out({1, 3, 4, 5});
  CHECK_THROWS_AS(conv2d(in, packed, none, Conv2dGeometry::padded(1), wrong_out.view()), ShapeError);
  Tensor<float> wide({1, 3, 5, 10});
  CHECK_THROWS_AS(conv2d(in, packed, none, Conv2dGeometry::padded(1), wide.view().slice(3, 0, 10, 2)), ShapeError);
}
