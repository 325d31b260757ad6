// The comparison's outputs: table, CSV, gnuplot script.
#include <catch2/catch.hpp>

#include <sstream>

#include "latentkit/experiments/comparison_report.hpp"

namespace ex = latentkit::experiments;

namespace {

ex::ComparisonResult hand_made_result() {
  ex::ComparisonResult r;
  r.problem = "hand made";
  r.components = 3, r.dims = 64, r.batch = 4;
  ex::ComparisonRow ode;
  ode.sampler = "DPM++ 2M", ode.schedule = "karras", ode.steps = 10, ode.nfe = 10;
  ode.max_abs = 1.25e-3, ode.rms = 4e-4, ode.overhead_us_per_step = 12.5, ode.overhead_fraction_of_unet = 2.5e-5;
  ex::ComparisonRow sde = ode;
  sde.sampler = "Euler \"a\", odd", sde.stochastic = true, sde.max_abs = sde.rms = std::nan("");
  sde.sliced_w1 = 0.5, sde.sliced_w1_floor = 0.1, sde.mean_error = 0.2, sde.assignment_tv = 0.05;
  r.rows = {ode, sde};
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("the CSV has one full-precision line per row, quoted names and empty non-applicable cells", "[experiments]") {
  std::ostringstream csv;
  ex::write_csv(csv, hand_made_result());
  const auto lines = lines_of(csv.str());
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == ex::csv_header);
  CHECK(lines[1] == "DPM++ 2M,karras,10,10,0,0,0.00125,0.00040000000000000002,,,,,12.5,2.5000000000000001e-05");
  CHECK(lines[2] == "\"Euler \"\"a\"\", odd\",karras,10,10,1,0,,,0.5,0.10000000000000001,0.20000000000000001,"
                    "0.050000000000000003,12.5,2.5000000000000001e-05");
}

TEST_CASE("the table is aligned: every data line is as wide as the header", "[experiments]") {
  std::ostringstream table;
  ex::write_table(table, hand_made_result());
  const auto lines = lines_of(table.str());
  const auto header = std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("sampler", 0) == 0; });
  REQUIRE(header != lines.end());
  REQUIRE(lines.end() - header == 4);  // header, rule, two rows
  for (auto it = header; it != lines.end(); ++it) CHECK(it->size() == header->size());
  CHECK(header[2].find("DPM++ 2M") == 0);
  CHECK(header[2].find("1.250e-03") != std::string::npos);
  CHECK(header[3].find("sde") != std::string::npos);
  CHECK(table.str().find("0.5 s per UNet call") != std::string::npos);
}

TEST_CASE("the plot script has one series per sampler and schedule, in two log-log panels", "[experiments]") {
  const auto dir = std::filesystem::temp_directory_path() / "latentkit_test_plot";
  std::filesystem::remove_all(dir);
  const ex::PlotFiles files = ex::write_plot(dir, hand_made_result(), "compare", /*render=*/false);
  const std::string gp = [&] {
    std::ifstream in(files.script);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  CHECK(gp.find("set logscale xy") != std::string::npos);
  CHECK(gp.find("layout 1,2") != std::string::npos);
  CHECK(gp.find("index 0 using 1:2") != std::string::npos);
  CHECK(gp.find("index 1 using 1:2") != std::string::npos);
  CHECK(gp.find("title \"Euler \\\"a\\\", odd / karras\"") != std::string::npos);
  CHECK(gp.find("Monte-Carlo floor") != std::string::npos);
  CHECK(std::filesystem::exists(files.data));
  std::filesystem::remove_all(dir);
}
