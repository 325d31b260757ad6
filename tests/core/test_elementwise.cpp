#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "latentkit/core/elementwise.hpp"

using namespace latentkit;

namespace {
// simd::fma is one rounding on FMA-capable architectures and mul-then-add (two) on others (SSE2 builds).
template <class T>
T fused(T a, T b, T c) {
  const std::string arch = simd::best_arch_name();
  const bool has_fma = arch.find("fma") != std::string::npos || arch.find("avx512") != std::string::npos;
  if (has_fma) return std::fma(a, b, c);
  const volatile T product = a * b;  // volatile: no contraction of the reference itself
  return product + c;
}

template <class T>
Tensor<T> random_tensor(const Dims& shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 2.0);
  Tensor<T> t(shape);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(normal(rng));
  return t;
}

template <class T>
bool same_bits(TensorView<const T> a, TensorView<const T> b) {
  if (!(a.shape() == b.shape())) return false;
  const Tensor<T> x = contiguous(a), y = contiguous(b);
  for (index_t i = 0; i < x.numel(); ++i)
    if (std::bit_cast<std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>(x.data()[i]) !=
        std::bit_cast<std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>(y.data()[i]))
      return false;
  return true;
}
}  // namespace

TEMPLATE_TEST_CASE("binary ops match scalar arithmetic, with a per-channel bias broadcast", "[elementwise]", float, double) {
  using T = TestType;
  const Tensor<T> a = random_tensor<T>({2, 3, 5, 7}, 1), b = random_tensor<T>({2, 3, 5, 7}, 2);
  const Tensor<T> bias = random_tensor<T>({3, 1, 1}, 3);
  const Tensor<T> s = add(a, b), d = sub(a, b), p = mul(a, b), q = div(a, b), biased = add(a, bias);
  for (index_t n = 0; n < 2; ++n)
    for (index_t c = 0; c < 3; ++c)
      for (index_t h = 0; h < 5; ++h)
        for (index_t w = 0; w < 7; ++w) {
          REQUIRE(s(n, c, h, w) == a(n, c, h, w) + b(n, c, h, w));
          REQUIRE(d(n, c, h, w) == a(n, c, h, w) - b(n, c, h, w));
          REQUIRE(p(n, c, h, w) == a(n, c, h, w) * b(n, c, h, w));
          REQUIRE(q(n, c, h, w) == a(n, c, h, w) / b(n, c, h, w));
          REQUIRE(biased(n, c, h, w) == a(n, c, h, w) + bias(c, 0, 0));
        }
  // A stride-0 broadcast view as the second operand gives the same result.
  const Tensor<T> via_view = mul(a, bias.view().broadcast_to(a.shape()));
  for (index_t i = 0; i < a.numel(); ++i) REQUIRE(via_view.data()[i] == a.data()[i] * bias.data()[(i / 35) % 3]);
  CHECK_THROWS_AS(add(a, random_tensor<T>({4, 1, 1}, 4)), ShapeError);
}

TEMPLATE_TEST_CASE("strided, transposed and in-place operands give the same bits as dense ones", "[elementwise]", float, double) {
  using T = TestType;
  // Long enough for the threaded path and for rows longer than the gather buffer.
  const Tensor<T> a = random_tensor<T>({300, 517}, 5), b = random_tensor<T>({517, 300}, 6);
  const Tensor<T> bt = contiguous(b.view().transpose());  // dense copy of b^T
  const Tensor<T> dense = lerp(a, bt, 0.3);
  const Tensor<T> strided = lerp(a, b.view().transpose(), 0.3);
  REQUIRE(same_bits<T>(dense.view(), strided.view()));
  // Written into a transposed output.
  Tensor<T> out_t({517, 300});
  lerp(a, b.view().transpose(), 0.3, out_t.view().transpose());
  REQUIRE(same_bits<T>(dense.view(), out_t.view().transpose()));
  // Every element equals the formula a + t (b - a) with one fused rounding.
  const T t = static_cast<T>(0.3);
  for (index_t i = 0; i < a.numel(); i += 97) REQUIRE(dense.data()[i] == fused(t, bt.data()[i] - a.data()[i], a.data()[i]));
  // Slices with a step and an odd length.
  const auto sa = a.view().slice(1, 3, 500, 3), sb = bt.view().slice(1, 3, 500, 3);
  const Tensor<T> sliced = sub(sa, sb), sliced_dense = sub(contiguous(sa), contiguous(sb));
  REQUIRE(same_bits<T>(sliced.view(), sliced_dense.view()));
  // In place: y = 2x + y (axpy) equals the out-of-place axpby with beta 1 (fma(2, x, 1 * y) is fma(2, x, y)).
  Tensor<T> y = bt.clone(), z(a.shape());
  axpy(2.0, a, y);
  axpby(2.0, a, 1.0, bt, z);
  REQUIRE(same_bits<T>(y.view(), z.view()));
}

