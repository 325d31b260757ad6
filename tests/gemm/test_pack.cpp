// GEMM packing against its definition: every packed layout the micro-kernel reads, element by element.
//
// The packing routines take fast paths (in-register 8 x 8 transposes for row-major A and column-major B, a
// row-by-row walk for a row-major B block); each must write exactly what the plain definition says, including the
// zero rows/columns past a matrix edge and every K tail that is not a multiple of the vector width.
#include <vector>

#include "gemm_test_support.hpp"
#include "latentkit/kernels/gemm/pack.hpp"

using namespace latentkit;
using namespace latentkit::gemm_kernel;
using gemm_test::random_values;

namespace {

/// A matrix of `rows` x `cols` over `storage` in one of three layouts: row-major, column-major, general strides.
template <class T>
StridedMatrix<T> layout(const std::vector<T>& storage, index_t rows, index_t cols, int kind) {
  switch (kind) {
    case 0: return {storage.data(), rows, cols, cols + 3, 1};            // row-major, padded rows
    case 1: return {storage.data(), rows, cols, 1, rows + 2};            // column-major, padded columns
    default: return {storage.data(), rows, cols, 2 * cols + 1, 2};       // neither stride is 1
  }
}

template <class T>
std::size_t storage_size(index_t rows, index_t cols) {
  return static_cast<std::size_t>((rows + 3) * (2 * cols + 3));
}

template <int MR, class T>
void check_a_panels(int kind) {
  const index_t m = 2 * MR + 5, k = 45;  // K tails of 5 after the 8-wide transposes, a partial last panel
  const auto storage = random_values<T>(storage_size<T>(m, k), 40 + static_cast<std::uint32_t>(kind));
  const StridedMatrix<T> a = layout(storage, m, k, kind);
  for (index_t p0 : {index_t{0}, index_t{3}})
    for (index_t kc : {index_t{1}, index_t{8}, index_t{9}, k - p0})
      for (index_t i0 = 0; i0 < m; i0 += MR) {
        const int rows = static_cast<int>(std::min<index_t>(MR, m - i0));
        std::vector<float> panel(static_cast<std::size_t>(kc * MR), -7.0f);
        pack_a_panel<MR>(panel.data(), a, i0, rows, p0, kc);
        for (index_t q = 0; q < kc; ++q)
          for (int i = 0; i < MR; ++i) {
            INFO("kind " << kind << " MR " << MR << " p0 " << p0 << " kc " << kc << " i0 " << i0 << " k " << q << " i " << i);
            const float want = i < rows ? static_cast<float>(a(i0 + i, p0 + q)) : 0.0f;
            REQUIRE(panel[static_cast<std::size_t>(q * MR + i)] == want);
          }
      }
}

template <int NR, class T>
void check_b_block(int kind) {
  const index_t n = 3 * NR + 7, k = 37;
  const auto storage = random_values<T>(storage_size<T>(k, n), 50 + static_cast<std::uint32_t>(kind));
  const StridedMatrix<T> b = layout(storage, k, n, kind);
  for (index_t j0 : {index_t{0}, index_t{NR}})
    for (index_t kc : {index_t{1}, index_t{8}, index_t{17}, k - 2}) {
      const index_t p0 = k - kc, nc = n - j0, panels = (nc + NR - 1) / NR;
      std::vector<float> block(static_cast<std::size_t>(panels * NR * kc), -7.0f), panel(static_cast<std::size_t>(NR * kc));
      pack_b_block<NR>(block.data(), b, j0, nc, p0, kc);
      for (index_t q = 0; q < panels; ++q) {
        const int cols = static_cast<int>(std::min<index_t>(NR, nc - q * NR));
        pack_b_panel<NR>(panel.data(), b, j0 + q * NR, cols, p0, kc);
        for (index_t p = 0; p < kc; ++p)
          for (int j = 0; j < NR; ++j) {
            INFO("kind " << kind << " NR " << NR << " j0 " << j0 << " kc " << kc << " panel " << q << " k " << p << " j " << j);
            const float want = j < cols ? static_cast<float>(b(p0 + p, j0 + q * NR + j)) : 0.0f;
            REQUIRE(block[static_cast<std::size_t>((q * NR + 0) * kc + p * NR + j)] == want);
            REQUIRE(panel[static_cast<std::size_t>(p * NR + j)] == want);
          }
      }
    }
}

template <class T>
void check_all_widths() {
  for (int kind = 0; kind < 3; ++kind) {
    check_a_panels<6, T>(kind);   // AVX2 MR
    check_a_panels<14, T>(kind);  // AVX-512 MR
    check_a_panels<4, T>(kind);   // SSE/NEON-sized
    check_b_block<16, T>(kind);   // AVX2 NR
    check_b_block<32, T>(kind);   // AVX-512 NR
    check_b_block<8, T>(kind);
  }
}

}  // namespace

TEST_CASE("packed A panels and B blocks hold exactly the matrix elements, zero past the edges (float)") {
  check_all_widths<float>();
}

TEST_CASE("packed A panels and B blocks widen bf16 and f16 exactly") {
  check_all_widths<bf16>();
  check_all_widths<f16>();
}
