// Live migration of a running Machine to another VMM (pre-copy), and the
// receiving side.
//
//   Sender (source VMM, on its own thread while the guest runs):
//     HELLO -> ACCEPT; MACHINE (the spec: the destination builds the machine
//     now and says READY); dirty logging on; round 0 sends all of RAM (zero
//     pages as a bit), rounds 1.. resend the pages dirtied meanwhile, until
//     what is left, plus the fixed costs of the stop (pause, last dirty log,
//     state capture, the destination's restore), fits `max_downtime_ms` at the
//     measured bandwidth (or max_rounds); a guest dirtying faster than the
//     link carries is throttled (auto-converge: it is paused for a growing
//     share of every 100 ms slice), or with `postcopy` switched to post-copy.
//     Then (READY come) pause, send the last dirty pages, the vCPU/device
//     state and END, and wait for RUNNING. Any failure before RUNNING
//     resumes the guest here.
//   Post-copy: pause, send the bitmap of the pages not sent yet (POSTCOPY),
//     the state and END; the destination runs the guest (RUNNING) and asks
//     for each missing page its guest touches (REQUEST), sent before the
//     rest, which follow in order; then COMPLETE, and DONE from the
//     destination. A failure after RUNNING loses the guest (the destination
//     stops its incomplete copy, the one here is stale): it is reported, and
//     the VM here is not resumed.
//   Local (`memfd`): over a unix socket, the guest RAM's memfd is passed by
//     SCM_RIGHTS instead of its pages, before the pause: MACHINE, MEMFD,
//     READY, then pause, STATE, END; the destination maps the same memory, so
//     the downtime is the state only.
//   Receiver: checks every frame (protocol.h); on MACHINE builds the machine
//     (KVM VM, irqchip, memory slots, vCPUs) over a fresh memfd-backed RAM
//     (or, on MEMFD, over the passed memfd) and says READY; fills the RAM
//     with the pages; after END adds the devices, sets the state, resumes the
//     guest and says RUNNING.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/machine.h"
#include "vmm/migration/transport.h"
#include "vmm/snapshot/snapshot.h"

namespace vessel::vmm::virtio {
class VsockDevice;
}

