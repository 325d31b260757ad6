// The comparison run end to end with the registry's samplers: errors, orders, stochastic detection, the CLI.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <sstream>

#include "commands/compare.hpp"
#include "latentkit/experiments/problem_file.hpp"
#include "latentkit/experiments/registry_entries.hpp"
#include "support/fixtures.hpp"

namespace ex = latentkit::experiments;

namespace {

std::vector<ex::ComparisonRow> rows_of(const ex::ComparisonResult& r, const std::string& sampler) {
  std::vector<ex::ComparisonRow> out;
  for (const auto& row : r.rows)
    if (row.sampler == sampler) out.push_back(row);
  return out;
}

/// Runs the CLI command with captured stdout/stderr.
int run_cli(std::vector<std::string_view> args, std::string& out, std::string& err) {
  std::ostringstream o, e;
  auto* old_out = std::cout.rdbuf(o.rdbuf());
  auto* old_err = std::cerr.rdbuf(e.rdbuf());
  const int rc = latentkit_cli::compare(args);
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  out = o.str(), err = e.str();
  return rc;
}

}  // namespace

TEST_CASE("on the K=1 convergence problem the comparison reproduces every recorded k-diffusion error", "[experiments]") {
  const ex::MixtureProblem k1 = ex::load_mixture_problem(latentkit_test::fixture("samplers/convergence_k1.safetensors"));
  const auto summary = nlohmann::json::parse(latentkit_test::read_text(latentkit_test::fixture("samplers/summary.json")));
  REQUIRE(summary.contains("convergence_k1"));
  int checked = 0;
  for (const auto& [name, record] : summary["convergence_k1"].items()) {
    ex::ComparisonOptions options;
    options.steps.clear();
    // The file's runs use get_sigmas_karras(N)[:-1]: N sigmas, N - 1 steps ending at sigma_min.
    for (int n : record["steps"]) options.steps.push_back(n - 1);
    options.timing_repeats = 1;
    const ex::ComparisonPlan plan = ex::plan_from_names({name}, {"karras"});
    const ex::ComparisonResult result = ex::run_comparison(k1, plan.samplers, plan.schedules, options);
    REQUIRE(result.rows.size() == record["steps"].size());
    for (std::size_t i = 0; i < result.rows.size(); ++i) {
      const double expected = record["max_abs_err_vs_exact"][i];
      INFO(name << " N=" << record["steps"][i].get<int>());
      CHECK_FALSE(result.rows[i].stochastic);
      CHECK(result.rows[i].max_abs == Approx(expected).epsilon(1e-6));
      CHECK(result.rows[i].rms <= result.rows[i].max_abs);
      ++checked;
    }
    REQUIRE(result.references.size() == 1);
    CHECK(result.references[0].closed_form);
  }
  CHECK(checked >= 10);
}

TEST_CASE("measured convergence orders: Euler ~1, Heun and DPM++ 2M ~2 (N >= 10)", "[experiments]") {
  const ex::MixtureProblem k1 = ex::load_mixture_problem(latentkit_test::fixture("samplers/convergence_k1.safetensors"));
  ex::ComparisonOptions options;
  options.steps = {10, 20, 40, 80};
  options.timing_repeats = 1;
  const ex::ComparisonPlan plan = ex::plan_from_names({"Euler", "Heun", "DPM++ 2M"}, {"karras"});
  const ex::ComparisonResult result = ex::run_comparison(k1, plan.samplers, plan.schedules, options);
  // Margins: the fixtures' own fits give 1.0 / 2.1 / 2.1; +-0.2 separates order 1 from 2 with room for the
  // pre-asymptotic bend at N = 10.
  CHECK(ex::convergence_order(rows_of(result, "Euler")) == Approx(1.0).margin(0.2));
  CHECK(ex::convergence_order(rows_of(result, "Heun")) == Approx(2.0).margin(0.25));
  CHECK(ex::convergence_order(rows_of(result, "DPM++ 2M")) == Approx(2.0).margin(0.25));
  for (const auto& row : result.rows) {
    CHECK(row.nfe == (row.sampler == "Heun" ? 2 * row.steps : row.steps));  // no step to 0: Heun always corrects
    CHECK(row.overhead_us_per_step >= 0.0);
    CHECK(row.overhead_fraction_of_unet < 1e-2);  // negligible next to a 0.5 s network call
  }
}

