#include "cgroups/oom_notify.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::cgroups {

Result<OomNotifier> OomNotifier::open(const ControllerDir& memory) {
  if (memory.version == 1) {
    UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!efd) return Error::from_errno("eventfd");
    std::string control = memory.path + "/memory.oom_control";
    // The kernel keeps its own reference to the control file once registered.
    UniqueFd cfd = TRY(open_file(control, O_RDONLY | O_CLOEXEC));
    TRYC(write_file(memory.path + "/cgroup.event_control", cat(efd.get(), " ", cfd.get())),
         "register an OOM eventfd");
    return OomNotifier(std::move(efd));
  }
  if (memory.version == 2) {
    UniqueFd ifd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!ifd) return Error::from_errno("inotify_init1");
    std::string events = memory.path + "/memory.events";
    if (::inotify_add_watch(ifd.get(), events.c_str(), IN_MODIFY) < 0)
      return Error::from_errno(cat("inotify_add_watch ", events));
    return OomNotifier(std::move(ifd));
  }
  return Error(ENOTSUP, "no memory controller: no OOM notifications");
}

void OomNotifier::drain() const {
  char buf[4096];
  while (::read(fd_.get(), buf, sizeof buf) > 0) {
  }
}

}  // namespace vessel::cgroups
