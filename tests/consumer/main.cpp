#include <latentkit/latentkit.hpp>

#include <cstdio>

int main() {
  auto t = latentkit::Tensor<float>::full({2, 3}, 1.5f);
  const float back = latentkit::bf16(t(1, 2));
  if (back != 1.5f || t.view().transpose().shape() != latentkit::Dims{3, 2}) {
    std::puts("consumer: FAILED");
    return 1;
  }
  std::printf("consumer: latentkit %d.%d.%d found through find_package and usable\n", LATENTKIT_VERSION_MAJOR,
              LATENTKIT_VERSION_MINOR, LATENTKIT_VERSION_PATCH);
  return 0;
}
