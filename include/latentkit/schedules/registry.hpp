// Sigma schedules by run-time name (command lines, config files, the samplers' "sampler + schedule" pairs).
// Names follow the front ends: "karras", "exponential", "polyexponential", "normal" (alias "discrete"), "simple",
// "sgm_uniform" (alias "uniform"). An unknown name throws UnknownNameError listing the valid ones.
// Note: A1111's scheduler list calls k-diffusion's get_sigmas "uniform"; here "uniform" means sgm_uniform, as in
// ComfyUI and stable-diffusion.cpp.
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "latentkit/core/names.hpp"
#include "latentkit/schedules/exponential.hpp"
#include "latentkit/schedules/karras.hpp"
#include "latentkit/schedules/normal.hpp"
#include "latentkit/schedules/polyexponential.hpp"
#include "latentkit/schedules/sigma_schedule.hpp"
#include "latentkit/schedules/simple.hpp"
#include "latentkit/schedules/uniform.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Any of the built-in spacings, knobs included (e.g. Karras{.rho = 5}).
using AnySigmaSchedule = std::variant<Karras, Exponential, PolyExponential, Normal, Simple, Uniform>;

/// Every accepted name, aliases included, in the order error messages list them.
inline constexpr std::array<std::string_view, 8> sigma_schedule_names = {
    "karras", "exponential", "polyexponential", "normal", "discrete", "simple", "sgm_uniform", "uniform"};

/// The spacing called `name`, with default knobs.
inline AnySigmaSchedule sigma_schedule_from_name(std::string_view name) {
  if (name == Karras::name) return Karras{};
  if (name == Exponential::name) return Exponential{};
  if (name == PolyExponential::name) return PolyExponential{};
  if (name == Normal::name || name == "discrete") return Normal{};
  if (name == Simple::name) return Simple{};
  if (name == Uniform::name || name == "uniform") return Uniform{};
  throw unknown_name("sigma schedule", name, sigma_schedule_names);
}

/// The canonical name of a spacing (aliases resolve to it).
inline std::string_view sigma_schedule_name(const AnySigmaSchedule& schedule) {
  return std::visit([](const auto& s) -> std::string_view { return std::decay_t<decltype(s)>::name; }, schedule);
}

/// n+1 sigmas ending in 0 for the model's training table, computed in T.
template <std::floating_point T = double, std::floating_point M>
std::vector<T> sigmas_for(const AnySigmaSchedule& schedule, index_t n, const DiscreteSchedule<M>& model) {
  return std::visit([&](const auto& s) { return s.template sigmas<T>(n, model); }, schedule);
}

/// Shorthand: sigmas_for(sigma_schedule_from_name(name), n, model).
template <std::floating_point T = double, std::floating_point M>
std::vector<T> sigmas_by_name(std::string_view name, index_t n, const DiscreteSchedule<M>& model) {
  return sigmas_for<T>(sigma_schedule_from_name(name), n, model);
}

LATENTKIT_NAMESPACE_END
