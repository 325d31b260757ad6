// Run-time sampler names at the edge: A1111/InvokeAI, stable-diffusion.cpp and k-diffusion/ComfyUI spellings mapped
// onto the compile-time step policies.
#pragma once
#include <array>
#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/names.hpp"
#include "latentkit/samplers/ddim.hpp"
#include "latentkit/samplers/dpm2.hpp"
#include "latentkit/samplers/dpm2_ancestral.hpp"
#include "latentkit/samplers/dpmpp_2m.hpp"
#include "latentkit/samplers/dpmpp_2m_sde.hpp"
#include "latentkit/samplers/dpmpp_2m_v2.hpp"
#include "latentkit/samplers/dpmpp_2s_ancestral.hpp"
#include "latentkit/samplers/dpmpp_3m_sde.hpp"
#include "latentkit/samplers/dpmpp_sde.hpp"
#include "latentkit/samplers/euler.hpp"
#include "latentkit/samplers/euler_ancestral.hpp"
#include "latentkit/samplers/heun.hpp"
#include "latentkit/samplers/ipndm.hpp"
#include "latentkit/samplers/lcm.hpp"
#include "latentkit/samplers/lms.hpp"
#include "latentkit/samplers/sampler.hpp"
#include "latentkit/samplers/step.hpp"
#include "latentkit/schedules/registry.hpp"

LATENTKIT_NAMESPACE_BEGIN

enum class SamplerKind {
  euler, euler_ancestral, heun, dpm2, dpm2_ancestral, lms, dpmpp_2s_ancestral,
  dpmpp_2m, dpmpp_sde, dpmpp_2m_sde, dpmpp_2m_sde_heun, dpmpp_3m_sde, ddim, lcm, dpmpp_2m_v2, ipndm
};

/// One row of the name table. `name` is the canonical spelling (k-diffusion's sample_<name>, also ComfyUI's);
/// `a1111` the A1111/InvokeAI label; `sdcpp` the stable-diffusion.cpp --sampling-method value ("" when it has none).
struct SamplerInfo {
  SamplerKind kind;
  std::string_view name;
  std::string_view a1111;
  std::string_view sdcpp;
  bool stochastic;  // draws fresh noise (with the default hyper-parameters)
};

inline constexpr std::array<SamplerInfo, 16> sampler_table{{
    {SamplerKind::euler, "euler", "Euler", "euler", false},
    {SamplerKind::euler_ancestral, "euler_ancestral", "Euler a", "euler_a", true},
    {SamplerKind::heun, "heun", "Heun", "heun", false},
    {SamplerKind::dpm2, "dpm_2", "DPM2", "dpm2", false},
    {SamplerKind::dpm2_ancestral, "dpm_2_ancestral", "DPM2 a", "", true},
    {SamplerKind::lms, "lms", "LMS", "", false},
    {SamplerKind::dpmpp_2s_ancestral, "dpmpp_2s_ancestral", "DPM++ 2S a", "dpm++2s_a", true},
    {SamplerKind::dpmpp_2m, "dpmpp_2m", "DPM++ 2M", "dpm++2m", false},
    {SamplerKind::dpmpp_sde, "dpmpp_sde", "DPM++ SDE", "", true},
    {SamplerKind::dpmpp_2m_sde, "dpmpp_2m_sde", "DPM++ 2M SDE", "", true},
    {SamplerKind::dpmpp_2m_sde_heun, "dpmpp_2m_sde_heun", "DPM++ 2M SDE Heun", "", true},
    {SamplerKind::dpmpp_3m_sde, "dpmpp_3m_sde", "DPM++ 3M SDE", "", true},
    {SamplerKind::ddim, "ddim", "DDIM", "", false},
    {SamplerKind::lcm, "lcm", "LCM", "lcm", true},
    {SamplerKind::dpmpp_2m_v2, "dpmpp_2m_v2", "DPM++ 2M v2", "dpm++2mv2", false},
    {SamplerKind::ipndm, "ipndm", "iPNDM", "ipndm", false},
}};

