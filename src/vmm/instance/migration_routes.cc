// Live migration through the API (cloud-hypervisor's names and fields):
//   PUT /vm.send-migration    {"destination_url": "tcp:ADDR:PORT" | "unix:PATH",
//                              "local": false, "max_downtime_ms": 300,
//                              "bandwidth": 0 (bytes/s, 0: no cap), "max_rounds": 30,
//                              "auto_converge": true, "postcopy": false,
//                              "postcopy_bandwidth": 0 (bytes/s of the pages not asked for),
//                              "copy_disks": false (the writable disks' image files go along)}
//       Connects (an error here is the call's 400), then sends the running VM
//       on a thread and answers 204 at once; progress: GET /vm.migration.
//   PUT /vm.receive-migration {"receiver_url": "tcp:ADDR:PORT" | "unix:PATH",
//                              "net_overrides": [{"iface_id": ID, "host_dev_name": TAP}],
//                              "vsock_override": {"uds_path": PATH},
//                              "disk_dir": DIR (where copied image files are created)}
//       Before InstanceStart: waits there for a VM and runs it (its NICs on
//       these taps; the others on the source's tap names; its vsock on PATH
//       instead of the source's socket path).
//       A memfd migration also hands the taps and the vsock's socket over
//       (one host: vm upgrade).
//   GET /vm.migration          phase, round, pages, dirty rate, expected and
//                              measured downtime (also in `vm state`).
// The engine is vmm/migration; this file runs it next to the control loop.
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/config/json_reader.h"
#include "vmm/instance/migration_job.h"

namespace vessel::vmm {

using nlohmann::json;

namespace {
Result<UniqueFd> make_eventfd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Error::from_errno("eventfd");
  return UniqueFd(fd);
}

void signal_fd(int fd) {
  uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}
}  // namespace

bool Vmm::migrating() const { return migration_ && !migration_->finished; }

int Vmm::migration_event_fd() const { return migrating() ? migration_->done_event.get() : -1; }

Status Vmm::send_migration(const json& body) {
  JsonReader r(body, "");
  TRY(r.check_object());
  std::string url = TRY(r.req_str("destination_url"));
  migration::SendOptions o;
  if (auto v = TRY(r.boolean("local"))) o.memfd = *v;
  if (auto v = TRY(r.u64("max_downtime_ms"))) o.max_downtime_ms = *v;
  if (auto v = TRY(r.u64("bandwidth"))) o.bandwidth = *v;
  if (auto v = TRY(r.u64("max_rounds"))) {
    if (*v == 0 || *v > 1000) return Error::invalid("max_rounds: must be 1 to 1000");
    o.max_rounds = static_cast<unsigned>(*v);
  }
  if (auto v = TRY(r.boolean("auto_converge"))) o.auto_converge = *v;
  if (auto v = TRY(r.boolean("postcopy"))) o.postcopy = *v;
  if (auto v = TRY(r.u64("postcopy_bandwidth"))) o.postcopy_bandwidth = *v;
  if (auto v = TRY(r.boolean("copy_disks"))) o.copy_disks = *v;
  TRY(r.finish());
  if (o.copy_disks && o.memfd) return Error::invalid("copy_disks: a local migration keeps the disks where they are");
  if (o.postcopy && o.memfd) return Error::invalid("postcopy: a local migration hands the memory over; it has nothing to post-copy");
  auto ep = TRY(migration::parse_endpoint(url, "destination_url"));
  if (o.memfd && ep.kind != migration::Endpoint::Kind::kUnix)
    return Error::invalid("local: a local migration passes the memory fd, so destination_url must be unix:PATH");
  if (migrating()) return Error::invalid("vm.send-migration: a migration is already in progress");
  if (status_ != VmStatus::kRunning)
    return Error::invalid(cat("vm.send-migration: the VM must be running (it is ", status_name(status_), ")"));
  if (o.memfd && vm_.machine->memory().file_backed())
    return Error::invalid("local: this VM's RAM is a private mapping of a snapshot memory file, not a memfd that can be "
                          "handed over: migrate it without local");
  UniqueFd sock = TRYC(migration::connect_endpoint(ep, o.connect_timeout_ms), "vm.send-migration");

  auto job = std::make_shared<MigrationJob>();
  job->sending = true;
  job->url = url;
  job->done_event = TRY(make_eventfd());
  job->progress.destination = url;
  job->progress.phase = "precopy";
  job->conn_fd = sock.get();
  MigrationJob* j = job.get();
  Machine* m = vm_.machine.get();
  snapshot::VmSpec spec = spec_of(opts_.config);
  std::string config = to_json(opts_.config).dump();
  job->thread = std::thread([j, m, spec, config, o, s = std::move(sock)]() mutable {
    migration::Connection conn(std::move(s));
    Status st = migration::send_machine(*m, spec, config, conn, o, j->progress);
    if (!st) {
      j->error = st.error();
      std::lock_guard lock(j->progress.mu);
      j->progress.phase = "failed";
      j->progress.error = st.error().message();
    }
    j->conn_fd = -1;
    signal_fd(j->done_event.get());
  });
  migration_ = std::move(job);
  log::info("vmm", cat("VM ", opts_.id, ": migrating to ", url));
  return ok();
}

