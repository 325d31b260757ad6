// ComfyUI's "simple" spacing (comfy/samplers.py `simple_scheduler`): every (len/n)-th training sigma counted from
// the top, sigma_i = table[len - 1 - int(i * len / n)] for i < n (the stride len/n is a double), then 0. No
// interpolation: every value is a table entry.
#pragma once
#include <string_view>
#include <vector>

#include "latentkit/schedules/sigma_schedule.hpp"

LATENTKIT_NAMESPACE_BEGIN

struct Simple {
  static constexpr std::string_view name = "simple";

  template <std::floating_point T = double, std::floating_point M>
  std::vector<T> sigmas(index_t n, const DiscreteSchedule<M>& model) const {
    detail::check_steps(name, n);
    const std::vector<M>& table = model.sigmas();
    const index_t len = model.size();
    std::vector<T> out;
    out.reserve(static_cast<std::size_t>(n) + 1);
    if (n > 0) {
      const double stride = static_cast<double>(len) / static_cast<double>(n);
      for (index_t i = 0; i < n; ++i) {
        const auto back = static_cast<index_t>(static_cast<double>(i) * stride);  // Python int(): truncation
        out.push_back(static_cast<T>(table[static_cast<std::size_t>(len - 1 - back)]));
      }
    }
    out.push_back(T(0));
    return out;
  }
};

LATENTKIT_NAMESPACE_END
