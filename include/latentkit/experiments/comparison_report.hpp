// Outputs of the sampler comparison: an aligned text table, a CSV, and a gnuplot script + data for the
// error-vs-NFE plot (log-log; deterministic samplers on the left, stochastic ones on the right).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/experiments/sampler_comparison.hpp"

LATENTKIT_NAMESPACE_BEGIN
namespace experiments {

namespace detail {

inline std::string format_number(double v, const char* fmt = "%.3e") {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

/// RFC 4180: quote a field that holds a comma, a quote or a line break, doubling inner quotes.
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// A string inside a gnuplot double-quoted literal.
inline std::string gnuplot_string(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

/// A POSIX shell single-quoted word.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace detail

/// The rows as an aligned, human-readable table, preceded by how the errors were defined.
inline void write_table(std::ostream& out, const ComparisonResult& result) {
  out << "problem: " << result.problem << " (K=" << result.components << ", D=" << result.dims
      << ", batch " << result.batch << ")\n";
  for (const ReferenceInfo& ref : result.references) {
    out << "ODE reference sigma " << detail::format_number(ref.sigma_start, "%.17g") << " -> "
        << detail::format_number(ref.sigma_end, "%.17g") << ": ";
    if (ref.closed_form)
      out << "closed form (K=1)\n";
    else
      out << "RK4 in log-sigma, " << ref.rk4_steps << " steps, change on doubling "
          << detail::format_number(ref.change_on_doubling, "%.1e") << "\n";
  }
  out << "ode rows: error = max-abs (and RMS) distance to the probability-flow solution from the same start\n"
      << "sde rows: error = sliced W1 of " << result.options.stochastic_batch
      << " seeded samples to the true distribution (floor = same metric for exact draws); mean err = max-abs error "
         "of the sample mean; assign TV = total variation of component frequencies vs weights\n"
      << "overhead = run time - time inside the denoiser, per step, on a " << result.options.timing_batch << "x"
      << result.dims << " latent; 'of UNet' assumes " << result.options.assumed_unet_seconds << " s per UNet call\n\n";

  std::vector<std::vector<std::string>> cells;
  cells.push_back({"sampler", "schedule", "steps", "NFE", "type", "max-abs", "RMS", "sliced W1", "floor",
                   "mean err", "assign TV", "us/step", "of UNet"});
  for (const ComparisonRow& r : result.rows)
    cells.push_back({r.sampler, r.schedule, std::to_string(r.steps), std::to_string(r.nfe), r.stochastic ? "sde" : "ode",
                     detail::format_number(r.max_abs), detail::format_number(r.rms), detail::format_number(r.sliced_w1),
                     detail::format_number(r.sliced_w1_floor), detail::format_number(r.mean_error),
                     detail::format_number(r.assignment_tv, "%.3f"), detail::format_number(r.overhead_us_per_step, "%.1f"),
                     detail::format_number(r.overhead_fraction_of_unet, "%.1e")});
  std::vector<std::size_t> width(cells.front().size(), 0);
  for (const auto& line : cells)
    for (std::size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  for (std::size_t i = 0; i < cells.size(); ++i) {
    for (std::size_t c = 0; c < cells[i].size(); ++c) {
      const bool left = c < 2 || c == 4;  // names left-aligned, numbers right-aligned
      const std::string pad(width[c] - cells[i][c].size(), ' ');
      out << (c ? "  " : "") << (left ? cells[i][c] + pad : pad + cells[i][c]);
    }
    out << '\n';
    if (i == 0) {
      std::size_t total = 0;
      for (std::size_t w : width) total += w + 2;
      out << std::string(total - 2, '-') << '\n';
    }
  }
}

inline constexpr const char* csv_header =
    "sampler,schedule,steps,nfe,stochastic,sigma_end,max_abs,rms,sliced_w1,sliced_w1_floor,mean_error,"
    "assignment_tv,overhead_us_per_step,overhead_fraction_of_unet";

/// One line per row, full precision; empty cells where a metric does not apply (NaN).
inline void write_csv(std::ostream& out, const ComparisonResult& result) {
  const auto num = [](double v) { return std::isnan(v) ? std::string() : detail::format_number(v, "%.17g"); };
  out << csv_header << '\n';
  for (const ComparisonRow& r : result.rows)
    out << detail::csv_field(r.sampler) << ',' << detail::csv_field(r.schedule) << ',' << r.steps << ',' << r.nfe
        << ',' << (r.stochastic ? 1 : 0) << ',' << num(r.sigma_end) << ',' << num(r.max_abs) << ',' << num(r.rms)
        << ',' << num(r.sliced_w1) << ',' << num(r.sliced_w1_floor) << ',' << num(r.mean_error) << ','
        << num(r.assignment_tv) << ',' << num(r.overhead_us_per_step) << ',' << num(r.overhead_fraction_of_unet)
        << '\n';
}

/// What write_plot produced.
struct PlotFiles {
  std::filesystem::path script, data, svg, png;
  bool gnuplot_found = false;  ///< false: only the script and the data were written
  bool rendered = false;       ///< gnuplot ran and exited with 0
  std::string message;         ///< one line for the user
};

/// True when `gnuplot` runs from PATH.
inline bool gnuplot_available() { return std::system("gnuplot --version >/dev/null 2>&1") == 0; }

/// True when gnuplot has the cairo PNG terminal (nicer than the libgd one).
inline bool gnuplot_has_pngcairo() {
  FILE* pipe = popen("gnuplot -e 'set terminal' 2>&1", "r");
  if (!pipe) return false;
  std::string text;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) text += buf;
  pclose(pipe);
  return text.find("pngcairo") != std::string::npos;
}

/// Writes `<stem>.dat` (one gnuplot data block per sampler x schedule, "NFE error") and `<stem>.gp` (SVG, plus PNG
/// when a PNG terminal exists) into `dir`, then runs gnuplot if `render` and it is installed.
inline PlotFiles write_plot(const std::filesystem::path& dir, const ComparisonResult& result,
                            const std::string& stem = "compare", bool render = true) {
  std::filesystem::create_directories(dir);
  PlotFiles files{dir / (stem + ".gp"), dir / (stem + ".dat"), dir / (stem + ".svg"), {}, false, false, {}};

  // Series in first-seen order; colour by sampler, dash and point by schedule.
  struct Series {
    std::string sampler, schedule;
    bool stochastic;
    std::vector<std::pair<double, double>> points;
  };
  std::vector<Series> series;
  std::vector<std::string> sampler_names, schedule_names;
  double floor_sum = 0;
  int floor_count = 0;
  for (const ComparisonRow& r : result.rows) {
    if (std::find(sampler_names.begin(), sampler_names.end(), r.sampler) == sampler_names.end())
      sampler_names.push_back(r.sampler);
    if (std::find(schedule_names.begin(), schedule_names.end(), r.schedule) == schedule_names.end())
      schedule_names.push_back(r.schedule);
    auto it = std::find_if(series.begin(), series.end(),
                           [&](const Series& s) { return s.sampler == r.sampler && s.schedule == r.schedule; });
    if (it == series.end()) it = series.insert(series.end(), Series{r.sampler, r.schedule, r.stochastic, {}});
    if (r.error() > 0 && r.nfe > 0) it->points.emplace_back(static_cast<double>(r.nfe), r.error());
    if (r.stochastic && r.sliced_w1_floor > 0) floor_sum += r.sliced_w1_floor, ++floor_count;
  }
  {
    std::ofstream data(files.data);
    if (!data) throw IoError("compare: cannot write " + files.data.string());
    data << "# one block per sampler x schedule (gnuplot index = block number): NFE error\n";
    for (Series& s : series) {
      std::sort(s.points.begin(), s.points.end());
      data << "# " << s.sampler << " / " << s.schedule << (s.stochastic ? " (sliced W1)" : " (max-abs)") << '\n';
      for (const auto& [nfe, err] : s.points) data << detail::format_number(nfe, "%.0f") << ' '
                                                   << detail::format_number(err, "%.9e") << '\n';
      if (s.points.empty()) data << "nan nan\n";  // keeps block numbering aligned with the script
      data << "\n\n";
    }
  }

  static constexpr const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                                            "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#393b79", "#637939",
                                            "#ad494a", "#3182bd", "#e6550d", "#31a354"};
  const auto index_of = [](const std::vector<std::string>& v, const std::string& s) {
    return static_cast<std::size_t>(std::find(v.begin(), v.end(), s) - v.begin());
  };
  const bool has_ode = std::any_of(series.begin(), series.end(), [](const Series& s) { return !s.stochastic; });
  const bool has_sde = std::any_of(series.begin(), series.end(), [](const Series& s) { return s.stochastic; });
  const std::string data_name = files.data.filename().string();
  const std::string end_name = result.options.endpoint == Endpoint::zero ? "σ = 0" : "σ_{min}";

  const auto panel = [&](std::ostream& gp, bool stochastic) {
    gp << "set title \""
       << (stochastic ? "Stochastic samplers: distribution error (sliced W1 of " +
                            std::to_string(result.options.stochastic_batch) + " samples)"
                      : "Deterministic samplers: distance to the exact probability-flow solution at " + end_name)
       << "\"\n";
    gp << "set ylabel \"" << (stochastic ? "sliced Wasserstein-1 to the true distribution" : "max |x - x_{exact}|")
       << "\"\n";
    // Ranges from the data (log axes autoscale to whole decades, which wastes most of the panel).
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (const Series& s : series)
      if (s.stochastic == stochastic)
        for (const auto& point : s.points) lo = std::min(lo, point.second), hi = std::max(hi, point.second);
    if (stochastic && floor_count) lo = std::min(lo, floor_sum / floor_count);
    if (hi > 0) gp << "set yrange [" << lo / 1.6 << ":" << hi * 1.6 << "]\n";
    gp << "unset arrow; unset label\n";
    if (stochastic && floor_count) {
      const double floor = floor_sum / floor_count;
      gp << "set arrow from graph 0, first " << floor << " to graph 1, first " << floor
         << " nohead lw 2 dt 3 lc rgb \"#555555\" front\n";
      gp << "set label \"Monte-Carlo floor (exact samples)\" at graph 0.02, first " << floor * 1.12
         << " tc rgb \"#555555\" front\n";
    }
    gp << "plot \\\n";
    bool first = true;
    for (std::size_t i = 0; i < series.size(); ++i) {
      const Series& s = series[i];
      if (s.stochastic != stochastic) continue;
      const std::size_t c = index_of(sampler_names, s.sampler), d = index_of(schedule_names, s.schedule);
      gp << (first ? "  " : ", \\\n  ") << "'" << data_name << "' index " << i
         << " using 1:2 with linespoints lw 2 ps 1.1 lc rgb \"" << palette[c % std::size(palette)] << "\" dt "
         << (d % 5) + 1 << " pt " << std::vector<int>{7, 5, 9, 11, 13}[d % 5] << " title \""
         << detail::gnuplot_string(s.sampler + " / " + s.schedule) << "\"";
      first = false;
    }
    gp << "\n";
  };
  const auto figure = [&](std::ostream& gp, const std::string& terminal, const std::string& output) {
    const int panels = int(has_ode) + int(has_sde);
    gp << "set terminal " << terminal << " size " << (panels == 2 ? 1800 : 1000) << ",980\n";
    gp << "set output \"" << detail::gnuplot_string(output) << "\"\n";
    gp << "set multiplot layout 1," << std::max(1, panels) << " title \""
       << detail::gnuplot_string("Sampler error vs denoiser calls (lower is better) - " + result.problem) << "\" font \",15\"\n";
    gp << "set logscale xy 10\nset format y \"10^{%L}\"\nset xlabel \"denoiser calls (NFE)\"\n"
          "set grid xtics ytics mxtics mytics lc rgb \"#dddddd\"\n"
          "set key outside below center horizontal maxcols 3 width 2 spacing 1.1 font \",10\" title \" \"\n"
          "set border lw 1.2\nset mxtics 10\nset mytics 10\n";
    double nfe_lo = std::numeric_limits<double>::infinity(), nfe_hi = 0;
    for (const Series& s : series)
      for (const auto& point : s.points) nfe_lo = std::min(nfe_lo, point.first), nfe_hi = std::max(nfe_hi, point.first);
    if (nfe_hi > 0) gp << "set xrange [" << nfe_lo / 1.4 << ":" << nfe_hi * 1.4 << "]\n";
    // Label the NFE values that occur (log axes label only decades), unless there are too many to read.
    std::vector<double> nfes;
    for (const Series& s : series)
      for (const auto& point : s.points) nfes.push_back(point.first);
    std::sort(nfes.begin(), nfes.end());
    nfes.erase(std::unique(nfes.begin(), nfes.end()), nfes.end());
    if (!nfes.empty() && nfes.size() <= 12) {
      gp << "set xtics (";
      for (std::size_t i = 0; i < nfes.size(); ++i) gp << (i ? ", " : "") << nfes[i];
      gp << ")\n";
    }
    if (has_ode) panel(gp, false);
    if (has_sde) panel(gp, true);
    gp << "unset multiplot\nset output\n";
  };

  const bool found = gnuplot_available();
  files.gnuplot_found = found;
  const bool pngcairo = found && gnuplot_has_pngcairo();
  if (found) files.png = dir / (stem + ".png");
  {
    std::ofstream gp(files.script);
    if (!gp) throw IoError("compare: cannot write " + files.script.string());
    gp << "# Error vs NFE for the sampler comparison. Run from this folder: gnuplot " << files.script.filename().string()
       << "\nset encoding utf8\n";
    figure(gp, "svg dynamic enhanced background rgb \"white\" font \"sans,12\"", files.svg.filename().string());
    if (found)
      figure(gp, pngcairo ? "pngcairo enhanced font \"sans,11\"" : "png enhanced", files.png.filename().string());
  }
  if (!found) {
    files.message = "gnuplot not found (install gnuplot-nox): wrote " + files.script.string() + " and " +
                    files.data.string() + " only";
    return files;
  }
  if (!render) {
    files.message = "plot script " + files.script.string();
    return files;
  }
  const std::string cmd = "cd " + detail::shell_quote(dir.string()) + " && gnuplot " +
                          detail::shell_quote(files.script.filename().string());
  files.rendered = std::system(cmd.c_str()) == 0;
  files.message = files.rendered ? "plot " + files.svg.string() + " and " + files.png.string()
                                 : "gnuplot failed on " + files.script.string();
  return files;
}

}  // namespace experiments
LATENTKIT_NAMESPACE_END
