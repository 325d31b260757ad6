// GEMM against the float64 reference: shapes around every blocking edge, transposes, leading dimensions,
// alpha/beta, bf16/f16 operands, TensorView strides, batches, pre-packed weights, thread-count determinism.
#include <cstring>
#include <limits>
#include <string>

#include "gemm_test_support.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/kernels/reference/gemm_conv.hpp"

using namespace latentkit;
using gemm_test::check_product;
using gemm_test::check_within_bound;
using gemm_test::GemmCase;
using gemm_test::random_values;

namespace {

// Extents around the register tile (MR = 6/14, NR = 16/32), the K slice (512 AVX2, 768 AVX-512), the M block
// (72/112) and the N block (2048/1344), plus degenerate 1s; the last two cross all three blocks at once. The
// vdpbf16ps kernel (MR 14, NR 32, a K slice of 256 pairs, N block 4096) meets the same edges and odd K (a
// half-zero last pair).
const GemmCase shapes[] = {{1, 1, 1},      {1, 17, 33},   {7, 1, 19},    {5, 9, 1},     {6, 16, 256},
                           {13, 31, 257},  {150, 70, 300}, {3, 4113, 5}, {170, 33, 513}, {64, 64, 64},
                           {75, 2051, 530}, {117, 1377, 769}};

/// Runs one BLAS-style product and checks every element of C (and that C's padding is untouched).
template <class TA, class TB>
void check_blas(const GemmCase& s, bool ta, bool tb, float alpha, float beta, index_t pad, std::uint32_t seed) {
  const index_t lda = (ta ? s.m : s.k) + pad, ldb = (tb ? s.k : s.n) + pad, ldc = s.n + pad;
  const auto a = random_values<TA>(static_cast<std::size_t>((ta ? s.k : s.m) * lda), seed);
  const auto b = random_values<TB>(static_cast<std::size_t>((tb ? s.n : s.k) * ldb), seed + 1);
  auto c = random_values<float>(static_cast<std::size_t>(s.m * ldc), seed + 2);
  if (beta == 0.0f)  // beta == 0 must not read C: NaN there would otherwise propagate
    for (index_t i = 0; i < s.m; ++i)
      for (index_t j = 0; j < s.n; ++j) c[static_cast<std::size_t>(i * ldc + j)] = std::numeric_limits<float>::quiet_NaN();
  const auto c0 = c;
  const auto A = [&](index_t i, index_t p) { return static_cast<float>(a[static_cast<std::size_t>(ta ? p * lda + i : i * lda + p)]); };
  const auto B = [&](index_t p, index_t j) { return static_cast<float>(b[static_cast<std::size_t>(tb ? j * ldb + p : p * ldb + j)]); };

  gemm(ta ? Transpose::yes : Transpose::no, tb ? Transpose::yes : Transpose::no, s.m, s.n, s.k, alpha, a.data(), lda,
       b.data(), ldb, beta, c.data(), ldc);

  check_product(s, A, B, alpha, beta, c0, c, ldc);
}

template <class T>
Tensor<T> random_tensor(const Dims& shape, std::uint32_t seed) {
  Tensor<T> t(shape);
  const auto v = random_values<T>(static_cast<std::size_t>(t.numel()), seed);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

/// Float64 product of rank-2 strided views, bounded like check_blas (alpha = 1, beta = 0).
template <class TA, class TB>
void check_views(TensorView<const TA> a, TensorView<const TB> b, TensorView<const float> c) {
  std::vector<double> exact, magnitude;
  std::vector<float> computed;
  for (index_t i = 0; i < c.size(0); ++i)
    for (index_t j = 0; j < c.size(1); ++j) {
      double sum = 0.0, abs_sum = 0.0;
      for (index_t p = 0; p < a.size(1); ++p) {
        const double term = static_cast<double>(static_cast<float>(a(i, p))) * static_cast<float>(b(p, j));
        sum += term;
        abs_sum += std::abs(term);
      }
      exact.push_back(sum);
      magnitude.push_back(abs_sum);
      computed.push_back(c(i, j));
    }
  check_within_bound(exact, magnitude, computed, a.size(1));
}

void set_threads([[maybe_unused]] int n) {
#if LATENTKIT_HAS_OPENMP
  omp_set_num_threads(n);
#endif
}

}  // namespace

TEST_CASE("gemm matches the float64 reference within the float32 error bound for every shape and transpose") {
  std::uint32_t seed = 1;
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t) {
      INFO("M=" << s.m << " N=" << s.n << " K=" << s.k << " trans_a=" << (t & 1) << " trans_b=" << (t >> 1));
      check_blas<float, float>(s, t & 1, t >> 1, 1.0f, 0.0f, 0, seed += 3);
    }
}