inline const SamplerInfo& sampler_info(SamplerKind kind) {
  for (const auto& row : sampler_table)
    if (row.kind == kind) return row;
  throw Error("sampler_info: kind outside the table");
}

/// Every step policy, for run-time dispatch with std::visit.
using AnyStep = std::variant<Euler, EulerAncestral, Heun, DPM2, DPM2Ancestral, LMS, DPMpp2SAncestral, DPMpp2M, DPMppSDE,
                             DPMpp2MSDE, DPMpp3MSDE, DDIM, LCM, DPMpp2MV2, IPNDM>;

/// The step policy with its upstream default hyper-parameters.
inline AnyStep make_step(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::euler: return Euler{};
    case SamplerKind::euler_ancestral: return EulerAncestral{};
    case SamplerKind::heun: return Heun{};
    case SamplerKind::dpm2: return DPM2{};
    case SamplerKind::dpm2_ancestral: return DPM2Ancestral{};
    case SamplerKind::lms: return LMS{};
    case SamplerKind::dpmpp_2s_ancestral: return DPMpp2SAncestral{};
    case SamplerKind::dpmpp_2m: return DPMpp2M{};
    case SamplerKind::dpmpp_sde: return DPMppSDE{};
    case SamplerKind::dpmpp_2m_sde: return DPMpp2MSDE{};
    case SamplerKind::dpmpp_2m_sde_heun: return DPMpp2MSDE{.solver_type = SolverType::heun};
    case SamplerKind::dpmpp_3m_sde: return DPMpp3MSDE{};
    case SamplerKind::ddim: return DDIM{};
    case SamplerKind::lcm: return LCM{};
    case SamplerKind::dpmpp_2m_v2: return DPMpp2MV2{};
    case SamplerKind::ipndm: return IPNDM{};
  }
  throw Error("make_step: kind outside the table");
}

/// A sampler and a schedule chosen by name; the schedule is any spacing of the schedules registry, knobs included
/// (e.g. {SamplerKind::dpmpp_2m, Karras{.rho = 5}}).
struct SamplerChoice {
  SamplerKind sampler;
  AnySigmaSchedule schedule = Normal{};
};

/// A1111's schedule suffixes on sampler labels ("DPM++ 2M Karras"), each naming a spacing of the schedules registry.
struct ScheduleSuffix {
  std::string_view suffix;
  std::string_view schedule;
};
inline constexpr std::array<ScheduleSuffix, 5> a1111_schedule_suffixes{{{" Karras", Karras::name},
                                                                        {" Exponential", Exponential::name},
                                                                        {" Polyexponential", PolyExponential::name},
                                                                        {" SGM Uniform", Uniform::name},
                                                                        {" Simple", Simple::name}}};

/// Front-end spellings of the normal spacing (A1111's "Automatic", sd.cpp's "default"), on top of the schedules
/// registry's own names.
inline constexpr std::array<std::string_view, 2> normal_schedule_aliases{"default", "automatic"};