namespace vessel::vmm::migration {

struct SendOptions {
  uint64_t max_downtime_ms = 300;  // what the last (paused) round may take
  uint64_t bandwidth = 0;          // bytes/s cap on the stream (0: none)
  unsigned max_rounds = 30;        // then stop and copy whatever is left
  bool auto_converge = true;       // throttle vCPUs that dirty faster than the link
  bool memfd = false;              // pass the RAM memfd (unix sockets on one host)
  // Where pre-copy does not converge (the budget not met by max_rounds, or
  // the guest dirtying faster than half the link from round 2), switch to
  // post-copy instead of throttling: the guest runs on the destination at
  // once and the pages it lacks follow, those it touches first.
  bool postcopy = false;
  // bytes/s cap on the pages post-copy sends unasked (0: none; QEMU's
  // max-postcopy-bandwidth): the pages the destination asks for go at once.
  uint64_t postcopy_bandwidth = 0;
  // The writable disks' image files go along (disk_copy.h): for hosts that
  // share no storage. Not with `memfd`.
  bool copy_disks = false;
  int connect_timeout_ms = 5000;
  int ack_timeout_ms = 60000;      // for ACCEPT and RUNNING
};

// What a migration is doing, read by the VMM's API while the sender runs.
struct Progress {
  mutable std::mutex mu;
  std::string phase = "none";  // connecting|precopy|stop-and-copy|waiting|completed|failed
  unsigned round = 0;
  uint64_t pages_total = 0;        // pages of guest RAM
  uint64_t pages_sent = 0;         // data pages sent (all rounds)
  uint64_t zero_pages = 0;         // zero pages sent as a bit
  uint64_t bytes_sent = 0;
  uint64_t dirty_pages = 0;        // dirty after the last round
  double dirty_rate = 0;           // bytes/s dirtied during the last round
  double bandwidth = 0;            // bytes/s measured in the last round
  double expected_downtime_ms = 0;
  unsigned throttle_pct = 0;
  // How the dirty pages were found: "ring" (KVM's per-vCPU dirty rings) or
  // "bitmap" (the slots' dirty bitmaps); the times a vCPU waited on a full ring.
  std::string dirty_log;
  uint64_t dirty_ring_full_exits = 0;
  double downtime_ms = 0;          // pause -> RUNNING (when completed)
  double total_ms = 0;
  // Where the downtime went (when completed): the pause itself, the last
  // dirty log read, the last pages (and how many), the state capture, and
  // from STATE sent to RUNNING (the destination's restore); the fixed part
  // the estimate counted, and what the destination expected its restore to take.
  double pause_ms = 0, last_log_ms = 0, last_pages_ms = 0, capture_ms = 0, restore_wait_ms = 0;
  uint64_t last_pages = 0;
  double fixed_estimate_ms = 0, destination_estimate_ms = 0;
  // Post-copy: the pages the destination lacked when the guest moved, those
  // it asked for (the guest waited on them), RUNNING to DONE.
  bool postcopy = false;
  uint64_t postcopy_pages = 0, postcopy_requests = 0;
  double postcopy_ms = 0;
  // --copy-disks: the image bytes sent (data, not zero ranges), and the time
  // the disks' last changes took after the pause.
  uint64_t disk_bytes = 0;
  double last_disk_ms = 0;
  // The migration failed after the destination ran the guest (post-copy):
  // the copy here is stale and must not run again.
  bool source_lost = false;
  std::string destination;
  std::string error;
};

// The machine's vsock device (nullptr: none).
virtio::VsockDevice* vsock_of(Machine& m);

// Sends the running machine `m` (described by `spec`; `vm_config` travels
// opaque, as in snapshots) over `conn`. On success the destination runs the
// guest and `m` is left paused (the caller stops it); on failure `m` runs
// again (it was resumed here if it had been paused) and the error says why.
Status send_machine(Machine& m, const snapshot::VmSpec& spec, const std::string& vm_config, Connection& conn,
                    const SendOptions& o, Progress& p);

struct ReceiveOptions {
  std::string kvm_device = "/dev/kvm";
  Serial::OutFn serial_out;
  uint64_t max_memory = kMaxGuestMemory;
  int timeout_ms = 30000;  // silence from the sender that ends the stream
  // Before the restore: the taps (and MACs) the received VM's NICs use here
  // instead of the source's, from its state (an error refuses the VM).
  std::function<Result<std::vector<snapshot::NetOverride>>(const snapshot::SnapshotState&)> nets_for;
  // Non-empty: the vsock device listens on this unix socket instead of the
  // source's path (a VMM on the same host still holds that one).
  std::string vsock_uds;
  // Where the image files of a --copy-disks migration are created (an
  // existing directory; without one such a migration is refused).
  std::string disk_dir;
};

struct Received {
  snapshot::Restored restored;  // the machine runs
  uint64_t data_pages = 0, zero_pages = 0;
  bool memfd = false;
  double build_ms = 0;    // building the machine (before the source paused)
  double stream_ms = 0;   // HELLO to END
  double restore_ms = 0;  // END to running
  // Post-copy: RUNNING to DONE, the pages the guest waited for, the holes filled with zeroes.
  double postcopy_ms = 0;
  uint64_t postcopy_requested = 0, postcopy_zero_filled = 0;
  uint64_t disk_bytes = 0;  // --copy-disks: image bytes written
};

// Reads a migration stream from `conn`, restores the machine and runs it,
// then says RUNNING. Errors are also sent to the sender (REFUSE or ERROR).
Result<Received> receive_machine(Connection& conn, const ReceiveOptions& o);

}  // namespace vessel::vmm::migration