Status Vmm::receive_migration(const std::string& url, std::vector<SnapshotLoad::NetOverride> nets,
                              const std::string& vsock_uds, const std::string& disk_dir) {
  TRY(require_not_started("vm.receive-migration"));
  if (migrating()) return Error::invalid("vm.receive-migration: already waiting for a migration");
  auto ep = TRY(migration::parse_endpoint(url, "receiver_url"));
  if (!vsock_uds.empty() && (vsock_uds.size() >= 97 || vsock_uds.find('\0') != std::string::npos))
    return Error::invalid(cat("vsock_override.uds_path '", vsock_uds, "': too long for a unix socket with its _PORT suffix"));
  if (!disk_dir.empty()) {
    struct stat st {};
    if (::stat(disk_dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
      return Error::invalid(cat("disk_dir '", disk_dir, "': not a directory"));
  }
  auto job = std::make_shared<MigrationJob>();
  job->sending = false;
  job->url = url;
  job->done_event = TRY(make_eventfd());
  job->cancel_event = TRY(make_eventfd());
  job->listen = TRYC(migration::listen_endpoint(ep), "receiver_url");
  job->progress.phase = "listening";
  MigrationJob* j = job.get();
  migration::ReceiveOptions o;
  o.kvm_device = opts_.config.kvm_device;
  SerialSink* sink = serial_.get();
  o.serial_out = [sink](uint8_t b) { sink->put(b); };
  o.vsock_uds = vsock_uds.empty() ? "" : absolute_path(vsock_uds);
  o.disk_dir = disk_dir.empty() ? "" : absolute_path(disk_dir);
  if (!nets.empty()) {
    o.nets_for = [nets, id = opts_.id](const snapshot::SnapshotState& st) -> Result<std::vector<snapshot::NetOverride>> {
      // Overrides without an iface_id name the VM's NICs in order.
      VmConfig c;
      if (!st.vm_config.empty()) c = TRYC(parse_vm_config_text(st.vm_config), "the migrated VM's config");
      auto named = nets;
      size_t k = 0;
      for (auto& n : named) {
        if (!n.iface_id.empty()) continue;
        if (k >= c.nets.size())
          return Error::invalid(cat("--net: ", nets.size(), " taps given, the migrated VM has ", c.nets.size(), " NICs"));
        n.iface_id = c.nets[k++].iface_id;
      }
      return resolve_net_overrides(st, named, false, id);
    };
  }
  // The socket's file goes as soon as the one connection is in (or the wait
  // ends): by then `vm upgrade` may be about to rename the directory it is
  // in, and another receiver may listen on the same path.
  std::string sock_path = ep.kind == migration::Endpoint::Kind::kUnix ? ep.path : "";
  job->thread = std::thread([j, o, sock_path]() {
    auto run = [&]() -> Status {
      auto accepted = migration::accept_one(j->listen.get(), -1, j->cancel_event.get());
      if (!sock_path.empty()) ::unlink(sock_path.c_str());
      UniqueFd c = TRY(std::move(accepted));
      j->conn_fd = c.get();
      {
        std::lock_guard lock(j->progress.mu);
        j->progress.phase = "receiving";
      }
      migration::Connection conn(std::move(c));
      j->received = TRY(migration::receive_machine(conn, o));
      return ok();
    };
    Status st = run();
    j->conn_fd = -1;
    {
      std::lock_guard lock(j->progress.mu);
      j->progress.phase = st ? "completed" : "failed";
      if (!st) j->progress.error = st.error().message();
      if (j->received) {
        j->progress.pages_sent = j->received->data_pages;
        j->progress.zero_pages = j->received->zero_pages;
        j->progress.total_ms = j->received->stream_ms + j->received->restore_ms;
        j->progress.disk_bytes = j->received->disk_bytes;
      }
    }
    if (!st) j->error = st.error();
    signal_fd(j->done_event.get());
  });
  migration_ = std::move(job);
  log::info("vmm", cat("VM ", opts_.id, ": waiting for a migration on ", url));
  return ok();
}

void Vmm::cancel_migration() {
  if (!migration_ || !migration_->thread.joinable()) return;
  if (migration_->cancel_event) signal_fd(migration_->cancel_event.get());
  int fd = migration_->conn_fd.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  migration_->thread.join();
}

void Vmm::finish_migration() {
  MigrationJob& j = *migration_;
  if (j.thread.joinable()) j.thread.join();
  j.finished = true;
  j.listen.reset();  // the thread removed a unix socket's file already
  bool lost = false;
  {
    std::lock_guard lock(j.progress.mu);
    lost = j.progress.source_lost;
  }
  if (j.error && j.sending && lost) {
    // Post-copy failed after the destination ran the guest: this copy is stale.
    log::error("vmm", cat("VM ", opts_.id, ": migration to ", j.url, " failed: ", j.error->message()));
    vm_.machine->request_stop(StopReason::kStopped);
    (void)vm_.machine->finish();
    status_ = VmStatus::kStopped;
    exit_ = VmExit{"error", cat("migration to ", j.url, " failed: ", j.error->message()), ::time(nullptr)};
    return;
  }
  if (j.error) {
    log::warn("vmm", cat("VM ", opts_.id, ": migration ", j.sending ? "to " : "on ", j.url,
                         " failed: ", j.error->message(), j.sending ? " (the VM runs on here)" : ""));
    if (!j.sending) exit_ = VmExit{"error", cat("migration on ", j.url, " failed: ", j.error->message()), ::time(nullptr)};
    return;
  }
  if (j.sending) {
    double downtime, total;
    unsigned rounds;
    std::string parts;
    {
      const migration::Progress& p = j.progress;
      std::lock_guard lock(p.mu);
      downtime = p.downtime_ms;
      total = p.total_ms;
      rounds = p.round;
      if (p.postcopy)
        parts = cat(", post-copy of ", p.postcopy_pages, " pages in ", p.postcopy_ms, " ms, ", p.postcopy_requests,
                    " asked for by the destination");
      parts += cat(" (pause ", p.pause_ms, " ms, dirty log ", p.last_log_ms, " ms, last ", p.last_pages, " pages ",
                  p.last_pages_ms, " ms, state capture ", p.capture_ms, " ms, destination restore ", p.restore_wait_ms,
                  " ms; estimated fixed part ", p.fixed_estimate_ms, " ms of which the destination restore ",
                  p.destination_estimate_ms, " ms)");
      if (p.disk_bytes > 0 || p.last_disk_ms > 0)
        parts += cat(", disks copied: ", p.disk_bytes, " bytes, their last changes ", p.last_disk_ms, " ms after the pause");
      if (!p.dirty_log.empty())
        parts += cat(", dirty pages from the ", p.dirty_log,
                     p.dirty_log == "ring" ? cat(" (", p.dirty_ring_full_exits, " full-ring exits)") : std::string());
    }
    vm_.machine->request_stop(StopReason::kStopped);
    (void)vm_.machine->finish();
    status_ = VmStatus::kStopped;
    exit_ = VmExit{"migrated", cat("to ", j.url, ": downtime ", downtime, " ms, total ", total, " ms, ", rounds, " rounds", parts),
                   ::time(nullptr)};
    log::info("vmm", cat("VM ", opts_.id, " migrated ", exit_->detail));
    return;
  }
  // The received VM runs: adopt it as snapshot_load() adopts a restored one.
  migration::Received& rc = *j.received;
  VmConfig c;
  if (!rc.restored.state.vm_config.empty())
    if (auto parsed = parse_vm_config_text(rc.restored.state.vm_config)) c = std::move(*parsed);
  c.machine.vcpu_count = rc.restored.state.spec.cpus;
  c.machine.mem_size_mib = rc.restored.state.spec.memory >> 20;
  c.kvm_device = opts_.config.kvm_device;
  // The devices as received: the NICs on the taps here (the receiver's overrides).
  BuiltVm vm = adopt_machine(std::move(rc.restored.machine), rc.restored.state, c);
  opts_.config = std::move(c);
  vm_ = std::move(vm);
  status_ = VmStatus::kRunning;
  started_at_ = static_cast<int64_t>(::time(nullptr));
  start_us_ = static_cast<uint64_t>(rc.restore_ms * 1000);
  log::info("vmm", cat("VM ", opts_.id, " received on ", j.url, ": ", rc.data_pages, " data pages, ", rc.zero_pages,
                       " zero pages", rc.memfd ? " (memfd handed over)" : "",
                       rc.postcopy_ms > 0 ? cat(", post-copy ", rc.postcopy_ms, " ms (", rc.postcopy_requested,
                                                " pages asked for, ", rc.postcopy_zero_filled, " holes zero-filled)")
                                          : std::string(), ", machine built in ", rc.build_ms,
                       " ms while the pages came, stream ", rc.stream_ms, " ms, restore ", rc.restore_ms, " ms (checks ",
                       rc.restored.stats.load_ms, ", devices ", rc.restored.stats.machine_ms, ", state ",
                       rc.restored.stats.apply_ms, ", vCPU start ", rc.restored.stats.start_ms, " ms)",
                       rc.disk_bytes > 0 ? cat(", ", rc.disk_bytes, " bytes of disk images copied") : std::string()));
}

json Vmm::migration_json() const {
  if (!migration_) return json{{"phase", "none"}};
  const migration::Progress& p = migration_->progress;
  std::lock_guard lock(p.mu);
  json j{{"direction", migration_->sending ? "send" : "receive"},
         {"url", migration_->url},
         {"phase", p.phase},
         {"round", p.round},
         {"pages_total", p.pages_total},
         {"pages_sent", p.pages_sent},
         {"zero_pages", p.zero_pages},
         {"bytes_sent", p.bytes_sent},
         {"dirty_pages", p.dirty_pages},
         {"dirty_rate_bps", static_cast<uint64_t>(p.dirty_rate)},
         {"bandwidth_bps", static_cast<uint64_t>(p.bandwidth)},
         {"expected_downtime_ms", p.expected_downtime_ms},
         {"throttle_pct", p.throttle_pct},
         {"dirty_log", p.dirty_log},
         {"dirty_ring_full_exits", p.dirty_ring_full_exits},
         {"downtime_ms", p.downtime_ms},
         {"total_ms", p.total_ms},
         {"pause_ms", p.pause_ms},
         {"last_dirty_log_ms", p.last_log_ms},
         {"last_pages", p.last_pages},
         {"last_pages_ms", p.last_pages_ms},
         {"state_capture_ms", p.capture_ms},
         {"destination_restore_ms", p.restore_wait_ms},
         {"fixed_estimate_ms", p.fixed_estimate_ms},
         {"destination_estimate_ms", p.destination_estimate_ms},
         {"disk_bytes", p.disk_bytes},
         {"last_disk_ms", p.last_disk_ms},
         {"postcopy", p.postcopy},
         {"postcopy_pages", p.postcopy_pages},
         {"postcopy_requests", p.postcopy_requests},
         {"postcopy_ms", p.postcopy_ms}};
  if (p.source_lost) j["source_lost"] = true;
  if (!p.error.empty()) j["error"] = p.error;
  return j;
}

void Vmm::add_migration_routes() {
  router_.add("PUT", "/vm.send-migration", [this](const api::ApiCall& c) {
    auto body = c.json();
    if (!body) return api::bad_request(body.error());
    return api::status_call([&] { return send_migration(*body); });
  });
  router_.add("PUT", "/vm.receive-migration", [this](const api::ApiCall& c) {
    auto body = c.json();
    if (!body) return api::bad_request(body.error());
    return api::status_call([&]() -> Status {
      JsonReader r(*body, "");
      TRY(r.check_object());
      std::string url = TRY(r.req_str("receiver_url"));
      std::vector<SnapshotLoad::NetOverride> nets;
      if (const json* no = r.find("net_overrides")) nets = TRY(parse_net_overrides(*no, "net_overrides", false));
      std::string vsock_uds;
      if (const json* vo = r.find("vsock_override")) {
        JsonReader v(*vo, "vsock_override");
        TRY(v.check_object());
        vsock_uds = TRY(v.req_str("uds_path"));
        if (vsock_uds.empty()) return Error::invalid("vsock_override.uds_path: empty");
        TRY(v.finish());
      }
      std::string disk_dir;
      if (auto d = TRY(r.str("disk_dir"))) {
        if (d->empty()) return Error::invalid("disk_dir: empty");
        disk_dir = *d;
      }
      TRY(r.finish());
      return receive_migration(url, std::move(nets), vsock_uds, disk_dir);
    });
  });
  router_.add("GET", "/vm.migration", [this](const api::ApiCall&) { return api::json_ok(migration_json()); });
}

}  // namespace vessel::vmm
