// Running the `latentkit` program from a test: the suites that check the command line get its path as
// LATENTKIT_CLI_PATH (see the area's CMakeLists.txt) and read back its exit status and output.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "support/fixtures.hpp"

namespace latentkit_test {

/// `s` as one single-quoted shell word.
inline std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CliRun {
  int status = -1;
  std::string output;  // stdout, then stderr
};

/// Runs `program args` through the shell, its output captured in `dir`.
inline CliRun run_program(const std::string& program, const std::string& args, const TempDir& dir) {
  const auto log = dir.path / "cli.log";
  const std::string command = quoted(program) + " " + args + " > " + quoted(log.string()) + " 2>&1";
  CliRun r;
  const int raw = std::system(command.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.output = read_text(log);
  return r;
}

}  // namespace latentkit_test