TEST_CASE("gemm applies alpha and beta and honours leading dimensions larger than the rows") {
  std::uint32_t seed = 100;
  for (const auto& s : shapes)
    for (const auto& [alpha, beta] : {std::pair{-1.5f, 0.5f}, std::pair{0.25f, 1.0f}, std::pair{2.0f, 0.0f}}) {
      INFO("M=" << s.m << " N=" << s.n << " K=" << s.k << " alpha=" << alpha << " beta=" << beta);
      check_blas<float, float>(s, false, true, alpha, beta, 3, seed += 3);
      check_blas<float, float>(s, true, false, alpha, beta, 5, seed += 3);
    }
}

TEST_CASE("gemm widens bf16 and f16 operands exactly and matches the reference on the rounded values") {
  std::uint32_t seed = 200;
  for (const auto& s : shapes) {
    INFO("M=" << s.m << " N=" << s.n << " K=" << s.k);
    check_blas<float, bf16>(s, false, false, 1.0f, 0.0f, 0, seed += 3);
    check_blas<float, bf16>(s, false, true, 0.5f, 1.0f, 2, seed += 3);
    check_blas<float, f16>(s, false, false, 1.0f, 0.0f, 1, seed += 3);
    check_blas<float, f16>(s, true, true, 1.0f, 0.0f, 0, seed += 3);
    check_blas<bf16, float>(s, false, false, 1.0f, 0.0f, 0, seed += 3);
    check_blas<f16, f16>(s, true, false, 1.0f, 0.0f, 0, seed += 3);
  }
}

TEST_CASE("gemm with K = 0 or alpha = 0 scales C by beta and reads nothing else") {
  auto c = random_values<float>(12, 7);
  const auto c0 = c;
  const float* none = nullptr;
  gemm(Transpose::no, Transpose::no, 3, 4, 0, 1.0f, none, 1, none, 4, 0.5f, c.data(), 4);
  for (std::size_t i = 0; i < c.size(); ++i) CHECK(c[i] == 0.5f * c0[i]);
  const auto a = random_values<float>(6, 8), b = random_values<float>(8, 9);
  gemm(Transpose::no, Transpose::no, 3, 4, 2, 0.0f, a.data(), 2, b.data(), 4, 0.0f, c.data(), 4);
  for (float x : c) CHECK(x == 0.0f);
}

TEST_CASE("matmul accepts strided, transposed and column-major views") {
  const auto a_store = random_tensor<float>({37, 2 * 29}, 300);
  const auto b_store = random_tensor<float>({45, 29}, 301);
  const TensorView<const float> a = a_store.view().slice(1, 0, 2 * 29, 2);  // column stride 2
  const TensorView<const float> b = b_store.view().transpose();              // [29, 45], column-major
  SECTION("row-major output") {
    Tensor<float> c({37, 45});
    matmul(a, b, c.view());
    check_views(a, b, TensorView<const float>(c.view()));
  }
  SECTION("column-major output") {
    Tensor<float> ct({45, 37});
    const TensorView<float> c = ct.view().transpose();
    matmul(a, b, c);
    check_views(a, b, TensorView<const float>(c));
  }
  SECTION("output with no unit stride") {
    Tensor<float> big({2 * 37, 3 * 45});
    const TensorView<float> c = big.view().slice(0, 0, 2 * 37, 2).slice(1, 0, 3 * 45, 3);
    matmul(a, b, c);
    check_views(a, b, TensorView<const float>(c));
  }
  SECTION("the returning overload") {
    const Tensor<float> c = matmul(a, b);
    REQUIRE(c.shape() == Dims{37, 45});
    check_views(a, b, c.view());
  }
}

