// OomNotifier: a file descriptor that becomes readable when the memory cgroup
// may have had an OOM event, so a watcher wakes at once instead of on its next
// poll. v1: an eventfd registered on memory.oom_control through
// cgroup.event_control (it also fires when the cgroup is removed); v2: inotify
// on memory.events (modified on every oom / oom_kill count change).
// The wake-up is a hint: read_oom_kill_count() stays the source of truth.
#pragma once

#include "cgroups/stats.h"
#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::cgroups {

class OomNotifier {
 public:
  static Result<OomNotifier> open(const ControllerDir& memory);

  // Poll this for POLLIN.
  int fd() const { return fd_.get(); }
  // Consumes pending notifications (non-blocking).
  void drain() const;

 private:
  explicit OomNotifier(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace vessel::cgroups
