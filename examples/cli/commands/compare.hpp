// `latentkit compare`: samplers x schedules x step counts on the analytic Gaussian-mixture model; prints a table
// and writes compare.csv, compare.txt and an error-vs-NFE plot (compare.svg/.png via gnuplot) into --out.
#pragma once
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli_support.hpp"
#include "latentkit/experiments/comparison_report.hpp"
#include "latentkit/experiments/problem_file.hpp"
#include "latentkit/experiments/registry_entries.hpp"

namespace latentkit_cli {

inline constexpr const char* compare_usage =
    "usage: latentkit compare [--samplers LIST] [--schedules LIST] [--steps LIST] [--out DIR]\n"
    "                         [--problem k1|k3|FILE] [--endpoint last|zero] [--batch N] [--unet-seconds S]\n"
    "                         [--seed N] [--list]\n"
    "  --samplers   comma-separated sampler names, A1111 (\"DPM++ 2M\", \"Euler a\", \"DPM++ 2M Karras\") or\n"
    "               stable-diffusion.cpp / k-diffusion (dpm++2m, euler_a, dpmpp_2m)\n"
    "               (default: Euler,Heun,DPM2,LMS,DPM++ 2M,Euler a,DPM++ 2S a,DPM++ SDE,DPM++ 2M SDE)\n"
    "  --schedules  comma-separated schedule names (default: karras,normal,exponential)\n"
    "  --steps      comma-separated step counts (default: 5,10,20,40)\n"
    "  --out        output folder for compare.csv, compare.txt, compare.gp/.dat/.svg/.png (default: out/compare)\n"
    "  --problem    k3: the fixtures' K=3 mixture when $LATENTKIT_FIXTURES is set, else an embedded seeded one;\n"
    "               k1: its first component (closed-form solution); or a .safetensors problem file (default: k3)\n"
    "  --endpoint   last: runs end at sigma_min (clean convergence orders); zero: full schedules ending at 0\n"
    "  --batch      seeded samples for the distribution error of stochastic samplers (default: 256)\n"
    "  --unet-seconds  assumed time of one UNet call, to express the sampler overhead (default: 0.5)\n"
    "  --list       print the valid sampler and schedule names and exit\n";

inline int compare(std::span<const std::string_view> args) {
  namespace ex = latentkit::experiments;
  std::string samplers = "Euler,Heun,DPM2,LMS,DPM++ 2M,Euler a,DPM++ 2S a,DPM++ SDE,DPM++ 2M SDE";
  std::string schedules = "karras,normal,exponential";
  std::string steps_text = "5,10,20,40";
  std::string problem_spec = "k3";
  std::filesystem::path out_dir = "out/compare";
  ex::ComparisonOptions options;

  // Bad command lines exit 1 (usage), unknown names and unreadable problems 2, with one line on stderr.
  const auto fail = [](const std::string& message, int code = exit_usage) {
    std::cerr << "latentkit compare: " << message << "\n";
    return code;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << compare_usage;
      return exit_ok;
    }
    if (a == "--list") {
      std::cout << "samplers:";
      for (const auto& n : latentkit::sampler_names()) std::cout << "\n  " << n;
      std::cout << "\nschedules:";
      for (const auto& n : latentkit::schedule_names()) std::cout << "\n  " << n;
      std::cout << "\n";
      return exit_ok;
    }
    if (i + 1 >= args.size()) return fail("option " + std::string(a) + " needs a value (see latentkit help compare)");
    const std::string value(args[++i]);
    if (a == "--samplers") samplers = value;
    else if (a == "--schedules") schedules = value;
    else if (a == "--steps") steps_text = value;
    else if (a == "--out") out_dir = value;
    else if (a == "--problem") problem_spec = value;
    else if (a == "--endpoint") {
      if (value != "last" && value != "zero") return fail("--endpoint must be 'last' or 'zero', got '" + value + "'");
      options.endpoint = value == "zero" ? ex::Endpoint::zero : ex::Endpoint::last_sigma;
    } else if (a == "--batch") {
      if (!parse_number(value, options.stochastic_batch) || options.stochastic_batch < 2)
        return fail("--batch must be an integer >= 2, got '" + value + "'");
    } else if (a == "--unet-seconds") {
      if (!parse_number(value, options.assumed_unet_seconds) || !(options.assumed_unet_seconds > 0))
        return fail("--unet-seconds must be a positive number, got '" + value + "'");
    } else if (a == "--seed") {
      if (!parse_number(value, options.seed)) return fail("--seed must be an unsigned integer, got '" + value + "'");
    } else {
      return fail("unknown option '" + std::string(a) + "' (see latentkit help compare)");
    }
  }
  options.steps.clear();
  for (const std::string& s : ex::split_names(steps_text)) {
    int n = 0;
    if (!parse_number(s, n) || n < 1 || n > 10000)
      return fail("--steps takes integers in [1, 10000], got '" + s + "'");
    options.steps.push_back(n);
  }
  if (options.steps.empty()) return fail("--steps is empty");

  try {
    const ex::ComparisonPlan plan = ex::plan_from_names(ex::split_names(samplers), ex::split_names(schedules));
    if (plan.samplers.empty() || plan.schedules.empty()) return fail("no sampler or no schedule to compare");
    const ex::MixtureProblem problem = ex::select_problem(problem_spec);
    const ex::ComparisonResult result = ex::run_comparison(problem, plan.samplers, plan.schedules, options);

    ex::write_table(std::cout, result);
    std::filesystem::create_directories(out_dir);
    {
      std::ofstream csv(out_dir / "compare.csv"), txt(out_dir / "compare.txt");
      if (!csv || !txt) return fail("cannot write into " + out_dir.string(), exit_bad_input);
      ex::write_csv(csv, result);
      ex::write_table(txt, result);
    }
    const ex::PlotFiles plot = ex::write_plot(out_dir, result);
    std::cout << "\ntable " << (out_dir / "compare.txt").string() << "\ncsv   " << (out_dir / "compare.csv").string()
              << "\n" << plot.message << "\n";
    return plot.gnuplot_found && !plot.rendered ? exit_bad_input : exit_ok;
  } catch (const std::exception& e) {  // unknown names (UnknownNameError lists the valid ones), bad files, ...
    return fail(e.what(), exit_bad_input);
  }
}

}  // namespace latentkit_cli
