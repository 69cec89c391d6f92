// vessel ps [--format table|json] ID [ps options]
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/cli.h"
#include "common/strings.h"
#include "container/control.h"

namespace vessel::cli {
namespace {

struct PsArgs {
  std::string id;
  std::string format = "table";
};

// Runs the host's ps with `args` and keeps the header and the rows whose PID column is one of `pids`.
Status filtered_ps(const std::vector<std::string>& args, const std::set<pid_t>& pids) {
  std::string cmd = "ps";
  for (const auto& a : args) {
    std::string quoted;
    for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += " '" + quoted + "'";
  }
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return Error::from_errno("run ps");
  char buf[4096];
  int pid_col = -1;
  bool header = true;
  while (::fgets(buf, sizeof buf, f)) {
    std::string line = buf;
    std::vector<std::string> cols;
    for (auto& c : split(trim(line), ' '))
      if (!c.empty()) cols.push_back(c);
    if (header) {
      for (size_t i = 0; i < cols.size(); ++i)
        if (cols[i] == "PID") pid_col = static_cast<int>(i);
      std::fputs(buf, stdout);
      header = false;
      if (pid_col < 0) {
        ::pclose(f);
        return Error::invalid("ps: the output has no PID column");
      }
      continue;
    }
    if (static_cast<int>(cols.size()) > pid_col) {
      auto p = parse_u64(cols[static_cast<size_t>(pid_col)]);
      if (p && pids.count(static_cast<pid_t>(*p))) std::fputs(buf, stdout);
    }
  }
  int st = ::pclose(f);
  if (st != 0) return Error(EIO, "ps failed");
  return ok();
}

void add_ps(CLI::App& app, Globals& g) {
  auto a = std::make_shared<PsArgs>();
  auto* cmd = app.add_subcommand("ps", "list the processes of a container");
  cmd->add_option("-f,--format", a->format, "table or json")->check(CLI::IsMember({"table", "json"}));
  cmd->prefix_command();
  cmd->add_option("id", a->id, "container ID, then ps options")->required();
  cmd->callback([a, cmd, &g] {
    auto pids = container::pids(g.root, a->id);
    if (!pids) return report(std::move(pids).error());
    if (a->format == "json") {
      std::printf("%s\n", nlohmann::json(*pids).dump().c_str());
      return;
    }
    std::vector<std::string> args = cmd->remaining();
    if (args.empty()) args = {"-ef"};
    finish(filtered_ps(args, std::set<pid_t>(pids->begin(), pids->end())));
  });
}

VerbRegistration reg_ps(66, add_ps);

}  // namespace
}  // namespace vessel::cli
