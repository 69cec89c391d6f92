// Vmm: one VMM process = one VM, as in Firecracker. It owns the VM's
// configuration, the Machine once started, the API server, the console
// socket and the state directory, and runs the control loop.
//
// States:  not started --InstanceStart--> running <--PATCH /vm--> paused
//          running/paused --guest poweroff/reset, SIGTERM, fatal exit--> stopped
// The process exits once the VM stopped (exit.json says why); before
// InstanceStart a SIGTERM ends it too. Everything runs on the main thread
// (the control loop): API handlers, console relay, signals, metrics timer;
// the vCPUs and virtio workers are the only other threads, and nothing they
// do waits for the control loop.
#pragma once

#include <poll.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/api/router.h"
#include "vmm/api/server.h"
#include "vmm/config/vm_builder.h"
#include "vmm/config/vm_config.h"
#include "vmm/instance/serial_sink.h"
#include "vmm/instance/state_dir.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/snapshot/state.h"

namespace vessel::vmm {

enum class VmStatus { kNotStarted, kRunning, kPaused, kStopped };
// vessel's names: created | running | paused | stopped.
const char* status_name(VmStatus s);
// Firecracker's InstanceInfo.state: "Not started" | "Running" | "Paused".
const char* firecracker_state(VmStatus s);

// PUT /snapshot/load (or `vm restore`): a snapshot to restore instead of booting.
struct SnapshotLoad {
  std::string state_path;
  std::string memory_path;  // empty: the path recorded in the state file
  bool resume = false;      // run it (else it stays paused)
  bool track_dirty_pages = false;  // enable_diff_snapshots
  bool prefault = false;
  // Firecracker's network_overrides (plus vessel's guest_mac): an interface
  // of the snapshot on another tap, with another MAC.
  struct NetOverride {
    std::string iface_id;
    std::string host_dev_name;  // empty: the snapshot's
    std::string guest_mac;      // empty: the snapshot's (a clone: derived)
  };

  std::vector<NetOverride> network_overrides;
  // vessel: restore as a clone: each writable drive gets a qcow2 overlay in
  // the VM's state directory, each interface needs its own tap (an
  // override) and gets a MAC derived from the VM id unless one is given.
  bool clone = false;
};
// Parses PUT /snapshot/load's body (Firecracker's fields: snapshot_path,
// mem_backend {backend_type File, backend_path} or mem_file_path,
// enable_diff_snapshots, resume_vm, network_overrides [{iface_id,
// host_dev_name}]; vessel's prefault, clone, network_overrides[].guest_mac).
Result<SnapshotLoad> parse_snapshot_load(const nlohmann::json& body);
// A JSON array of {iface_id, host_dev_name} (`field` names it in errors):
// for a restore host_dev_name is optional and guest_mac allowed; for a
// received migration host_dev_name is required and the MAC stays the VM's.
Result<std::vector<SnapshotLoad::NetOverride>> parse_net_overrides(const nlohmann::json& arr, const std::string& field,
                                                                   bool for_restore);

// The taps and MACs `overrides` give the NICs of a VM in state `st` (named by
// iface_id in its VM config). `clone`: every NIC needs a tap and gets a MAC
// derived from `vm_id` unless one is given.
Result<std::vector<snapshot::NetOverride>> resolve_net_overrides(const snapshot::SnapshotState& st,
                                                                 const std::vector<SnapshotLoad::NetOverride>& overrides,
                                                                 bool clone, const std::string& vm_id);

// The machine a VmConfig builds (the order of build_vm(): drives, nets,
// entropy): what snapshots and migrations record (snapshot_routes.cc).
snapshot::VmSpec spec_of(const VmConfig& c);

struct VmmOptions {
  std::string id;
  std::string root;      // state under <root>/vm/<id>/ (must exist: made by the launcher)
  std::string api_sock;  // empty: <state dir>/api.sock
  std::string serial = "log";
  VmConfig config;       // from flags or --config-file; the API may change it before the start
  bool start = false;    // InstanceStart before serving (vm run -d)
  std::optional<SnapshotLoad> restore;  // restore this snapshot before serving (vm restore)
  std::string receive_url;  // vm receive: wait for a migrated VM on tcp:ADDR:PORT or unix:PATH
  // vm receive: the taps its NICs use here (iface_id empty: the NICs in order).
  std::vector<SnapshotLoad::NetOverride> receive_nets;
  // vm receive: the unix socket its vsock listens on here (empty: the source's path).
  std::string receive_vsock_uds;
  // vm receive: where a --copy-disks migration's image files are created (empty: refused).
  std::string receive_disk_dir;
  // The state directory's name under <root>/vm when it is not `id`: vm upgrade
  // starts the new VMM of VM `id` beside the old one, then renames its
  // directory to `id` once the old VMM has handed the VM over and exited.
  std::string state_id;
  std::string version;   // reported by GET /
};

class Vmm {
 public:
  // Blocks the stop signals (before any thread exists), opens the serial
  // sink, listens on the API and console sockets, writes vmm.json.
  static Result<std::unique_ptr<Vmm>> create(VmmOptions o);
  ~Vmm();
  Vmm(const Vmm&) = delete;
  Vmm& operator=(const Vmm&) = delete;

