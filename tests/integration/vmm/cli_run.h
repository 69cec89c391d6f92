// Runs the vessel binary under test from the VM integration tests: one place for
// the fork/exec with stdout and stderr captured to files, which the VM API and
// migration CLI tests share.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "integration/vmm/tiny_pvh.h"

namespace vessel::vmm::testing {

// What one vessel command did: exit status (128 + signal when killed) and output.
struct CliResult {
  int status = -1;
  std::string out, err;
};

// The whole of a (test-owned, small) file; "" when it cannot be read.
inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// `vessel --root ROOT args...` with stdin from /dev/null; stdout and stderr go
// through DIR/stdout and DIR/stderr.
inline CliResult run_vessel(const std::string& root, const std::string& dir, std::vector<std::string> args) {
  std::string out = dir + "/stdout", err = dir + "/stderr";
  args.insert(args.begin(), {"--root", root});
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv{const_cast<char*>(vessel_binary())};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(vessel_binary(), argv.data());
    ::_exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  CliResult r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace vessel::vmm::testing