TEST_CASE("stochastic samplers are detected and measured against the distribution", "[experiments]") {
  const ex::MixtureProblem p = ex::embedded_mixture_problem();
  ex::ComparisonOptions options;
  options.steps = {5, 40};
  options.timing_repeats = 1;
  options.stochastic_batch = 128;
  const ex::ComparisonPlan plan = ex::plan_from_names({"Euler a", "dpmpp_2m"}, {"karras"});
  const ex::ComparisonResult result = ex::run_comparison(p, plan.samplers, plan.schedules, options);
  REQUIRE(result.rows.size() == 4);
  for (const auto& row : result.rows) {
    INFO(row.sampler << " " << row.steps);
    if (row.sampler == "Euler a") {
      CHECK(row.stochastic);
      CHECK(std::isnan(row.max_abs));
      CHECK(row.sliced_w1 > 0.0);
      CHECK(row.sliced_w1_floor > 0.0);
      CHECK(row.assignment_tv <= 1.0);
    } else {
      CHECK_FALSE(row.stochastic);
      CHECK(std::isnan(row.sliced_w1));
      CHECK(row.max_abs > 0.0);
    }
  }
  // The K=3 reference was built by RK4 and shown converged.
  REQUIRE(result.references.size() == 1);
  CHECK_FALSE(result.references[0].closed_form);
  CHECK(result.references[0].change_on_doubling < 1e-8);
}

TEST_CASE("an A1111 name with a schedule suffix runs under that schedule only", "[experiments]") {
  const ex::ComparisonPlan plan = ex::plan_from_names({"DPM++ 2M Karras", "euler"}, {"normal"});
  REQUIRE(plan.samplers.size() == 2);
  CHECK(plan.samplers[0].name == "DPM++ 2M");
  CHECK(plan.samplers[0].only_schedule == "karras");
  REQUIRE(plan.schedules.size() == 2);
  CHECK(plan.schedules[1].name == "karras");
}

TEST_CASE("unknown sampler or schedule names fail listing the valid names", "[experiments]") {
  CHECK_THROWS_AS(ex::plan_from_names({"Euler", "Bogus 9"}, {"karras"}), latentkit::UnknownNameError);
  CHECK_THROWS_WITH(ex::plan_from_names({"Euler"}, {"wavy"}), Catch::Contains("wavy") && Catch::Contains("karras"));
  std::string out, err;
  CHECK(run_cli({"--samplers", "Euler,Bogus 9"}, out, err) != 0);
  CHECK_THAT(err, Catch::Contains("Bogus 9") && Catch::Contains("DPM++ 2M") && Catch::Contains("dpm++2m"));
  CHECK(run_cli({"--schedules", "wavy"}, out, err) != 0);
  CHECK_THAT(err, Catch::Contains("wavy") && Catch::Contains("exponential"));
  CHECK(run_cli({"--steps", "0"}, out, err) != 0);
  CHECK(run_cli({"--frobnicate", "1"}, out, err) != 0);
}

