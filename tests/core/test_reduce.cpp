#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "latentkit/core/reduce.hpp"

using namespace latentkit;

namespace {
template <class T>
Tensor<T> random_tensor(const Dims& shape, unsigned seed, double mean = 0.3) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(mean, 1.0);
  std::uniform_int_distribution<int> exponent(-20, 20);
  Tensor<T> t(shape);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(std::ldexp(normal(rng), exponent(rng) / 4));
  return t;
}

struct Reference {
  long double value = 0, magnitude = 0;  // sum of terms and sum of |terms|
};
template <class T>
Reference reference_dot(const Tensor<T>& x, const Tensor<T>& y) {
  Reference r;
  for (index_t i = 0; i < x.numel(); ++i) {
    const long double term = static_cast<long double>(x.data()[i]) * static_cast<long double>(y.data()[i]);
    r.value += term;
    r.magnitude += std::fabs(term);
  }
  return r;
}

// Any order of adding n terms in double (unit roundoff u = 2^-53) is within (n - 1) u sum|terms| of the exact sum;
// products of doubles add one rounding each (n u in all). The long double reference itself is within n 2^-64 of it.
double bound(const Reference& r, index_t n, bool rounded_products) {
  const long double u = 0x1p-53L;
  return static_cast<double>((static_cast<long double>(n + (rounded_products ? 1 : 0)) * u + n * 0x1p-64L) * r.magnitude);
}

#if LATENTKIT_HAS_OPENMP
struct ThreadCount {
  int saved = omp_get_max_threads();
  explicit ThreadCount(int n) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved); }
};
#endif
}  // namespace

TEMPLATE_TEST_CASE("sum, mean, dot and norm2 are accurate against a long double reference", "[reduce]", float, double) {
  using T = TestType;
  for (const Dims& shape : {Dims{1}, Dims{17}, Dims{4, 4096}, Dims{3, 1000, 37}}) {
    const Tensor<T> x = random_tensor<T>(shape, 1), y = random_tensor<T>(shape, 2, -0.1);
    const index_t n = x.numel();
    const Tensor<T> ones = Tensor<T>::full(shape, T(1));
    const Reference rs = reference_dot(x, ones), rd = reference_dot(x, y), rq = reference_dot(x, x);
    const bool rounded = std::is_same_v<T, double>;  // float products are exact in double
    INFO("shape " << shape.str());
    REQUIRE(std::fabs(sum(x) - static_cast<double>(rs.value)) <= bound(rs, n, false));
    REQUIRE(std::fabs(mean(x) - static_cast<double>(rs.value / n)) <= bound(rs, n, false) / n + std::ldexp(std::fabs(mean(x)), -52));
    REQUIRE(std::fabs(dot(x, y) - static_cast<double>(rd.value)) <= bound(rd, n, rounded));
    const double norm_ref = std::sqrt(static_cast<double>(rq.value));
    REQUIRE(std::fabs(norm2(x) - norm_ref) <= bound(rq, n, rounded) / norm_ref + std::ldexp(norm_ref, -51));
  }
}

TEMPLATE_TEST_CASE("max, min and max_abs_diff are exact and propagate NaN", "[reduce]", float, double) {
  using T = TestType;
  Tensor<T> x = random_tensor<T>({5, 2001}, 3), y = random_tensor<T>({5, 2001}, 4);
  T hi = -std::numeric_limits<T>::infinity(), lo = std::numeric_limits<T>::infinity();
  double diff = 0;
  for (index_t i = 0; i < x.numel(); ++i) {
    hi = std::max(hi, x.data()[i]);
    lo = std::min(lo, x.data()[i]);
    diff = std::max(diff, std::fabs(static_cast<double>(x.data()[i]) - static_cast<double>(y.data()[i])));
  }
  CHECK(max(x) == hi);
  CHECK(min(x) == lo);
  CHECK(max_abs_diff(x, y) == diff);
  CHECK(max_abs_diff(x, x) == 0.0);
  CHECK(max(x.view().transpose()) == hi);  // strided input
  x(4, 2000) = std::numeric_limits<T>::quiet_NaN();  // in the last, partial block
  CHECK(std::isnan(max(x)));
  CHECK(std::isnan(min(x)));
  CHECK(std::isnan(max_abs_diff(x, y)));
  CHECK(std::isnan(sum(x)));
  CHECK_THROWS_AS(max(Tensor<T>({0})), ShapeError);
  CHECK_THROWS_AS(mean(Tensor<T>({3, 0})), ShapeError);
  CHECK_THROWS_AS(dot(x, y.view().slice(1, 0, 4)), ShapeError);
  CHECK(sum(Tensor<T>({0})) == 0.0);
}

