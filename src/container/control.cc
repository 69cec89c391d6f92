#include "container/control.h"

#include "cgroups/manager.h"
#include "common/strings.h"
#include "container/state.h"

namespace vessel::container {
namespace {

struct Live {
  State state;
  ContainerStatus status;
  std::unique_ptr<cgroups::Manager> cgroup;
};

// Opens the container (locked while `dir` lives) with its cgroup and live status.
Result<Live> open_live(const ContainerDir& dir, const std::string& id) {
  Live l;
  l.state = TRY(dir.load());
  l.cgroup = TRYC(cgroups::Manager::load(l.state.cgroup), cat("container \"", id, "\" cgroups"));
  bool frozen = TRY(l.cgroup->frozen());
  l.status = live_status(l.state, dir.path(), frozen);
  return l;
}

}  // namespace

Status pause(const std::string& root, const std::string& id) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto l = TRY(open_live(dir, id));
  if (l.status != ContainerStatus::kRunning && l.status != ContainerStatus::kCreated)
    return Error::invalid(cat("cannot pause container \"", id, "\": it is ", status_name(l.status)));
  return l.cgroup->freeze().context(cat("pause ", id));
}

Status resume(const std::string& root, const std::string& id) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto l = TRY(open_live(dir, id));
  if (l.status != ContainerStatus::kPaused)
    return Error::invalid(cat("cannot resume container \"", id, "\": it is ", status_name(l.status), ", not paused"));
  return l.cgroup->thaw().context(cat("resume ", id));
}

Status update(const std::string& root, const std::string& id, const oci::LinuxResources& resources) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto l = TRY(open_live(dir, id));
  if (l.status == ContainerStatus::kStopped)
    return Error::invalid(cat("cannot update container \"", id, "\": it is stopped"));
  // As runc: update leaves the device rules alone. A resources file copied from a config
  // carries them (a deny-all first); applied without the defaults create adds, they would
  // take /dev/null from the running container.
  oci::LinuxResources r = resources;
  r.devices.clear();
  return l.cgroup->apply(r).context(cat("update ", id));
}

Result<std::vector<pid_t>> pids(const std::string& root, const std::string& id) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto l = TRY(open_live(dir, id));
  return l.cgroup->pids();
}

}  // namespace vessel::container
