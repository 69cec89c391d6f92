// vessel exec [flags] ID [ARGS...]
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "container/exec.h"

namespace vessel::cli {
namespace {

struct ExecArgs {
  container::ExecOptions o;
  bool tty = false;
  std::string id;
};

void add_exec(CLI::App& app, Globals& g) {
  auto a = std::make_shared<ExecArgs>();
  auto* cmd = app.add_subcommand("exec", "run a new process in a running container");
  cmd->add_option("-p,--process", a->o.process_file, "a runtime-spec process JSON file");
  cmd->add_flag("-t,--tty", a->tty, "allocate a pseudo-terminal");
  cmd->add_option("--console-socket", a->o.console_socket, "unix socket that receives the pty master");
  cmd->add_flag("-d,--detach", a->o.detach, "do not wait for the process");
  cmd->add_option("--pid-file", a->o.pid_file, "write the process's pid to this file");
  cmd->add_option("--cwd", a->o.cwd, "working directory in the container");
  cmd->add_option("-e,--env", a->o.env, "KEY=VALUE, repeatable")->allow_extra_args(false);
  cmd->add_option("-u,--user", a->o.user, "UID[:GID]");
  cmd->add_option("-g,--additional-gids", a->o.additional_gids, "extra group ids, repeatable")->allow_extra_args(false);
  cmd->add_option("-c,--cap", a->o.caps, "add a capability, repeatable")->allow_extra_args(false);
  cmd->add_flag("--no-new-privs", a->o.no_new_privs, "set no_new_privs");
  cmd->add_option("--preserve-fds", a->o.preserve_fds, "pass N extra fds (from 3)");
  cmd->add_flag("--ignore-paused", a->o.ignore_paused, "exec even into a paused container");
  cmd->add_option("--cgroup", a->o.cgroups, "run in a sub-cgroup of the container: [CONTROLLER[,...]:]PATH, repeatable")
      ->allow_extra_args(false);
  std::string apparmor, label, process_label;
  cmd->add_option("--apparmor", apparmor)->group("");
  cmd->add_option("--process-label", process_label)->group("");
  // ID and the command: everything after the ID belongs to the command.
  cmd->prefix_command();
  cmd->add_option("id", a->id, "container ID, then the command")->required();
  cmd->callback([a, cmd, &g] {
    a->o.root = g.root;
    // As runc: every failure of exec itself exits 255 (the process's own status is 0-255 too,
    // but runc's callers, Docker among them, read 255 with an error as exec's).
    auto failed = [](Error e) {
      report(e);
      set_exit_code(255);
    };
    if (auto st = protect_binary(); !st) return failed(st.error());
    a->o.id = a->id;
    a->o.args = cmd->remaining();
    if (!a->o.args.empty() && a->o.args[0] == "--") a->o.args.erase(a->o.args.begin());
    if (a->tty) a->o.tty = true;
    auto r = container::exec(a->o);
    if (!r) return failed(std::move(r).error().context(cat_id("exec", a->o.id)));
    set_exit_code(*r);
  });
}

VerbRegistration reg_exec(35, add_exec);

}  // namespace
}  // namespace vessel::cli
