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
#include "latentkit/core/error.hpp"
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
#include "latentkit/schedules/exponential.hpp"
#include "latentkit/schedules/karras.hpp"
#include "latentkit/schedules/normal.hpp"

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

/// Which sigmas: `normal` = the model's own discrete schedule (k-diffusion get_sigmas, A1111 "Automatic"),
/// `karras` (rho 7), `exponential`.
enum class ScheduleKind { normal, karras, exponential };

inline constexpr std::array<std::string_view, 3> schedule_table{"normal", "karras", "exponential"};

inline std::string_view schedule_name(ScheduleKind kind) { return schedule_table[static_cast<std::size_t>(kind)]; }

/// A sampler and a schedule chosen by name.
struct SamplerChoice {
  SamplerKind sampler;
  ScheduleKind schedule = ScheduleKind::normal;
};

namespace detail {
inline std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
inline std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + ("\"" + n + "\"");
  return out;
}
}  // namespace detail

/// Every accepted sampler name: canonical, A1111 (also with " Karras" / " Exponential") and stable-diffusion.cpp.
inline std::vector<std::string> sampler_names() {
  std::vector<std::string> names;
  for (const auto& row : sampler_table) names.emplace_back(row.name);
  for (const auto& row : sampler_table) {
    names.emplace_back(row.a1111);
    names.emplace_back(std::string(row.a1111) + " Karras");
    names.emplace_back(std::string(row.a1111) + " Exponential");
  }
  for (const auto& row : sampler_table)
    if (!row.sdcpp.empty() && row.sdcpp != row.name) names.emplace_back(row.sdcpp);
  return names;
}

/// Every accepted schedule name (parse_schedule also takes the aliases "discrete", "default" and "automatic").
inline std::vector<std::string> schedule_names() { return {schedule_table.begin(), schedule_table.end()}; }

inline ScheduleKind parse_schedule(std::string_view name) {
  const std::string key = detail::lower_ascii(name);
  if (key == "normal" || key == "discrete" || key == "default" || key == "automatic") return ScheduleKind::normal;
  if (key == "karras") return ScheduleKind::karras;
  if (key == "exponential") return ScheduleKind::exponential;
  throw UnknownNameError("unknown schedule '" + std::string(name) + "': valid names are " +
                         detail::join_names(schedule_names()));
}

/// Accepts the canonical names ("dpmpp_2m"), A1111/InvokeAI labels with an optional schedule suffix ("DPM++ 2M
/// Karras", "Euler a") and stable-diffusion.cpp names ("dpm++2m", "euler_a"). The schedule is `normal` unless the
/// name carries a suffix; combine an sd.cpp name with parse_schedule for its --schedule flag.
inline SamplerChoice parse_sampler(std::string_view name) {
  for (const auto& row : sampler_table) {
    if (name == row.name || (!row.sdcpp.empty() && name == row.sdcpp) || name == row.a1111) return {row.kind};
    for (auto [suffix, schedule] : {std::pair<std::string_view, ScheduleKind>{" Karras", ScheduleKind::karras},
                                    {" Exponential", ScheduleKind::exponential}})
      if (name.size() == row.a1111.size() + suffix.size() && name.substr(0, row.a1111.size()) == row.a1111 &&
          name.substr(row.a1111.size()) == suffix)
        return {row.kind, schedule};
  }
  throw UnknownNameError("unknown sampler '" + std::string(name) + "': valid names are " +
                         detail::join_names(sampler_names()));
}

/// Runs the chosen step policy over an explicit sigma list (the run-time twin of calling the policy directly).
template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
X run_steps(const AnyStep& step, D& model, X x, Sigmas sigmas, N&& noise, C&& callback = {}) {
  return std::visit([&](const auto& policy) { return X(policy(model, std::move(x), sigmas, noise, callback)); }, step);
}

/// The sigmas of a schedule chosen by name for `steps` steps on `model` (Karras with rho 7). `normal` needs the
/// model's training table, so the denoiser must expose schedule() (DiscreteTimeDenoiser does); otherwise it throws.
template <class D>
std::vector<double> schedule_sigmas(ScheduleKind kind, int steps, const D& model) {
  switch (kind) {
    case ScheduleKind::karras: return make_sigmas(Karras{}, steps, model);
    case ScheduleKind::exponential: return make_sigmas(Exponential{}, steps, model);
    case ScheduleKind::normal:
      if constexpr (TableSpacingFor<Normal, D>) {
        return make_sigmas(Normal{}, steps, model);
      } else {
        throw Error("schedule 'normal' needs the model's discrete training schedule (a denoiser with schedule()); "
                    "use 'karras' or 'exponential' for a denoiser that only knows its sigma range");
      }
  }
  throw Error("schedule_sigmas: kind outside the table");
}

/// Runs a (sampler, schedule, steps) triple chosen at run time on any Denoiser: x = unit_noise * sigmas[0], then
/// the step policy over the schedule's sigmas. This is what the comparison program and the CLI call.
template <Latent X, Denoiser<X> D, class N, class C = NoCallback>
X sample(const SamplerChoice& choice, D& model, const X& unit_noise, int steps, N&& noise, C&& callback = {}) {
  const std::vector<double> sigmas = schedule_sigmas(choice.schedule, steps, model);
  return run_steps(make_step(choice.sampler), model, X(unit_noise * sigmas.front()), Sigmas(sigmas), noise, callback);
}

LATENTKIT_NAMESPACE_END
