#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <xtensor/xarray.hpp>
#include <xtensor/xreducer.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "latentkit/core/interop.hpp"
#include "latentkit/core/reduce.hpp"

using namespace latentkit;

namespace {
Tensor<float> iota_tensor(const Dims& shape, float start = 0.5f) {
  Tensor<float> t(shape);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = start + 0.25f * static_cast<float>(i % 97) - 0.01f * static_cast<float>(i);
  return t;
}
}  // namespace

TEST_CASE("a latent seen as an xtensor expression shares memory and reduces like latentkit", "[interop]") {
  Tensor<float> latent = iota_tensor({1, 4, 8, 8});
  auto x = as_xarray(latent);
  REQUIRE(x.data() == latent.data());
  REQUIRE(x.dimension() == 4);
  CHECK(x(0, 2, 3, 5) == latent(0, 2, 3, 5));
  x(0, 1, 2, 3) = 42.0f;  // write through
  CHECK(latent(0, 1, 2, 3) == 42.0f);
  latent(0, 3, 7, 7) = -3.0f;  // and back
  CHECK(x(0, 3, 7, 7) == -3.0f);
  // Per-channel means: xt::mean over H, W against latentkit's axis reduction on the reshaped latent.
  const xt::xarray<double> channel_means = xt::mean(xt::cast<double>(x), {0, 2, 3});
  const Tensor<float> ours = mean(latent.view().reshape({4, 64}), 1);
  for (index_t c = 0; c < 4; ++c) CHECK(static_cast<float>(channel_means(static_cast<std::size_t>(c))) == Approx(ours(c)).epsilon(1e-6));
  // Fixed rank, on a strided (transposed) view: element (i, j) is latent's (j, i).
  const Tensor<float> m = iota_tensor({3, 5});
  auto t = as_xtensor<2>(m.view().transpose());
  REQUIRE(t.shape()[0] == 5);
  for (std::size_t i = 0; i < 5; ++i)
    for (std::size_t j = 0; j < 3; ++j) REQUIRE(t(i, j) == m(static_cast<index_t>(j), static_cast<index_t>(i)));
  CHECK(xt::sum(t)() == Approx(sum(m)).epsilon(1e-6));
  CHECK_THROWS_AS(as_xtensor<3>(m), ShapeError);
}

TEST_CASE("xtensor containers are seen as TensorViews without copying", "[interop]") {
  xt::xarray<double> a = {{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}};
  auto v = as_tensor_view(a);
  static_assert(std::is_same_v<decltype(v), TensorView<double>>);
  REQUIRE(v.data() == a.data());
  REQUIRE(v.shape() == Dims{2, 3});
  CHECK(v(1, 2) == 6.0);
  v(0, 1) = -2.0;
  CHECK(a(0, 1) == -2.0);
  CHECK(sum(v) == 17.0);
  xt::xtensor<float, 3> b = xt::zeros<float>({2, 3, 4});
  b(1, 2, 3) = 7.0f;
  const auto& cb = b;
  const auto bv = as_tensor_view(cb);
  static_assert(std::is_same_v<std::remove_const_t<decltype(bv)>, TensorView<const float>>);
  CHECK(bv(1, 2, 3) == 7.0f);
  CHECK(max(bv) == 7.0f);
  // Column-major xarray: the strides say so, the values are the same.
  xt::xarray<float, xt::layout_type::column_major> c = {{1.0f, 2.0f}, {3.0f, 4.0f}};
  const auto cv = as_tensor_view(c);
  CHECK(cv(0, 1) == 2.0f);
  CHECK(cv(1, 0) == 3.0f);
  CHECK_FALSE(cv.is_contiguous());
}

TEST_CASE("latentkit tensors are Eigen maps and Eigen matrices are TensorViews, both zero-copy", "[interop]") {
  const Tensor<float> a = iota_tensor({3, 4}), b = iota_tensor({4, 5}, -1.0f);
  const Eigen::MatrixXf product = as_eigen_matrix(a) * as_eigen_matrix(b);
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 5; ++j) {
      double expected = 0;
      for (index_t k = 0; k < 4; ++k) expected += static_cast<double>(a(i, k)) * b(k, j);
      REQUIRE(product(i, j) == Approx(expected).epsilon(1e-5));
    }
  // A transposed view is the transposed matrix: A^T A through strides, no copy.
  const auto at = as_eigen_matrix(a.view().transpose());
  REQUIRE(at.data() == a.data());
  const Eigen::MatrixXf gram = at * as_eigen_matrix(a);
  CHECK(gram(2, 3) == Approx(static_cast<double>(dot(a.view().select(1, 2), a.view().select(1, 3)))).epsilon(1e-6));
  // Writes through a map land in the tensor; a strided column becomes a vector with inner stride.
  Tensor<float> w = iota_tensor({4, 3});
  as_eigen_matrix(w)(2, 1) = 11.0f;
  CHECK(w(2, 1) == 11.0f);
  auto column = as_eigen_vector(w.view().select(1, 1));
  CHECK(column.innerStride() == 3);
  column *= 2.0f;
  CHECK(w(2, 1) == 22.0f);
  CHECK(column.sum() == Approx(sum(w.view().select(1, 1))).epsilon(1e-6));
  CHECK_THROWS_AS(as_eigen_matrix(w.view().select(0, 0)), ShapeError);

  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> r(2, 3);
  r << 1, 2, 3, 4, 5, 6;
  auto rv = as_tensor_view(r);
  REQUIRE(rv.data() == r.data());
  REQUIRE(rv.is_contiguous());
  rv(1, 0) = 40.0;
  CHECK(r(1, 0) == 40.0);
  const Eigen::MatrixXd col = r;  // column-major copy: strides [1, rows]
  const auto cv = as_tensor_view(col);
  CHECK(cv(1, 2) == 6.0);
  CHECK(cv.strides() == Dims{1, 2});
  Eigen::VectorXf vec = Eigen::VectorXf::LinSpaced(10, 0.0f, 9.0f);
  auto vv = as_tensor_view(vec);
  REQUIRE(vv.shape() == Dims{10});
  CHECK(sum(vv) == 45.0);
}
