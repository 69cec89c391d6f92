// A live migration in flight in a Vmm: the thread that sends or receives the
// VM, and what the control loop reads of it. Only migration_routes.cc and
// vmm.cc (which owns it) include this.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "common/unique_fd.h"
#include "vmm/instance/vmm.h"
#include "vmm/migration/migration.h"

namespace vessel::vmm {

struct Vmm::MigrationJob {
  bool sending = true;
  std::string url;
  migration::Progress progress;
  UniqueFd done_event;    // eventfd: written by the thread when it ends
  UniqueFd cancel_event;  // eventfd: ends a receiver's wait for a connection
  UniqueFd listen;        // receiver: the listening socket
  std::atomic<int> conn_fd{-1};  // shut down to cancel the stream
  std::thread thread;
  bool finished = false;  // finish_migration() ran
  // Written by the thread before done_event, read after.
  std::optional<Error> error;
  std::optional<migration::Received> received;
};

}  // namespace vessel::vmm