namespace detail {
inline std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace detail

/// Every accepted sampler name: canonical, A1111 (bare and with each schedule suffix) and stable-diffusion.cpp.
inline std::vector<std::string> sampler_names() {
  std::vector<std::string> names;
  for (const auto& row : sampler_table) names.emplace_back(row.name);
  for (const auto& row : sampler_table) {
    names.emplace_back(row.a1111);
    for (const auto& s : a1111_schedule_suffixes) names.emplace_back(std::string(row.a1111) + std::string(s.suffix));
  }
  for (const auto& row : sampler_table)
    if (!row.sdcpp.empty() && row.sdcpp != row.name) names.emplace_back(row.sdcpp);
  return names;
}

/// Every accepted schedule name: the schedules registry's (aliases included), then the front-end aliases.
inline std::vector<std::string> schedule_names() {
  std::vector<std::string> names(sigma_schedule_names.begin(), sigma_schedule_names.end());
  names.insert(names.end(), normal_schedule_aliases.begin(), normal_schedule_aliases.end());
  return names;
}

/// A schedule by name, case-insensitively ("Karras", "sgm_uniform", "Automatic"), with default knobs. Unknown names
/// throw UnknownNameError listing schedule_names().
inline AnySigmaSchedule parse_schedule(std::string_view name) {
  const std::string key = detail::lower_ascii(name);
  for (std::string_view alias : normal_schedule_aliases)
    if (key == alias) return Normal{};
  for (std::string_view known : sigma_schedule_names)
    if (key == known) return sigma_schedule_from_name(known);
  throw unknown_name("schedule", name, schedule_names());
}

/// Accepts the canonical names ("dpmpp_2m"), A1111/InvokeAI labels with an optional schedule suffix ("DPM++ 2M
/// Karras", "Euler a SGM Uniform") and stable-diffusion.cpp names ("dpm++2m", "euler_a"). The schedule is `normal`
/// unless the name carries a suffix; combine an sd.cpp name with parse_schedule for its --schedule flag.
inline SamplerChoice parse_sampler(std::string_view name) {
  for (const auto& row : sampler_table) {
    if (name == row.name || (!row.sdcpp.empty() && name == row.sdcpp) || name == row.a1111) return {row.kind};
    if (!name.starts_with(row.a1111)) continue;
    for (const auto& s : a1111_schedule_suffixes)
      if (name.substr(row.a1111.size()) == s.suffix) return {row.kind, sigma_schedule_from_name(s.schedule)};
  }
  throw unknown_name("sampler", name, sampler_names());
}

/// True when `name` pins a schedule, i.e. is an A1111 label with a schedule suffix ("DPM++ 2M Karras").
inline bool sampler_name_has_schedule(std::string_view name) {
  const SamplerInfo& row = sampler_info(parse_sampler(name).sampler);
  return name != row.name && name != row.a1111 && name != row.sdcpp;
}

/// Runs the chosen step policy over an explicit sigma list (the run-time twin of calling the policy directly).
template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
X run_steps(const AnyStep& step, D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) {
  return std::visit([&](const auto& policy) { return X(policy(model, std::move(x), sigmas, noise, callback)); }, step);
}

/// The sigmas of a schedule for `steps` steps on `model`. Range spacings (karras, exponential, polyexponential) use
/// the model's [sigma_min, sigma_max]; table spacings (normal, simple, sgm_uniform) need its training table, so the
/// denoiser must expose schedule() (DiscreteTimeDenoiser does); otherwise this throws naming the schedule.
template <class D>
std::vector<double> schedule_sigmas(const AnySigmaSchedule& schedule, int steps, const D& model) {
  return std::visit(
      [&](const auto& spacing) -> std::vector<double> {
        using S = std::decay_t<decltype(spacing)>;
        if constexpr (TableSpacingFor<S, D> || RangeSpacing<S>) {
          return make_sigmas(spacing, steps, model);
        } else {
          throw Error("schedule '" + std::string(S::name) +
                      "' needs the model's discrete training schedule (a denoiser with schedule()); use karras, "
                      "exponential or polyexponential for a denoiser that only knows its sigma range");
        }
      },
      schedule);
}

/// Runs a (sampler, schedule, steps) triple chosen at run time on any Denoiser: x = unit_noise * sigmas[0], then
/// the step policy over the schedule's sigmas. This is what the comparison program and the CLI call.
template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
X sample(const SamplerChoice& choice, D& model, const X& unit_noise, int steps, N&& noise, C&& callback = {}) {
  const std::vector<double> sigmas = schedule_sigmas(choice.schedule, steps, model);
  return run_steps(make_step(choice.sampler), model, X(unit_noise * sigmas.front()), Sigmas(sigmas), noise, callback);
}

LATENTKIT_NAMESPACE_END