TEST_CASE("the compare command writes the table, the CSV and the plot files", "[experiments]") {
  const auto dir = std::filesystem::temp_directory_path() / "latentkit_test_compare_cli";
  std::filesystem::remove_all(dir);
  std::string out, err;
  const std::string dir_text = dir.string();
  const int rc = run_cli({"--samplers", "Euler,Euler a", "--schedules", "karras", "--steps", "5,10", "--problem", "k1",
                          "--batch", "64", "--out", dir_text},
                         out, err);
  INFO(err);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains("closed form (K=1)") && Catch::Contains("Euler a"));
  std::istringstream csv(latentkit_test::read_text(dir / "compare.csv"));
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  CHECK(lines == 5);  // header + 2 samplers x 2 step counts
  CHECK(std::filesystem::exists(dir / "compare.gp"));
  CHECK(std::filesystem::exists(dir / "compare.dat"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("the comparison's schedules reproduce k-diffusion's sigmas for every recorded step count", "[experiments]") {
  const auto doc = nlohmann::json::parse(latentkit_test::read_text(latentkit_test::fixture("schedules/schedules.json")));
  const double lo = doc["sigma_min"], hi = doc["sigma_max"];
  // normal: the float32 SD1 table (rtol 2e-6, README); karras/exponential in double (rtol 1e-12).
  const std::vector<std::tuple<std::string, std::string, double>> cases{
      {"normal", "kdiff_discrete_f32", 2e-6}, {"karras", "kdiff_karras_f64", 1e-12},
      {"exponential", "kdiff_exponential_f64", 1e-12}};
  int checked = 0;
  for (const auto& [n_text, by_key] : doc["steps"].items()) {
    const int n = std::stoi(n_text);
    for (const auto& [name, key, rtol] : cases) {
      const std::vector<double> expected = by_key[key]["sigmas"];
      const std::vector<double> got = ex::schedule_entry(name).sigmas(n, lo, hi);
      INFO(name << " N=" << n);
      REQUIRE(got.size() == expected.size());
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(rtol).margin(0));
      ++checked;
    }
  }
  CHECK(checked == static_cast<int>(cases.size() * doc["steps"].size()));  // every recorded step count, every schedule
}

TEST_CASE("the SD1 table is A1111's float32 one, bit for bit, ends included", "[experiments]") {
  const latentkit::DiscreteSchedule<float> table = ex::sd1_training_table();
  CHECK(static_cast<double>(table.sigma_min()) == 0.029167532920837402);
  CHECK(static_cast<double>(table.sigma_max()) == 14.614642143249512);
  latentkit::SafetensorsFile f(latentkit_test::fixture("schedules/train_schedule.safetensors"));
  const auto expected = f.view<float>("kdiff_sigmas_f32");
  REQUIRE(expected.shape()[0] == table.size());
  int differing = 0;
  for (latentkit::index_t i = 0; i < table.size(); ++i) differing += table.sigmas()[i] != expected(i);
  CHECK(differing == 0);
}

TEST_CASE("every schedule name of the registry is a comparison schedule, and the CLI accepts them all",
          "[experiments]") {
  const latentkit::DiscreteSchedule<float> table = ex::sd1_training_table();
  const double lo = table.sigma_min(), hi = table.sigma_max();
  std::string all;
  for (const std::string& name : latentkit::schedule_names()) {
    INFO(name);
    const ex::ScheduleEntry entry = ex::schedule_entry(name);
    const latentkit::AnySigmaSchedule spacing = latentkit::parse_schedule(name);
    CHECK(entry.name == latentkit::sigma_schedule_name(spacing));
    for (int n : {1, 7, 20}) {
      const std::vector<double> got = entry.sigmas(n, lo, hi);
      // on the SD1 range the range spacings and the table spacings both equal the schedules module's answer
      CHECK(got == latentkit::sigmas_for(spacing, n, table));
      REQUIRE(got.size() == static_cast<std::size_t>(n) + 1);
      CHECK(got.back() == 0.0);
      CHECK(std::is_sorted(got.rbegin(), got.rend()));
      CHECK(got.front() > 0.0);
    }
    all += (all.empty() ? "" : ",") + name;
  }
  // aliases collapse onto their canonical schedule: six distinct entries
  CHECK(ex::plan_from_names({"Euler"}, ex::split_names(all)).schedules.size() == 6);
  const auto dir = std::filesystem::temp_directory_path() / "latentkit_test_compare_all_schedules";
  std::filesystem::remove_all(dir);
  std::string out, err;
  const std::string dir_text = dir.string();
  const int rc = run_cli({"--samplers", "Euler", "--schedules", all, "--steps", "3", "--problem", "k1", "--out", dir_text},
                         out, err);
  INFO(err);
  CHECK(rc == 0);
  for (std::string_view canonical : {"karras", "exponential", "polyexponential", "normal", "simple", "sgm_uniform"})
    CHECK_THAT(out, Catch::Contains(std::string(canonical)));
  std::filesystem::remove_all(dir);
}
