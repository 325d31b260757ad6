// Built against an install, twice (scripts/check-consumer): the default build (-march=native from
// latentkitConfig.cmake) and the portable one (LATENTKIT_NATIVE=OFF). Each checks that the kernels a GEMM runs
// are those of the best instruction set this CPU supports, by the kernel's architecture name, and that the GEMM
// is right.
#include <latentkit/latentkit.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#ifndef CONSUMER_BUILD
#define CONSUMER_BUILD "default"
#endif

int main() {
  using namespace latentkit;
  auto t = Tensor<float>::full({2, 3}, 1.5f);
  const float back = bf16(t(1, 2));
  if (back != 1.5f || t.view().transpose().shape() != Dims{3, 2}) {
    std::puts("consumer: FAILED (tensor basics)");
    return 1;
  }

  const simd::CpuLevels cpu = simd::cpu_levels();
  const std::string expected = cpu.x86_64_v4 ? "avx512bw" : cpu.x86_64_v3 ? "fma3+avx2" : simd::best_arch_name();
  const simd::KernelReport report = simd::kernel_report();
  std::printf("consumer (%s build): compiled in %s; GEMM runs %s (%s); CPU best %s\n", CONSUMER_BUILD,
              report.compiled_in.c_str(), report.running.c_str(), report.why.c_str(), report.cpu_best.c_str());
  if (report.running_arch != expected || !report.warning.empty()) {
    std::printf("consumer: FAILED: the GEMM kernel is %s, the best this CPU supports is %s%s%s\n",
                report.running_arch.c_str(), expected.c_str(), report.warning.empty() ? "" : "; ",
                report.warning.c_str());
    return 1;
  }

  // A product through whichever kernels run: C = A B with A = 1 and B(k, j) = j, so C(i, j) = K * j.
  const index_t m = 33, n = 47, k = 129;
  std::vector<float> a(m * k, 1.0f), b(k * n), c(m * n, -1.0f);
  for (index_t p = 0; p < k; ++p)
    for (index_t j = 0; j < n; ++j) b[p * n + j] = static_cast<float>(j);
  gemm(Transpose::no, Transpose::no, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j)
      if (c[i * n + j] != static_cast<float>(k * j)) {
        std::printf("consumer: FAILED: C(%lld, %lld) = %g, expected %g\n", static_cast<long long>(i),
                    static_cast<long long>(j), c[i * n + j], static_cast<double>(k * j));
        return 1;
      }
  std::printf("consumer: latentkit %d.%d.%d found through find_package and usable\n", LATENTKIT_VERSION_MAJOR,
              LATENTKIT_VERSION_MINOR, LATENTKIT_VERSION_PATCH);
  return 0;
}
