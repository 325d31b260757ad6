// The kernel library (latentkit::kernels): each level's table runs the same kernels as the compiled-in code of the
// same architecture, bit for bit, for any thread count; the automatic choice is the best this CPU supports; a
// choice that cannot run is refused, and so is a matrix packed for another level's micro-kernel.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "gemm/gemm_test_support.hpp"
#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/kernels/activation.hpp"
#include "latentkit/kernels/attention.hpp"
#include "latentkit/kernels/conv2d.hpp"
#include "latentkit/kernels/gemm/bf16_dot.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/kernels/norm.hpp"
#include "latentkit/kernels/reference/gemm_conv.hpp"
#include "ops/support.hpp"

using namespace latentkit;

namespace {

/// Restores the automatic choice when a test ends, whatever it forced.
struct ChoiceScope {
  ~ChoiceScope() { simd::choose_kernels(simd::KernelChoice::automatic); }
};

Tensor<float> random_tensor(const Dims& shape, std::uint32_t seed) {
  const std::vector<float> v = gemm_test::random_values(static_cast<std::size_t>(shape.numel()), seed);
  Tensor<float> t(shape);
  std::memcpy(t.data(), v.data(), v.size() * sizeof(float));
  return t;
}

/// One call of every kernel entry point the library serves, on shapes with edges in every blocking direction
/// (M, N, K not multiples of any MR, NR or KC; K past one K slice of every level).
std::vector<Tensor<float>> run_every_kernel() {
  std::vector<Tensor<float>> out;
  const index_t m = 37, n = 53, k = 1100;
  const Tensor<float> a = random_tensor({m, k}, 1), b = random_tensor({k, n}, 2);
  const std::vector<bf16> w = gemm_test::random_values<bf16>(static_cast<std::size_t>(n * k), 3);

  Tensor<float> c = random_tensor({m, n}, 4);  // beta = 0.5 reads it
  gemm(Transpose::no, Transpose::no, m, n, k, 1.5f, a.data(), k, b.data(), n, 0.5f, c.data(), n);
  out.push_back(c.clone());
  gemm(Transpose::no, Transpose::yes, m, n, k, 1.0f, a.data(), k, w.data(), k, 0.0f, c.data(), n);
  out.push_back(c.clone());
  const PackedMatrix packed_b = pack_weights_b(Transpose::yes, k, n, w.data(), k);
  gemm(Transpose::no, m, 1.0f, a.data(), k, packed_b, 0.0f, c.data(), n);
  out.push_back(c.clone());
  const PackedMatrix packed_a = pack_weights_a(Transpose::no, m, k, a.data(), k);
  gemm(packed_a, Transpose::no, n, 1.0f, b.data(), n, 0.0f, c.data(), n);
  out.push_back(c.clone());

  const Tensor<float> image = random_tensor({2, 5, 19, 23}, 5), weights = random_tensor({7, 5, 3, 3}, 6);
  const Tensor<float> bias = random_tensor({7}, 7);
  out.push_back(conv2d(image.view(), weights.view(), bias.view(), Conv2dGeometry{2, 2, 0, 1, 0, 1}));

  const Tensor<float> q = random_tensor({2, 3, 70, 40}, 8), kk = random_tensor({2, 3, 77, 40}, 9);
  const Tensor<float> v = random_tensor({2, 3, 77, 24}, 10);
  out.push_back(attention(q.view(), kk.view(), v.view()));

  const Tensor<float> x = random_tensor({2, 64, 9, 11}, 11), gamma = random_tensor({64}, 12), beta = random_tensor({64}, 13);
  out.push_back(group_norm_silu(x.view(), 32, 1e-5f, gamma.view(), beta.view()));
  const Tensor<float> rows = random_tensor({13, 77}, 14), g2 = random_tensor({77}, 15), b2 = random_tensor({77}, 16);
  out.push_back(layer_norm(rows.view(), 1e-5f, g2.view(), b2.view()));
  out.push_back(softmax(rows.view()));
  out.push_back(geglu(random_tensor({5, 2 * 37}, 17).view()));
  return out;
}

bool same_bits(const std::vector<Tensor<float>>& x, const std::vector<Tensor<float>>& y) {
  if (x.size() != y.size()) return false;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!ops_test::bit_identical(x[i], y[i])) {
      UNSCOPED_INFO("kernel call " << i << " differs");
      return false;
    }
  return true;
}

