// The steps create and restore share (see new_container.h).
#include "container/new_container.h"

#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crash_point.h"
#include "container/rootfs.h"

namespace vessel::container {

State initial_state(const oci::Spec& spec, const NewContainer& c) {
  State s;
  s.oci_version = spec.oci_version;
  s.id = c.id;
  s.bundle = c.bundle;
  s.rootfs = c.rootfs;
  s.created = rfc3339_now();
  passwd* pw = ::getpwuid(::geteuid());
  s.owner = pw ? pw->pw_name : std::to_string(::geteuid());
  s.annotations = spec.annotations;
  const auto* pidns = spec.linux_.find_namespace(oci::NamespaceType::kPid);
  s.own_pid_ns = pidns && pidns->path.empty();
  s.systemd_cgroup = c.systemd_cgroup;
  s.root = c.root;
  s.creating = true;
  return s;
}

Result<std::unique_ptr<cgroups::Manager>> make_cgroup(const oci::Spec& spec, const ContainerDir& dir, State& state) {
  cgroups::Options cgo;
  cgo.cgroups_path = spec.linux_.cgroups_path;
  cgo.container_id = state.id;
  cgo.state_root = state.root;
  auto cg = TRYC(cgroups::Manager::plan(cgo), "cgroups");
  state.cgroup = cg->save();
  TRY(dir.save(state));
  crash_point("create:cgroup-planned");
  // Destroyed on failure from here: it may have made some of its directories.
  auto made = cg->make();
  if (!made) {
    (void)cg->destroy();
    return std::move(made).error().context("cgroups");
  }
  crash_point("create:cgroup-made");
  state.cgroup = cg->save();
  auto saved = dir.save(state);
  if (!saved) {
    (void)cg->destroy();
    return std::move(saved).error();
  }
  crash_point("create:cgroup-saved");
  return cg;
}

PendingContainer::~PendingContainer() {
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  if (host_mount_id) (void)detach_host_rootfs_tree(rootfs, host_mount_id);
  if (cgroup) (void)cgroup->destroy();
}

void PendingContainer::release() {
  pid = -1;
  host_mount_id = 0;
  cgroup.reset();
}

}  // namespace vessel::container