TEST_CASE("batched products match item by item, with shared (broadcast) weights") {
  const auto a = random_tensor<float>({3, 21, 40}, 400);
  const auto b = random_tensor<bf16>({1, 40, 35}, 401);
  const auto b3 = random_tensor<float>({3, 40, 35}, 402);
  Tensor<float> c({3, 21, 35}), c3({3, 21, 35}), strided({3, 21, 35});
  matmul(TensorView<const float>(a.view()), TensorView<const bf16>(b.view()), c.view());
  matmul(TensorView<const float>(a.view()), TensorView<const float>(b3.view()), c3.view());
  gemm_batched(Transpose::no, Transpose::no, 21, 35, 40, 1.0f, a.data(), 40, 21 * 40, b3.data(), 35, 40 * 35, 0.0f,
               strided.data(), 35, 21 * 35, 3);
  for (index_t i = 0; i < 3; ++i) {
    INFO("item " << i);
    check_views<float, bf16>(a.view().select(0, i), b.view().select(0, 0), c.view().select(0, i));
    check_views<float, float>(a.view().select(0, i), b3.view().select(0, i), c3.view().select(0, i));
  }
  REQUIRE(std::memcmp(c3.data(), strided.data(), sizeof(float) * 3 * 21 * 35) == 0);
}

TEST_CASE("pre-packed weights give bit-identical results to packing on every call") {
  for (const auto& s : shapes) {
    INFO("M=" << s.m << " N=" << s.n << " K=" << s.k);
    const auto x = random_values<float>(static_cast<std::size_t>(s.m * s.k), 500);
    const auto w = random_values<bf16>(static_cast<std::size_t>(s.n * s.k), 501);  // linear weights [N, K]
    const auto wc = random_values<f16>(static_cast<std::size_t>(s.m * s.k), 502);  // conv-style A [M, K]
    const auto y = random_values<float>(static_cast<std::size_t>(s.k * s.n), 503);
    std::vector<float> direct(static_cast<std::size_t>(s.m * s.n)), packed(direct.size());
    gemm(Transpose::no, Transpose::yes, s.m, s.n, s.k, 1.0f, x.data(), s.k, w.data(), s.k, 0.0f, direct.data(), s.n);
    const PackedMatrix pb = pack_weights_b(Transpose::yes, s.k, s.n, w.data(), s.k);
    REQUIRE(pb.rows() == s.k);
    REQUIRE(pb.cols() == s.n);
    gemm(Transpose::no, s.m, 1.0f, x.data(), s.k, pb, 0.0f, packed.data(), s.n);
    REQUIRE(std::memcmp(direct.data(), packed.data(), direct.size() * sizeof(float)) == 0);

    gemm(Transpose::no, Transpose::no, s.m, s.n, s.k, 1.0f, wc.data(), s.k, y.data(), s.n, 0.0f, direct.data(), s.n);
    const PackedMatrix pa = pack_weights_a(Transpose::no, s.m, s.k, wc.data(), s.k);
    gemm(pa, Transpose::no, s.n, 1.0f, y.data(), s.n, 0.0f, packed.data(), s.n);
    REQUIRE(std::memcmp(direct.data(), packed.data(), direct.size() * sizeof(float)) == 0);
    CHECK_THROWS_AS(gemm(Transpose::no, s.m, 1.0f, x.data(), s.k, pa, 0.0f, packed.data(), s.n), ShapeError);
  }
}

TEST_CASE("gemm results are bit-identical for 1, 2 and 3 threads") {
  // The first shape is cut between threads along N, the second (few columns) along M.
  for (const GemmCase& s : {GemmCase{301, 203, 611}, GemmCase{517, 40, 300}}) {
    INFO("M=" << s.m << " N=" << s.n << " K=" << s.k);
    const auto a = random_values<float>(static_cast<std::size_t>(s.m * s.k), 600);
    const auto b = random_values<f16>(static_cast<std::size_t>(s.k * s.n), 601);
    const int default_threads = max_threads();
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 3}) {
      set_threads(threads);
      auto& c = results.emplace_back(static_cast<std::size_t>(s.m * s.n), 0.25f);
      gemm(Transpose::no, Transpose::no, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.n, 1.0f, c.data(), s.n);
    }
    set_threads(default_threads);
    CHECK(std::memcmp(results[0].data(), results[1].data(), results[0].size() * sizeof(float)) == 0);
    CHECK(std::memcmp(results[0].data(), results[2].data(), results[0].size() * sizeof(float)) == 0);
  }
}