std::vector<const kernel_library::Table*> runnable_tables() {
  std::vector<const kernel_library::Table*> tables;
  for (const kernel_library::Table* t : simd::library_tables())
    if (simd::cpu_runs(*t)) tables.push_back(t);
  return tables;
}

}  // namespace

TEST_CASE("each kernel-library level gives the bits of the compiled-in kernels of its architecture") {
  if (simd::library_tables().empty()) {
    WARN("this build does not link the kernel library");
    return;
  }
  const ChoiceScope restore;
  simd::choose_kernels(simd::KernelChoice::compiled_in);
  const std::vector<Tensor<float>> compiled_in = run_every_kernel();
  const std::string compiled_arch = simd::best_arch_name();
  int compared = 0;
  for (const kernel_library::Table* table : runnable_tables()) {
    INFO("level " << table->level << " (" << table->arch << "), compiled-in " << compiled_arch);
    simd::choose_kernels(simd::parse_kernel_choice(table->level));
    REQUIRE(simd::library_kernels() == table);
    const std::vector<Tensor<float>> from_library = run_every_kernel();
    if (compiled_arch == table->arch) {
      CHECK(same_bits(from_library, compiled_in));
      ++compared;
    }
    // Any level, against float64: the first product is 1.5 A B + 0.5 C0.
    const index_t m = 37, n = 53, k = 1100;
    const Tensor<float> a = random_tensor({m, k}, 1), b = random_tensor({k, n}, 2), c0 = random_tensor({m, n}, 4);
    const std::vector<float> c0_values(c0.data(), c0.data() + c0.numel());
    const std::vector<float> computed(from_library[0].data(), from_library[0].data() + from_library[0].numel());
    gemm_test::check_product(gemm_test::GemmCase{m, n, k}, [&](index_t i, index_t p) { return a(i, p); },
                             [&](index_t p, index_t j) { return b(p, j); }, 1.5f, 0.5f, c0_values, computed, n);
  }
  // A -march=native build on a CPU the library has a level for compares at least that level bit for bit.
  if (simd::cpu_levels().x86_64_v4 && compiled_arch == "avx512bw") CHECK(compared >= 1);
}

TEST_CASE("each kernel-library level gives bit-identical results for 1, 2 and 3 threads") {
  if (simd::library_tables().empty()) {
    WARN("this build does not link the kernel library");
    return;
  }
  const ChoiceScope restore;
  for (const kernel_library::Table* table : runnable_tables()) {
    INFO("level " << table->level);
    simd::choose_kernels(simd::parse_kernel_choice(table->level));
    std::vector<Tensor<float>> one;
    {
      const ops_test::ThreadScope threads(1);
      one = run_every_kernel();
    }
    for (int t : {2, 3}) {
      INFO(t << " threads");
      const ops_test::ThreadScope threads(t);
      CHECK(same_bits(run_every_kernel(), one));
    }
  }
}

TEST_CASE("the automatic choice runs the best instruction set this CPU supports") {
  const ChoiceScope restore;
  simd::choose_kernels(simd::KernelChoice::automatic);
  const simd::KernelReport report = simd::kernel_report();
  const simd::CpuLevels cpu = simd::cpu_levels();
  INFO("running " << report.running << ": " << report.why);
  const bool native_or_library = !simd::library_tables().empty() || std::string(report.compiled_in) != "sse2";
  if (native_or_library && cpu.x86_64_v4) CHECK(report.running_arch == "avx512bw");
  else if (native_or_library && cpu.x86_64_v3) CHECK(report.running_arch == "fma3+avx2");
  if (!simd::library_tables().empty()) CHECK(report.warning.empty());
  // The running GEMM blocking is the running kernels' blocking.
  if (const kernel_library::Table* table = simd::library_kernels()) {
    CHECK(gemm_kernel::running_blocking().mr == table->blocking.mr);
    CHECK(gemm_kernel::running_blocking().kc == table->blocking.kc);
  }
}