  // InstanceStart: builds the Machine from the config and starts it.
  Status start_vm();
  Status pause_vm();
  Status resume_vm();
  Status send_ctrl_alt_del();
  // PUT /snapshot/create: a Full or Diff snapshot of the paused VM (snapshot_routes.cc).
  Status snapshot_create(const nlohmann::json& body);
  // PUT /snapshot/load: restores a snapshot into this not yet started VMM.
  Status snapshot_load(const SnapshotLoad& l);
  // A restored or received machine with the handles of its devices (API
  // routes, metrics), `c` (the VM's config) updated to the devices as
  // restored (a clone's overlays, taps, MACs, vsock socket).
  static BuiltVm adopt_machine(std::unique_ptr<Machine> m, const snapshot::SnapshotState& st, VmConfig& c);
  // PUT /vm.send-migration: connects to the destination and starts sending
  // the running VM on a thread (migration_routes.cc); the VMM exits once the
  // destination runs it, else the guest resumes here.
  Status send_migration(const nlohmann::json& body);
  // PUT /vm.receive-migration (or `vm receive`): before InstanceStart, listens
  // on `url` and runs the VM that arrives there.
  Status receive_migration(const std::string& url, std::vector<SnapshotLoad::NetOverride> nets,
                           const std::string& vsock_uds = {}, const std::string& disk_dir = {});
  // What GET /vm.migration and `vm state` show of the last migration.
  nlohmann::json migration_json() const;

  // The control loop: returns once the VM stopped, or on a stop signal.
  VmExit run();

  VmStatus status() const { return status_; }
  const VmConfig& config() const { return opts_.config; }
  const std::string& id() const { return opts_.id; }
  const VmPaths& paths() const { return paths_; }
  // The API's routes: other features add rows here (see api/router.h).
  api::Router& router() { return router_; }
  // What `vm state` prints (with counters when `stats`).
  nlohmann::json state_json(bool stats) const;
  // Writes one metrics line to the PUT /metrics sink (if configured): the
  // counters since the previous line (metrics.cc).
  Status flush_metrics();
  // The VM's counters since the start, with Firecracker's names (metrics.cc).
  nlohmann::json metrics_totals() const;
  // PATCH /drives/{id} on a running VM: a new backing file and/or rate
  // limits, the guest told of the new capacity (routes.cc).
  Status update_drive(const std::string& id, const std::optional<std::string>& path,
                      const std::optional<RateLimiterConfig>& limiter);

 private:
  explicit Vmm(VmmOptions o) : opts_(std::move(o)) {}
  Status init();
  // Rows of the Firecracker API and vessel's own (routes.cc), and the
  // balloon's and vsock's (routes_overcommit.cc).
  void add_routes();
  void add_overcommit_routes();
  // The /snapshot rows (snapshot_routes.cc).
  void add_snapshot_routes();
  // The /vm.*-migration rows (migration_routes.cc).
  void add_migration_routes();
  // The migration thread ended: adopt the received VM, or stop the sent one
  // (exit "migrated"), or log why it failed (the guest runs on).
  void finish_migration();
  // Stops a migration in flight (the connection is shut down) and joins its thread.
  void cancel_migration();
  bool migrating() const;
  int migration_event_fd() const;
  // An Error when the VM has started: `what` is only allowed before.
  Status require_not_started(const char* what) const;
  // This VMM's state directory as /proc/self/fd/N (dir_fd_): files written or
  // removed through it land in this VMM's own directory even after `vm
  // upgrade` renamed it (<id>.upgrade -> <id>, <id> -> <id>.replaced) and
  // another VMM took the old name.
  VmPaths own_dir() const;
  // The state directory's path now (paths_.dir unless vm upgrade renamed it).
  std::string dir_now() const;
  void accept_console();
  void console_input();
  Status open_metrics(const MetricsConfig& m);
  Status apply_logger(const LoggerConfig& l);

  VmmOptions opts_;
  VmPaths paths_;  // where the VMM started (see own_dir())
  UniqueFd dir_fd_;  // the state directory, O_PATH: follows it when it is renamed
  VmStatus status_ = VmStatus::kNotStarted;
  api::Router router_;
  std::unique_ptr<api::ApiServer> api_;
  std::unique_ptr<SerialSink> serial_;
  UniqueFd console_listen_, console_;
  std::string console_pending_;  // typed bytes that did not fit in the UART yet
  UniqueFd signal_fd_;
  UniqueFd metrics_fd_, metrics_timer_;
  uint64_t metrics_flushes_ = 0;
  nlohmann::json metrics_last_;  // the totals of the previous metrics line
  BuiltVm vm_;
  int64_t created_at_ = 0, started_at_ = 0;
  uint64_t start_us_ = 0;  // InstanceStart duration
  std::optional<VmExit> exit_;
  struct MigrationJob;  // migration_job.h
  std::shared_ptr<MigrationJob> migration_;  // shared_ptr: the inline constructor needs no complete type
};

}  // namespace vessel::vmm
