#include <catch2/catch.hpp>

#include <cstdint>
#include <numeric>

#include "latentkit/core/tensor.hpp"

using namespace latentkit;

namespace {
Tensor<float> iota(const Dims& shape) {
  Tensor<float> t(shape);
  std::iota(t.data(), t.data() + t.numel(), 1.0f);
  return t;
}
}  // namespace

TEST_CASE("a tensor owns aligned contiguous storage of its shape", "[tensor]") {
  auto t = Tensor<float>::zeros({2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.shape() == Dims{2, 3, 4});
  CHECK(t.strides() == Dims{12, 4, 1});
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % tensor_alignment == 0);
  CHECK(t(1, 2, 3) == 0.0f);
  t(1, 2, 3) = 5.0f;
  CHECK(t.data()[23] == 5.0f);
  CHECK_THROWS_AS(Dims({1, 2, 3, 4, 5, 6, 7}), ShapeError);
}

TEST_CASE("slices, selections and steps are views on the same storage", "[tensor]") {
  auto t = iota({4, 5});
  auto v = t.view().slice(0, 1, 3).slice(1, 0, 5, 2);  // rows 1..2, columns 0,2,4
  CHECK(v.shape() == Dims{2, 3});
  CHECK(v(0, 0) == 6.0f);
  CHECK(v(1, 2) == 15.0f);
  CHECK(!v.is_contiguous());
  v(0, 1) = -1.0f;
  CHECK(t(1, 2) == -1.0f);
  auto row = t.view().select(0, -1);
  CHECK(row.shape() == Dims{5});
  CHECK(row(4) == 20.0f);
  CHECK_THROWS_AS(t.view().slice(1, 2, 9), ShapeError);
  CHECK_THROWS_AS(t.view().select(0, 4), ShapeError);
}

TEST_CASE("permute and transpose reorder axes; contiguous() makes a dense copy", "[tensor]") {
  auto t = iota({2, 3, 4});
  auto p = t.view().permute({2, 0, 1});
  CHECK(p.shape() == Dims{4, 2, 3});
  for (index_t a = 0; a < 2; ++a)
    for (index_t b = 0; b < 3; ++b)
      for (index_t c = 0; c < 4; ++c) REQUIRE(p(c, a, b) == t(a, b, c));
  auto dense = contiguous(p);
  CHECK(dense.view().is_contiguous());
  for (index_t a = 0; a < 2; ++a)
    for (index_t b = 0; b < 3; ++b)
      for (index_t c = 0; c < 4; ++c) REQUIRE(dense(c, a, b) == t(a, b, c));
  auto m = iota({3, 5});
  auto mt = m.view().transpose();
  CHECK(mt.shape() == Dims{5, 3});
  CHECK(mt(4, 2) == m(2, 4));
  CHECK_THROWS_AS(t.view().permute({0, 0, 1}), ShapeError);
  CHECK_THROWS_AS(p.reshape({24}), ShapeError);  // non-contiguous
}

TEST_CASE("reshape keeps the elements and infers one extent", "[tensor]") {
  auto t = iota({2, 3, 4});
  auto r = t.view().reshape({6, -1});
  CHECK(r.shape() == Dims{6, 4});
  CHECK(r(5, 3) == 24.0f);
  CHECK_THROWS_AS(t.view().reshape({5, 5}), ShapeError);
  t.reshape({4, 6});
  CHECK(t.shape() == Dims{4, 6});
  CHECK(t(3, 5) == 24.0f);
}

TEST_CASE("broadcast views repeat with stride zero, NumPy rules", "[tensor]") {
  auto bias = iota({3, 1});
  auto b = bias.view().broadcast_to({2, 3, 4});
  CHECK(b.strides() == Dims{0, 1, 0});
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 3; ++j)
      for (index_t k = 0; k < 4; ++k) REQUIRE(b(i, j, k) == static_cast<float>(j + 1));
  CHECK(broadcast_shapes({3, 1}, {2, 1, 4}) == Dims{2, 3, 4});
  CHECK_THROWS_AS(broadcast_shapes({3}, {4}), ShapeError);
  CHECK_THROWS_AS(bias.view().broadcast_to({2, 4, 4}), ShapeError);
  auto u = bias.view().unsqueeze(0);
  CHECK(u.shape() == Dims{1, 3, 1});
}

TEST_CASE("copy moves data between strided views of equal shape", "[tensor]") {
  auto src = iota({3, 4});
  auto dst = Tensor<float>::zeros({4, 3});
  copy(src.view().transpose(), dst.view());
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 4; ++j) REQUIRE(dst(j, i) == src(i, j));
  auto both = Tensor<float>::zeros({4, 3});
  copy(TensorView<const float>(src.view().transpose()), both.view().transpose().transpose());
  CHECK(both(3, 2) == src(2, 3));
  CHECK_THROWS_AS(copy(src.view(), dst.view()), ShapeError);
}

TEST_CASE("shapes whose element count overflows are rejected before allocation", "[tensor]") {
  const index_t big = index_t{1} << 40;
  CHECK_THROWS_AS(Tensor<float>(Dims{big, big}), ShapeError);
  CHECK_THROWS_AS(Tensor<float>(Dims{2, -3}), ShapeError);
  CHECK_THROWS_AS(Tensor<double>(Dims{index_t{1} << 61}), ShapeError);  // elements fit, bytes do not
  CHECK(Dims({3, 0, big, big}).checked_numel() == 0);
  CHECK(Dims({1 << 20, 1 << 20}).checked_numel() == index_t{1} << 40);
}
