// Parity with every entry of schedules/schedules.json: every key, every N, every field.
#include <set>
#include <string>

#include "latentkit/schedules/all.hpp"
#include "schedule_fixtures.hpp"

using namespace latentkit;
using schedules_test::require_close;
using schedules_test::require_equal;
using schedules_test::rtol_for;

namespace {

/// Options encoded in a key: "<family>_<tokens...>" such as ddim_leading_offset1, euler_karras, dpmpp_2m_karras,
/// kdiff_exponential_f64.
struct KeyOptions {
  TimestepSpacing spacing = TimestepSpacing::linspace;
  index_t steps_offset = 0;
  bool karras = false;
};
KeyOptions parse_options(const std::string& rest) {
  KeyOptions o;
  std::size_t pos = 0;
  while (pos < rest.size()) {
    const std::size_t next = rest.find('_', pos);
    const std::string tok = rest.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    if (tok == "karras") o.karras = true;
    else if (tok.rfind("offset", 0) == 0) o.steps_offset = std::stoll(tok.substr(6));
    else if (!tok.empty()) o.spacing = parse_timestep_spacing(tok);
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return o;
}
bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

struct Checker {
  const nlohmann::json& entry;
  std::set<std::string> checked;
  std::vector<double> doubles(const std::string& field) {
    checked.insert(field);
    return entry.at(field).get<std::vector<double>>();
  }
  std::vector<std::int64_t> ints(const std::string& field) {
    checked.insert(field);
    return entry.at(field).get<std::vector<std::int64_t>>();
  }
  std::string dtype(const std::string& field) {
    checked.insert(field);
    return entry.at(field).get<std::string>();
  }
  void require_all_checked() {
    for (const auto& [field, value] : entry.items()) {
      INFO("field " << field << " of this entry was not compared");
      CHECK(checked.count(field) == 1);
    }
  }
};

}  // namespace

TEST_CASE("every schedule in schedules.json is reproduced for every step count", "[schedules][fixtures]") {
  const auto doc = schedules_test::load_json("schedules/schedules.json");
  const TrainingSchedule train = schedules_test::fixture_training(doc);
  const std::vector<float> diffusers_ac = alphas_cumprod<float>(train);
  const auto model32 = DiscreteSchedule<float>::compvis(train);
  const auto model64 = DiscreteSchedule<double>::compvis(train);
  const double sigma_min = doc.at("sigma_min").get<double>();
  const double sigma_max = doc.at("sigma_max").get<double>();

  std::size_t entries = 0;
  REQUIRE_FALSE(doc.at("steps").empty());
  for (const auto& [n_text, schedules] : doc.at("steps").items()) {
    const index_t n = std::stoll(n_text);
    for (const auto& [key, entry] : schedules.items()) {
      INFO("N = " << n << ", key " << key);
      Checker c{entry, {}};
      ++entries;
      if (starts_with(key, "ddim_")) {
        const KeyOptions o = parse_options(key.substr(5));
        REQUIRE(c.dtype("timesteps_dtype") == "int64");
        require_equal(ddim_timesteps(n, o.spacing, o.steps_offset, train.num_train_timesteps), c.ints("timesteps"), "timesteps");
      } else if (starts_with(key, "euler_")) {
        const KeyOptions o = parse_options(key.substr(6));
        EulerDiscreteConfig cfg;
        cfg.train = train;
        cfg.timestep_spacing = o.spacing;
        cfg.steps_offset = o.steps_offset;
        cfg.use_karras_sigmas = o.karras;
        const auto got = euler_discrete_timesteps(std::span<const float>(diffusers_ac), cfg, n);
        require_close(got.timesteps, c.doubles("timesteps"), rtol_for(c.dtype("timesteps_dtype")), "timesteps");
        require_close(got.sigmas, c.doubles("sigmas"), rtol_for(c.dtype("sigmas_dtype")), "sigmas");
        c.checked.insert("init_noise_sigma");
        CHECK(got.init_noise_sigma == Approx(entry.at("init_noise_sigma").get<double>()).epsilon(2e-6));
      } else if (starts_with(key, "dpmpp_2m")) {
        const KeyOptions o = parse_options(key.substr(8));
        DpmSolverMultistepConfig cfg;
        cfg.train = train;
        cfg.timestep_spacing = o.spacing;
        cfg.steps_offset = o.steps_offset;
        cfg.use_karras_sigmas = o.karras;
        const auto got = dpm_solver_multistep_timesteps(std::span<const float>(diffusers_ac), cfg, n);
        REQUIRE(c.dtype("timesteps_dtype") == "int64");
        require_equal(got.timesteps, c.ints("timesteps"), "timesteps");
        require_close(got.sigmas, c.doubles("sigmas"), rtol_for(c.dtype("sigmas_dtype")), "sigmas");
      } else if (starts_with(key, "kdiff_")) {
        const std::string dtype = c.dtype("dtype");
        const bool f32 = dtype == "float32";
        REQUIRE((f32 || dtype == "float64"));
        const std::vector<double> want = c.doubles("sigmas");
        std::vector<double> got;
        if (starts_with(key, "kdiff_karras_"))
          got = f32 ? schedules_test::to_double(Karras{}.sigmas<float>(n, sigma_min, sigma_max))
                    : Karras{}.sigmas<double>(n, sigma_min, sigma_max);
        else if (starts_with(key, "kdiff_exponential_"))
          got = f32 ? schedules_test::to_double(Exponential{}.sigmas<float>(n, sigma_min, sigma_max))
                    : Exponential{}.sigmas<double>(n, sigma_min, sigma_max);
        else if (starts_with(key, "kdiff_polyexponential_"))
          got = f32 ? schedules_test::to_double(PolyExponential{}.sigmas<float>(n, sigma_min, sigma_max))
                    : PolyExponential{}.sigmas<double>(n, sigma_min, sigma_max);
        else if (starts_with(key, "kdiff_discrete_"))
          got = f32 ? schedules_test::to_double(model32.get_sigmas(n)) : model64.get_sigmas(n);
        else
          FAIL("no reproduction for this kdiff key");
        require_close(got, want, rtol_for(dtype), "sigmas");

        // sigma -> t maps of the fixture's own sigmas (without the trailing 0)
        const std::vector<double> inputs(want.begin(), want.end() - 1);
        auto continuous = [&](bool table32) {
          std::vector<double> t;
          for (double s : inputs)
            t.push_back(table32 ? static_cast<double>(model32.sigma_to_t(static_cast<float>(s))) : model64.sigma_to_t(s));
          return t;
        };
        if (entry.contains("sigma_to_t_f32_table"))
          require_close(continuous(true), c.doubles("sigma_to_t_f32_table"), rtol_for("float32"), "sigma_to_t_f32_table");
        if (entry.contains("sigma_to_t"))
          require_close(continuous(f32), c.doubles("sigma_to_t"), rtol_for(dtype), "sigma_to_t");
        if (entry.contains("sigma_to_t_quantized")) {
          std::vector<index_t> q;
          for (double s : inputs)
            q.push_back(f32 ? model32.sigma_to_t_quantized(static_cast<float>(s)) : model64.sigma_to_t_quantized(s));
          require_equal(q, c.ints("sigma_to_t_quantized"), "sigma_to_t_quantized");
        }
      } else {
        FAIL("no reproduction for this schedules.json key");
      }
      c.require_all_checked();
    }
  }
  CHECK(entries > 0);
}