TEMPLATE_TEST_CASE("per-axis sums and means equal the full reduction of each line", "[reduce]", float, double) {
  using T = TestType;
  const Tensor<T> x = random_tensor<T>({3, 5000, 4}, 5);
  for (int axis : {0, 1, 2, -1}) {
    const Tensor<T> s = sum(x, axis), m = mean(x, axis, true);
    const int a = axis < 0 ? axis + 3 : axis;
    Dims expected = x.shape();
    expected.erase(a);
    REQUIRE(s.shape() == expected);
    expected.insert(a, 1);
    REQUIRE(m.shape() == expected);
    for (index_t i = 0; i < s.numel(); ++i) {
      // The line is x with every other axis fixed: reduce it as a (strided) 1-D view.
      index_t rest = i;
      TensorView<const T> line = x.view();
      for (int b = 2; b >= 0; --b) {
        if (b == a) continue;
        const index_t extent = x.shape()[b];
        line = line.select(b, rest % extent);
        rest /= extent;
      }
      REQUIRE(s.data()[i] == static_cast<T>(sum(line)));
      REQUIRE(m.data()[i] == static_cast<T>(sum(line) / static_cast<double>(line.numel())));
    }
  }
  CHECK_THROWS_AS(sum(x, 3), ShapeError);
}

TEST_CASE("reductions are bit-identical for 1, 2, 3 and 7 threads", "[reduce]") {
  const Tensor<float> x = random_tensor<float>({8, 65, 997}, 6), y = random_tensor<float>({8, 65, 997}, 7);
  const auto xt = x.view().permute({2, 0, 1});  // strided: the gathering path
  struct Results {
    double s, d, n, diff, strided;
    float hi;
    Tensor<float> axis_sum, axis_mean;
  };
  const auto run = [&] {
    return Results{sum(x), dot(x, y), norm2(x), max_abs_diff(x, y), sum(xt), max(x), sum(x, 2), mean(x, 0)};
  };
#if LATENTKIT_HAS_OPENMP
  std::vector<Results> results;
  for (int threads : {1, 2, 3, 7}) {
    ThreadCount scope(threads);
    results.push_back(run());
  }
  const auto bits = [](double v) { return std::bit_cast<std::uint64_t>(v); };
  for (std::size_t k = 1; k < results.size(); ++k) {
    REQUIRE(bits(results[k].s) == bits(results[0].s));
    REQUIRE(bits(results[k].d) == bits(results[0].d));
    REQUIRE(bits(results[k].n) == bits(results[0].n));
    REQUIRE(bits(results[k].diff) == bits(results[0].diff));
    REQUIRE(bits(results[k].strided) == bits(results[0].strided));
    REQUIRE(results[k].hi == results[0].hi);
    REQUIRE(max_abs_diff(results[k].axis_sum, results[0].axis_sum) == 0.0);
    REQUIRE(max_abs_diff(results[k].axis_mean, results[0].axis_mean) == 0.0);
  }
  // A strided view's sum equals the sum of its contiguous copy (same blocks, same order).
  REQUIRE(bits(results[0].strided) == bits(sum(contiguous(xt))));
#else
  const Results r = run();
  REQUIRE(r.strided == sum(contiguous(xt)));
#endif
}