TEST_CASE("axpy, axpby, scale and the in-place variants follow their formulas", "[elementwise]") {
  const Tensor<float> x = random_tensor<float>({4, 1000}, 7), y0 = random_tensor<float>({4, 1000}, 8);
  Tensor<float> y = y0.clone();
  axpy(0.5, x, y);
  for (index_t i = 0; i < x.numel(); ++i) REQUIRE(y.data()[i] == fused(0.5f, x.data()[i], y0.data()[i]));
  Tensor<float> z = y0.clone();
  axpby(-1.25, x, 3.0, z);
  for (index_t i = 0; i < x.numel(); ++i) REQUIRE(z.data()[i] == fused(-1.25f, x.data()[i], 3.0f * y0.data()[i]));
  Tensor<float> w(x.shape());
  axpby(-1.25, x, 3.0, y0, w);
  REQUIRE(same_bits<float>(w.view(), z.view()));
  const Tensor<float> s = scale(x, 1.5);
  Tensor<float> si = x.clone();
  scale_inplace(si, 1.5);
  for (index_t i = 0; i < x.numel(); ++i) REQUIRE(s.data()[i] == 1.5f * x.data()[i]);
  REQUIRE(same_bits<float>(s.view(), si.view()));
  Tensor<float> acc = x.clone();
  add_inplace(acc, y0);
  sub_inplace(acc, y0.view().slice(0, 0, 1));  // a broadcast row
  mul_inplace(acc, x);
  div_inplace(acc, x);
  for (index_t i = 0; i < x.numel(); ++i)
    REQUIRE(acc.data()[i] == ((x.data()[i] + y0.data()[i]) - y0.data()[i % 1000]) * x.data()[i] / x.data()[i]);
}

TEST_CASE("clamp, fill and map handle NaN, bounds and odd shapes", "[elementwise]") {
  Tensor<double> x = random_tensor<double>({3, 11}, 9);
  x(1, 4) = std::numeric_limits<double>::quiet_NaN();
  const Tensor<double> c = clamp(x, -1.0, 0.5);
  for (index_t i = 0; i < x.numel(); ++i) {
    const double v = x.data()[i];
    if (std::isnan(v)) REQUIRE(std::isnan(c.data()[i]));
    else REQUIRE(c.data()[i] == std::min(std::max(v, -1.0), 0.5));
  }
  CHECK_THROWS_AS(clamp(x, 1.0, -1.0), Error);
  Tensor<double> y = x.clone();
  clamp_inplace(y, -1.0, 0.5);
  REQUIRE(same_bits<double>(y.view(), c.view()));

  Tensor<float> f = Tensor<float>::zeros({5, 6});
  fill(f.view().slice(1, 1, 6, 2), 2.5);  // columns 1, 3, 5 only
  for (index_t r = 0; r < 5; ++r)
    for (index_t col = 0; col < 6; ++col) REQUIRE(f(r, col) == (col % 2 ? 2.5f : 0.0f));
  CHECK_THROWS_AS(fill(Tensor<float>({1}).view().broadcast_to({4}), 1.0), ShapeError);

  const Tensor<float> m = map(f, [](float v) { return v * v + 1.0f; });
  for (index_t i = 0; i < f.numel(); ++i) REQUIRE(m.data()[i] == f.data()[i] * f.data()[i] + 1.0f);
  map_inplace(f, [](float v) { return -v; });
  CHECK(f(4, 5) == -2.5f);
  // A scalar (rank 0) and an empty tensor.
  Tensor<float> one = Tensor<float>::full({}, 3.0f);
  scale_inplace(one, 2.0);
  CHECK(one.data()[0] == 6.0f);
  Tensor<float> empty({0, 4});
  add_inplace(empty, Tensor<float>::full({4}, 1.0f));
}

TEST_CASE("an exception thrown by a map functor reaches the caller, from one thread or many", "[elementwise]") {
  // 2^18 elements run in parallel pieces (elementwise_parallel_min is 2^16); 7 x 5 strided runs on one thread.
  for (const Dims shape : {Dims{512, 512}, Dims{7, 5}}) {
    const Tensor<float> clean = random_tensor<float>(shape, 21);  // normal(0, 2): never 1e6
    Tensor<float> x = clean.clone();
    x.data()[x.numel() / 2] = 1e6f;
    auto f = [](float v) {
      if (v == 1e6f) throw std::domain_error("map functor rejects 1e6");
      return 2.0f * v;
    };
    CHECK_THROWS_AS(map(x, f), std::domain_error);
    CHECK_THROWS_AS(map(x.view().transpose(0, 1), f), std::domain_error);
    // The same functor on the data without the poisoned value completes, so the throw came from that element.
    const Tensor<float> doubled = map(clean, f);
    CHECK(doubled.data()[0] == 2.0f * clean.data()[0]);
  }
}