TEST_CASE("a row-major float B copied by the tiles that first read it gives the bits of B packed up front") {
  // A float row-major B is read in place by the first tile of each B panel and copied into the packed panel
  // there (CopiedBPanel); an f16 B (or a transposed one) is packed before the tiles run. Same values, same
  // summation order: the same bits, for 1, 2 and 3 threads. The shapes cross the K slice, the M block and the N
  // block, end on narrow panels; the threads cut the first along N and the second along M; the third has fewer
  // rows than a tile (B packed up front there too). N > 512, so that A is packed (not read in place).
  for (const GemmCase& s : {GemmCase{117, 1377, 769}, GemmCase{600, 530, 1611}, GemmCase{9, 700, 800}}) {
    INFO("M=" << s.m << " N=" << s.n << " K=" << s.k);
    const auto a = random_values<float>(static_cast<std::size_t>(s.m * s.k), 620);
    const auto b_half = random_values<f16>(static_cast<std::size_t>(s.k * s.n), 621);
    std::vector<float> b(b_half.size()), b_transposed(b_half.size());
    for (index_t p = 0; p < s.k; ++p)
      for (index_t j = 0; j < s.n; ++j) {
        const float x = static_cast<float>(b_half[static_cast<std::size_t>(p * s.n + j)]);
        b[static_cast<std::size_t>(p * s.n + j)] = x;
        b_transposed[static_cast<std::size_t>(j * s.k + p)] = x;
      }
    const int default_threads = max_threads();
    for (int threads : {1, 2, 3}) {
      INFO(threads << " threads");
      set_threads(threads);
      std::vector<float> copied(static_cast<std::size_t>(s.m * s.n), 0.25f), packed = copied, transposed = copied;
      gemm(Transpose::no, Transpose::no, s.m, s.n, s.k, 1.5f, a.data(), s.k, b.data(), s.n, 0.5f, copied.data(), s.n);
      gemm(Transpose::no, Transpose::no, s.m, s.n, s.k, 1.5f, a.data(), s.k, b_half.data(), s.n, 0.5f, packed.data(),
           s.n);
      gemm(Transpose::no, Transpose::yes, s.m, s.n, s.k, 1.5f, a.data(), s.k, b_transposed.data(), s.k, 0.5f,
           transposed.data(), s.n);
      CHECK(std::memcmp(copied.data(), packed.data(), copied.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(copied.data(), transposed.data(), copied.size() * sizeof(float)) == 0);
    }
    set_threads(default_threads);
  }
}

TEST_CASE("an element of C rounds the same whichever register tile computes it") {
  // On AVX-512 the last panel of M or N runs a smaller register tile (edge_tile): leading rows and columns
  // computed on their own, by such tiles, must equal bit for bit those computed inside whole tiles of a larger
  // product.
  const index_t m = 45, n = 53, k = 1000, ld = 64;  // two K slices; ld > n: C's rows as a sub-matrix
  const auto a = random_values<float>(static_cast<std::size_t>(m * k), 650);
  const auto b = random_values<float>(static_cast<std::size_t>(k * ld), 651);
  std::vector<float> full(static_cast<std::size_t>(m * ld), 0.5f);
  gemm(Transpose::no, Transpose::no, m, n, k, 1.0f, a.data(), k, b.data(), ld, 0.25f, full.data(), ld);
  for (const index_t rows : {index_t{1}, index_t{3}, index_t{5}, index_t{8}, index_t{11}, index_t{13}, index_t{29}})
    for (const index_t cols : {index_t{1}, index_t{7}, index_t{16}, index_t{21}, n}) {
      INFO("leading " << rows << " x " << cols << " of " << m << " x " << n);
      std::vector<float> part(static_cast<std::size_t>(m * ld), 0.5f);
      gemm(Transpose::no, Transpose::no, rows, cols, k, 1.0f, a.data(), k, b.data(), ld, 0.25f, part.data(), ld);
      for (index_t i = 0; i < rows; ++i)
        REQUIRE(std::memcmp(&part[static_cast<std::size_t>(i * ld)], &full[static_cast<std::size_t>(i * ld)],
                            static_cast<std::size_t>(cols) * sizeof(float)) == 0);
    }
}

TEST_CASE("gemm rejects inconsistent extents and leading dimensions with ShapeError") {
  const auto a = random_values<float>(64, 700);
  std::vector<float> c(64);
  CHECK_THROWS_AS(gemm(Transpose::no, Transpose::no, 4, 4, 4, 1.0f, a.data(), 3, a.data(), 4, 0.0f, c.data(), 4), ShapeError);
  CHECK_THROWS_AS(gemm(Transpose::no, Transpose::yes, 4, 4, 4, 1.0f, a.data(), 4, a.data(), 2, 0.0f, c.data(), 4), ShapeError);
  CHECK_THROWS_AS(gemm(Transpose::no, Transpose::no, 4, 4, 4, 1.0f, a.data(), 4, a.data(), 4, 0.0f, c.data(), 3), ShapeError);
  CHECK_THROWS_AS(gemm(Transpose::no, Transpose::no, -1, 4, 4, 1.0f, a.data(), 4, a.data(), 4, 0.0f, c.data(), 4), ShapeError);
  const TensorView<const float> a34(a.data(), Dims{3, 4}), a35(a.data(), Dims{3, 5});
  Tensor<float> out({3, 3});
  CHECK_THROWS_AS(matmul(a34, a35, out.view()), ShapeError);
  CHECK_THROWS_AS(matmul(TensorView<const float>(a.data(), Dims{4}), a34), ShapeError);
  Tensor<float> batched({2, 3, 3});
  CHECK_THROWS_AS(matmul(TensorView<const float>(a.data(), Dims{3, 3, 4}), TensorView<const float>(a.data(), Dims{4, 3}),
                         batched.view()), ShapeError);
}

TEST_CASE("GEMM packing memory is reused between calls and never shared by two live workspaces") {
  using gemm_kernel::Workspace;
  const float* first = nullptr;
  {
    const Workspace w(1000, 24);
    first = w.a_block(0);
    REQUIRE(w.b_block(0) == first + 1008);  // A block rounded up to 64 bytes, then B
  }
  {
    const Workspace again(500, 0);  // a smaller request takes the block given back
    REQUIRE(again.a_block(0) == first);
    REQUIRE(again.b_block(0) == nullptr);
    const Workspace nested(500, 0);  // alive at the same time: its own memory
    REQUIRE(nested.a_block(0) != first);
  }
}

#include "latentkit/kernels/gemm/bf16_dot.hpp"
// The vdpbf16ps kernel runs where the CPU has AVX512-BF16: compiled in (a native build on such a CPU) or from the
// kernel library (a portable build). Elsewhere these tests check only that it is refused.
namespace {
/// bf16 rounding as vcvtne2ps2bf16 does it: round to nearest even, denormal inputs read as zero.
float round_like_vdpbf16ps(float x) {
  if (std::fpclassify(x) == FP_SUBNORMAL) x = std::copysign(0.0f, x);
  return static_cast<float>(bf16(x));
}

/// One vdpbf16ps product (per-call or pre-packed B) against the float64 sum of the bf16-rounded operands.
void check_bf16_dot(const GemmCase& s, bool ta, bool tb, bool prepacked, float alpha, float beta, std::uint32_t seed) {
  const index_t lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 1, ldc = s.n + 2;
  auto a = random_values<float>(static_cast<std::size_t>((ta ? s.k : s.m) * lda), seed);
  a[0] = 1e-39f;  // a denormal activation: flushed to zero by the instruction, and by the reference
  const auto b = random_values<bf16>(static_cast<std::size_t>((tb ? s.n : s.k) * ldb), seed + 1);
  auto c = random_values<float>(static_cast<std::size_t>(s.m * ldc), seed + 2);
  const auto c0 = c;
  const auto A = [&](index_t i, index_t p) { return round_like_vdpbf16ps(a[static_cast<std::size_t>(ta ? p * lda + i : i * lda + p)]); };
  const auto B = [&](index_t p, index_t j) { return static_cast<float>(b[static_cast<std::size_t>(tb ? j * ldb + p : p * ldb + j)]); };
  const Transpose op_a = ta ? Transpose::yes : Transpose::no, op_b = tb ? Transpose::yes : Transpose::no;
  if (prepacked)
    gemm_bf16_dot(op_a, s.m, alpha, a.data(), lda, pack_weights_b_bf16_dot(op_b, s.k, s.n, b.data(), ldb), beta,
                  c.data(), ldc);
  else
    gemm_bf16_dot(op_a, op_b, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  check_product(s, A, B, alpha, beta, c0, c, ldc);
}
}  // namespace

TEST_CASE("the vdpbf16ps GEMM matches the reference on bf16-rounded activations and weights") {
  if (!bf16_dot_available()) {
    std::vector<float> a(16), c(16);
    std::vector<bf16> b(16);
    CHECK_THROWS_WITH(gemm_bf16_dot(Transpose::no, Transpose::no, 4, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f,
                                    c.data(), 4),
                      Catch::Contains("no AVX512-BF16 kernel runs here"));
    return;
  }
  std::uint32_t seed = 800;
  for (const auto& s : shapes)
    for (const bool ta : {false, true})
      for (const bool tb : {false, true})
        for (const bool prepacked : {false, true}) {
          INFO("M=" << s.m << " N=" << s.n << " K=" << s.k << " ta=" << ta << " tb=" << tb << " prepacked=" << prepacked);
          check_bf16_dot(s, ta, tb, prepacked, 1.0f, 0.0f, seed += 3);
        }
  // alpha and beta, over several K slices (the first slice applies beta, later ones accumulate).
  for (const GemmCase s : {GemmCase{29, 45, 1031}, GemmCase{14, 32, 2}})
    check_bf16_dot(s, false, true, true, -0.75f, 0.5f, seed += 3);
}

TEST_CASE("the vdpbf16ps GEMM is bit-identical for 1, 2 and 3 threads, and its layouts agree bit for bit") {
  if (!bf16_dot_available()) return;
  for (const GemmCase s : {GemmCase{301, 77, 1030}, GemmCase{20, 700, 300}}) {
    const auto a = random_values<float>(static_cast<std::size_t>(s.m * s.k), 900);
    const auto b = random_values<bf16>(static_cast<std::size_t>(s.k * s.n), 901);
    std::vector<bf16> b_t(b.size());  // the same B stored transposed
    for (index_t p = 0; p < s.k; ++p)
      for (index_t j = 0; j < s.n; ++j) b_t[static_cast<std::size_t>(j * s.k + p)] = b[static_cast<std::size_t>(p * s.n + j)];
    const int default_threads = max_threads();
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      set_threads(threads);
      std::vector<float> c(static_cast<std::size_t>(s.m * s.n)), c_t(c.size());
      gemm_bf16_dot(Transpose::no, Transpose::no, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.n, 0.0f, c.data(), s.n);
      gemm_bf16_dot(Transpose::no, s.m, 1.0f, a.data(), s.k, pack_weights_b_bf16_dot(Transpose::yes, s.k, s.n, b_t.data(), s.k),
                    0.0f, c_t.data(), s.n);
      REQUIRE(std::memcmp(c.data(), c_t.data(), c.size() * sizeof(float)) == 0);
      if (first.empty()) first = c;
      REQUIRE(std::memcmp(first.data(), c.data(), c.size() * sizeof(float)) == 0);
    }
    set_threads(default_threads);
  }
}

TEST_CASE("the vdpbf16ps GEMM rejects bad extents and leading dimensions") {
  std::vector<float> a(64), c(64);
  std::vector<bf16> b(64);
  CHECK_THROWS_AS(gemm_bf16_dot(Transpose::no, Transpose::no, -1, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 4),
                  ShapeError);
  CHECK_THROWS_AS(gemm_bf16_dot(Transpose::no, Transpose::no, 4, 4, 8, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 4),
                  ShapeError);  // lda 4 < K 8
  CHECK_THROWS_AS(pack_weights_b_bf16_dot(Transpose::yes, 8, 4, b.data(), 4), ShapeError);  // ldb 4 < K 8
}
