// vessel checkpoint [--image-path DIR] [--leave-running] ... ID
// vessel restore [--image-path DIR] [--bundle DIR] [--detach] ... ID
// runc's flags, through CRIU (container/checkpoint.h).
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "common/strings.h"
#include "container/checkpoint.h"

namespace vessel::cli {
namespace {

// The flags both verbs take.
void add_criu_flags(CLI::App* cmd, container::CriuFlags& f) {
  cmd->add_option("--image-path", f.image_path, "checkpoint image directory (default: ./checkpoint)");
  cmd->add_option("--work-path", f.work_path, "directory for CRIU's log and temporary files (default: the image path)");
  cmd->add_flag("--tcp-established", f.tcp_established, "allow open TCP connections");
  cmd->add_flag("--ext-unix-sk", f.ext_unix_sk, "allow external unix sockets");
  cmd->add_flag("--shell-job", f.shell_job, "allow a shell job (a terminal of the session)");
  cmd->add_flag("--file-locks", f.file_locks, "handle file locks");
  cmd->add_flag("--lazy-pages", f.lazy_pages, "use userfaultfd to transfer memory lazily");
  cmd->add_option("--manage-cgroups-mode", f.manage_cgroups_mode, "cgroups mode: soft, full, strict or ignore");
  cmd->add_option("--empty-ns", f.empty_ns, "create this namespace but restore nothing into it (network)");
  cmd->add_flag("--auto-dedup", f.auto_dedup, "deduplicate memory pages against the parent images");
  cmd->add_option("--status-fd", f.status_fd, "with --lazy-pages: write a byte to this fd when the page server is ready");
}

void add_checkpoint(CLI::App& app, Globals& g) {
  auto o = std::make_shared<container::CheckpointOptions>();
  auto* cmd = app.add_subcommand("checkpoint", "checkpoint a running container through CRIU");
  add_criu_flags(cmd, o->criu);
  cmd->add_option("--parent-path", o->parent_path, "path of a previous (pre-)dump, relative to --image-path");
  cmd->add_flag("--leave-running", o->leave_running, "leave the container running after the checkpoint");
  cmd->add_flag("--pre-dump", o->pre_dump, "dump memory only, the container keeps running (for --parent-path)");
  auto* ps = cmd->add_option("--page-server", "ADDRESS:PORT of a CRIU page server (not supported)");
  cmd->add_option("id", o->id, "container ID")->required();
  cmd->callback([o, ps, &g] {
    o->root = g.root;
    if (ps->count()) return report(Error::invalid("checkpoint: --page-server is not supported"));
    finish(container::checkpoint(*o).context(cat_id("checkpoint", o->id)));
  });
}

void add_restore(CLI::App& app, Globals& g) {
  auto o = std::make_shared<container::RestoreOptions>();
  auto* cmd = app.add_subcommand("restore", "restore a container from a CRIU checkpoint");
  add_criu_flags(cmd, o->criu);
  cmd->add_option("-b,--bundle", o->bundle, "bundle directory (default: current directory)");
  cmd->add_option("--console-socket", o->console_socket, "unix socket that receives the pty master");
  cmd->add_flag("-d,--detach", o->detach, "return once the container runs");
  cmd->add_option("--pid-file", o->pid_file, "write the restored init's pid to this file");
  cmd->add_flag("--no-subreaper", o->no_subreaper, "accepted for runc's command line");
  cmd->add_flag("--no-pivot", o->no_pivot, "accepted for runc's command line (CRIU enters the rootfs itself)");
  cmd->add_option("id", o->id, "container ID")->required();
  // containerd's shim (go-runc) spells it "-no-subreaper", which runc's flag parser takes.
  cmd->allow_extras();
  cmd->callback([o, cmd, &g] {
    for (const auto& extra : cmd->remaining()) {
      if (extra == "-no-subreaper") o->no_subreaper = true;
      else return report(Error::invalid(cat("restore: unexpected argument \"", extra, "\"")));
    }
    o->root = g.root;
    o->systemd_cgroup = g.systemd_cgroup;
    if (auto st = check_cgroup_driver(g); !st) return report(st.error());
    auto r = container::restore(*o);
    if (!r) return report(std::move(r).error().context(cat_id("restore", o->id)));
    set_exit_code(*r);
  });
}

VerbRegistration reg_checkpoint(68, add_checkpoint);
VerbRegistration reg_restore(69, add_restore);

}  // namespace
}  // namespace vessel::cli