TEST_CASE("forcing compiled-in kernels below the CPU's best is reported with a warning") {
  const ChoiceScope restore;
  simd::choose_kernels(simd::KernelChoice::compiled_in);
  const simd::KernelReport report = simd::kernel_report();
  CHECK(simd::library_kernels() == nullptr);
  CHECK(report.running == "compiled-in " + report.compiled_in);
  if (report.compiled_in == "sse2" && simd::cpu_levels().x86_64_v3) {
    CHECK_THAT(report.warning, Catch::Contains("slower than this CPU's"));
  }
}

TEST_CASE("kernel choices are parsed by name and an unrunnable one is refused") {
  CHECK(simd::parse_kernel_choice("x86-64-v4") == simd::KernelChoice::x86_64_v4);
  CHECK(simd::parse_kernel_choice("compiled-in") == simd::KernelChoice::compiled_in);
  CHECK_THROWS_AS(simd::parse_kernel_choice("avx9"), UnknownNameError);
  CHECK_THROWS_WITH(simd::parse_kernel_choice("avx9"), Catch::Contains("\"x86-64-v3\""));
  const ChoiceScope restore;
  for (const simd::KernelChoice level : {simd::KernelChoice::x86_64_v3, simd::KernelChoice::x86_64_v4}) {
    const bool runnable = simd::level_table(level) != nullptr;
    if (runnable) {
      CHECK_NOTHROW(simd::choose_kernels(level));
    } else {
      CHECK_THROWS_AS(simd::choose_kernels(level), Error);
    }
  }
}

TEST_CASE("a matrix packed for one level's micro-kernel is refused by another's") {
  const std::vector<const kernel_library::Table*> tables = runnable_tables();
  if (tables.size() < 2) {
    WARN("fewer than two kernel-library levels run on this CPU");
    return;
  }
  const ChoiceScope restore;
  const index_t m = 8, n = 40, k = 30;
  const std::vector<float> a = gemm_test::random_values(m * k, 1), w = gemm_test::random_values(k * n, 2);
  std::vector<float> c(m * n);
  simd::choose_kernels(simd::parse_kernel_choice(tables.back()->level));
  const PackedMatrix packed = pack_weights_b(Transpose::no, k, n, w.data(), n);
  simd::choose_kernels(simd::parse_kernel_choice(tables.front()->level));
  CHECK_THROWS_WITH(gemm(Transpose::no, m, 1.0f, a.data(), k, packed, 0.0f, c.data(), n),
                    Catch::Contains("packed matrix was made for another micro-kernel"));
}

TEST_CASE("the kernel library's vdpbf16ps GEMM gives the bits of the compiled-in one") {
  if (simd::library_bf16_dot() == nullptr) {
    WARN("no kernel-library vdpbf16ps GEMM runs here (not linked, or no AVX512-BF16)");
    return;
  }
  const ChoiceScope restore;
  const index_t m = 45, n = 70, k = 1030;  // edges in M and N, an odd K past two K slices
  const std::vector<float> a = gemm_test::random_values(static_cast<std::size_t>(m * k), 31);
  const std::vector<bf16> w = gemm_test::random_values<bf16>(static_cast<std::size_t>(n * k), 32);
  const auto run = [&] {
    std::vector<float> c(static_cast<std::size_t>(m * n)), c_packed(c.size());
    gemm_bf16_dot(Transpose::no, Transpose::yes, m, n, k, 1.0f, a.data(), k, w.data(), k, 0.0f, c.data(), n);
    gemm_bf16_dot(Transpose::no, m, 1.0f, a.data(), k, pack_weights_b_bf16_dot(Transpose::yes, k, n, w.data(), k), 0.0f,
                  c_packed.data(), n);
    REQUIRE(std::memcmp(c.data(), c_packed.data(), c.size() * sizeof(float)) == 0);
    return c;
  };
  simd::choose_kernels(simd::KernelChoice::x86_64_v4);
  REQUIRE(gemm_kernel::bf16_dot_path() == gemm_kernel::Bf16DotPath::library);
  const std::vector<float> from_library = run();
  simd::choose_kernels(simd::KernelChoice::compiled_in);
  if (gemm_kernel::bf16_dot_path() != gemm_kernel::Bf16DotPath::compiled_in) {
    WARN("no compiled-in vdpbf16ps kernel to compare with (this build does not target AVX512-BF16)");
    return;
  }
  const std::vector<float> compiled_in = run();
  CHECK(std::memcmp(from_library.data(), compiled_in.data(), compiled_in.size() * sizeof(float)) == 0);
}
