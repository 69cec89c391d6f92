#include "vmm/instance/vmm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "vmm/api/server.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/instance/migration_job.h"
#include "vmm/kvm/ksm.h"
#include "vmm/snapshot/machine_state.h"
#include "vmm/virtio/balloon/balloon.h"

namespace vessel::vmm {

using nlohmann::json;

const char* status_name(VmStatus s) {
  switch (s) {
    case VmStatus::kNotStarted: return "created";
    case VmStatus::kRunning: return "running";
    case VmStatus::kPaused: return "paused";
    case VmStatus::kStopped: return "stopped";
  }
  return "unknown";
}

const char* firecracker_state(VmStatus s) {
  switch (s) {
    case VmStatus::kNotStarted: return "Not started";
    case VmStatus::kRunning: return "Running";
    case VmStatus::kPaused: return "Paused";
    case VmStatus::kStopped: return "Stopped";
  }
  return "unknown";
}

namespace {
int64_t wall_seconds() { return static_cast<int64_t>(::time(nullptr)); }

uint64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

const char* exit_reason(StopReason r) {
  switch (r) {
    case StopReason::kPoweroff: return "poweroff";
    case StopReason::kReset: return "reset";
    case StopReason::kHalt: return "halt";
    case StopReason::kStopped: return "stopped";
    case StopReason::kError: return "error";
  }
  return "unknown";
}

// COM1's interrupt state and the interrupt controllers' view of its line
// (IRQ 4), read without touching the guest: what a guest whose console went
// silent needs looked at (a THR-empty interrupt pending in the UART that the
// IOAPIC or the PIC does not pass on).
json interrupt_json(Machine& m) {
  SerialState u = m.serial().save();
  json j{{"com1",
          {{"ier", u.ier},
           {"thr_interrupt_pending", u.thr_interrupt_pending},
           {"irq_level", u.irq_level},
           {"rx_count", u.rx_count},
           {"mcr", u.mcr},
           {"fcr", u.fcr}}}};
  if (!m.has_irqchip()) return j;
  if (auto c = m.vm_fd().get_irqchip(KVM_IRQCHIP_PIC_MASTER)) {
    const kvm_pic_state& p = c->chip.pic;
    j["pic_master"] = {{"irr", p.irr}, {"imr", p.imr}, {"isr", p.isr}, {"irq_base", p.irq_base},
                       {"init_state", p.init_state}};
  }
  if (auto c = m.vm_fd().get_irqchip(KVM_IRQCHIP_IOAPIC)) {
    const auto& a = c->chip.ioapic;
    const auto& e = a.redirtbl[x86::kCom1Irq].fields;
    j["ioapic"] = {{"irr", a.irr},
                   {"com1_pin",
                    {{"vector", e.vector},
                     {"masked", e.mask},
                     {"level_triggered", e.trig_mode},
                     {"remote_irr", e.remote_irr}}}};
  }
  return j;
}
}  // namespace

Result<std::unique_ptr<Vmm>> Vmm::create(VmmOptions o) {
  std::unique_ptr<Vmm> v(new Vmm(std::move(o)));
  TRY(v->init());
  return v;
}

Status Vmm::init() {
  TRY(check_vm_id(opts_.id));
  paths_ = vm_paths(opts_.root, opts_.state_id.empty() ? opts_.id : opts_.state_id);
  int dir = ::open(paths_.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return Error::from_errno(cat("open the state directory ", paths_.dir));
  dir_fd_.reset(dir);
  created_at_ = wall_seconds();
  // Stop signals arrive on a signalfd; threads created later inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a metrics FIFO or a console whose reader left
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return Error::from_errno("signalfd");
  signal_fd_.reset(sfd);

  serial_ = TRY(SerialSink::open(opts_.serial, dir_fd_.get(), "serial.log"));
  add_routes();
  add_migration_routes();
  std::string sock = opts_.api_sock.empty() ? paths_.default_api_sock() : absolute_path(opts_.api_sock);
  api_ = TRYC(api::ApiServer::listen(sock, router_), "--api-sock");
  console_listen_ = TRYC(api::listen_unix(paths_.console_sock()), "console socket");
  if (opts_.config.logger) TRY(apply_logger(*opts_.config.logger));
  if (opts_.config.metrics) TRY(open_metrics(*opts_.config.metrics));
  VmmRecord rec{opts_.id, ::getpid(), process_start_time(::getpid()), sock, created_at_};
  TRYC(write_record(paths_, rec), "write the VM record");
  if (!opts_.receive_url.empty()) TRY(receive_migration(opts_.receive_url, opts_.receive_nets, opts_.receive_vsock_uds, opts_.receive_disk_dir));
  return ok();
}

Vmm::~Vmm() {
  cancel_migration();
  if (vm_.machine) (void)vm_.machine->finish();
  if (serial_) serial_->set_console(-1);
  console_.reset();
  console_listen_.reset();
  if (dir_fd_) ::unlinkat(dir_fd_.get(), "console.sock", 0);
}

VmPaths Vmm::own_dir() const { return VmPaths{cat("/proc/self/fd/", dir_fd_.get())}; }

std::string Vmm::dir_now() const {
  struct stat now {}, start {};
  if (::fstat(dir_fd_.get(), &now) < 0 ||
      (::stat(paths_.dir.c_str(), &start) == 0 && start.st_dev == now.st_dev && start.st_ino == now.st_ino))
    return paths_.dir;  // not renamed: the path as given
  char buf[4096];
  ssize_t n = ::readlink(own_dir().dir.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return paths_.dir;
  return std::string(buf, static_cast<size_t>(n));
}

Status Vmm::require_not_started(const char* what) const {
  if (status_ == VmStatus::kNotStarted) return ok();
  return Error::invalid(cat(what, ": only allowed before InstanceStart (the VM is ", status_name(status_), ")"));
}

Status Vmm::start_vm() {
  if (status_ != VmStatus::kNotStarted)
    return Error::invalid(cat("InstanceStart: the VM was started already (it is ", status_name(status_), ")"));
  uint64_t t0 = monotonic_us();
  SerialSink* sink = serial_.get();
  BuiltVm vm = TRY(build_vm(opts_.config, [sink](uint8_t b) { sink->put(b); }));
  // Read now, while it costs nothing: a snapshot's or a migration's pause then reads only what changes.
  if (auto k = snapshot::learn_vcpu_constants(*vm.machine); !k)
    log::warn("vmm", cat("VM ", opts_.id, ": ", k.error().message(), " (a snapshot reads them then)"));
  TRYC(vm.machine->start(), "start the VM");
  vm_ = std::move(vm);
  status_ = VmStatus::kRunning;
  started_at_ = wall_seconds();
  start_us_ = monotonic_us() - t0;
  log::info("vmm", cat("VM ", opts_.id, " started in ", start_us_, " us"));
  return ok();
}

Status Vmm::pause_vm() {
  if (status_ == VmStatus::kNotStarted) return Error::invalid("Paused: the VM is not started");
  if (status_ == VmStatus::kPaused) return Error::invalid("Paused: the VM is already paused");
  if (migrating()) return Error::invalid("Paused: the VM is being migrated");
  TRYC(vm_.machine->pause(), "pause");
  status_ = VmStatus::kPaused;
  return ok();
}

Status Vmm::resume_vm() {
  if (status_ != VmStatus::kPaused)
    return Error::invalid(cat("Resumed: the VM is not paused (it is ", status_name(status_), ")"));
  if (migrating()) return Error::invalid("Resumed: the VM is being migrated");
  TRYC(vm_.machine->resume(), "resume");
  status_ = VmStatus::kRunning;
  return ok();
}

Status Vmm::send_ctrl_alt_del() {
  if (status_ != VmStatus::kRunning)
    return Error::invalid(cat("SendCtrlAltDel: the VM is not running (it is ", status_name(status_), ")"));
  return vm_.machine->send_ctrl_alt_del();
}

Status Vmm::apply_logger(const LoggerConfig& l) {
  log::Level level = log::Level::kWarn;
  std::string lv = l.level;
  for (auto& c : lv) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  if (lv == "error" || lv == "off") level = log::Level::kError;
  else if (lv == "info") level = log::Level::kInfo;
  else if (lv == "debug" || lv == "trace") level = log::Level::kDebug;
  if (!l.log_path.empty()) {
    // Open it here so that a bad path is the request's error (the logger would only print it).
    UniqueFd probe = TRYC(open_file(l.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600), "log_path");
  }
  log::configure(l.log_path, log::Format::kText, level);
  opts_.config.logger = l;
  return ok();
}

void Vmm::accept_console() {
  int fd = ::accept4(console_listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  if (console_) {
    static const char kBusy[] = "vessel: a console is already attached to this VM\n";
    (void)!::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
    return;
  }
  console_.reset(fd);
  console_pending_.clear();
  serial_->set_console(fd);
}

void Vmm::console_input() {
  if (console_pending_.empty()) {
    char buf[1024];
    ssize_t n = ::recv(console_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      serial_->set_console(-1);
      console_.reset();
      return;
    }
    if (n > 0) console_pending_.assign(buf, static_cast<size_t>(n));
  }
  if (!console_pending_.empty() && vm_.machine) {
    size_t took = vm_.machine->serial().enqueue_input(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(console_pending_.data()), console_pending_.size()));
    console_pending_.erase(0, took);
  } else if (!vm_.machine) {
    console_pending_.clear();  // nothing to type into before the start
  }
}

VmExit Vmm::run() {
  std::vector<pollfd> fds;
  while (!exit_) {
    fds.clear();
    fds.push_back({signal_fd_.get(), POLLIN, 0});
    fds.push_back({vm_.machine ? vm_.machine->stop_fd() : -1, POLLIN, 0});
    fds.push_back({console_listen_.get(), POLLIN, 0});
    fds.push_back({console_ && console_pending_.empty() ? console_.get() : -1, POLLIN, 0});
    fds.push_back({metrics_timer_ ? metrics_timer_.get() : -1, POLLIN, 0});
    fds.push_back({migration_event_fd(), POLLIN, 0});
    size_t api_first = fds.size();
    api_->collect(fds);
    int timeout = api_->timeout_ms();
    if (!console_pending_.empty()) timeout = timeout < 0 ? 10 : std::min(timeout, 10);  // UART full: retry soon
    int r = ::poll(fds.data(), fds.size(), timeout);
    if (r < 0 && errno != EINTR) {
      exit_ = VmExit{"error", cat("poll: ", strerror(errno)), wall_seconds()};
      break;
    }
    if (r > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si;
      if (::read(signal_fd_.get(), &si, sizeof si) > 0) {
        log::info("vmm", cat("signal ", si.ssi_signo, ": stopping the VM"));
        if (vm_.machine) vm_.machine->request_stop(StopReason::kStopped);
        else {
          cancel_migration();  // a receiver waiting for a VM
          exit_ = VmExit{"stopped", "signal before the start", wall_seconds()};
        }
      }
    }
    if (r > 0 && (fds[2].revents & POLLIN)) accept_console();
    if (r > 0 && fds[3].fd >= 0 && fds[3].revents) console_input();
    else if (!console_pending_.empty()) console_input();
    if (r > 0 && fds[4].fd >= 0 && (fds[4].revents & POLLIN)) {
      uint64_t ticks;
      (void)!::read(metrics_timer_.get(), &ticks, sizeof ticks);
      if (auto s = flush_metrics(); !s) log::warn("vmm", s.error().message());
    }
    std::vector<pollfd> api_fds(fds.begin() + static_cast<long>(api_first), fds.end());
    api_->handle(api_fds);
    if (r > 0 && fds[5].fd >= 0 && (fds[5].revents & POLLIN) && !exit_) finish_migration();
    if (!exit_ && vm_.machine && vm_.machine->stopping()) {
      if (migrating()) {  // the guest stopped mid-migration: end the stream first
        cancel_migration();
        migration_->finished = true;
      }
      RunResult res = vm_.machine->finish();
      status_ = VmStatus::kStopped;
      exit_ = VmExit{exit_reason(res.reason), res.detail, wall_seconds()};
    }
  }
  if (metrics_fd_) (void)flush_metrics();
  if (auto s = write_exit(own_dir(), *exit_); !s) log::warn("vmm", s.error().message());
  return *exit_;
}

json Vmm::state_json(bool stats) const {
  json j{{"id", opts_.id},
         {"pid", ::getpid()},
         {"status", status_name(status_)},
         {"vcpus", opts_.config.machine.vcpu_count},
         {"memory_mib", opts_.config.machine.mem_size_mib},
         {"mergeable", opts_.config.mem_mergeable},
         {"created", created_at_},
         {"api_sock", opts_.api_sock.empty() ? dir_now() + "/api.sock" : api_->path()}};
  if (opts_.config.boot_source) j["kernel"] = opts_.config.boot_source->kernel_image_path;
  if (started_at_) {
    j["boot_time"] = started_at_;
    j["start_us"] = start_us_;
  }
  json devices = json::array();
  for (const auto* d : opts_.config.drives_in_order())
    devices.push_back({{"type", "virtio-blk"}, {"id", d->drive_id}, {"path", d->path_on_host}, {"read_only", d->is_read_only}});
  for (const auto& n : opts_.config.nets) devices.push_back({{"type", "virtio-net"}, {"id", n.iface_id}, {"tap", n.host_dev_name}});
  if (opts_.config.entropy) devices.push_back({{"type", "virtio-rng"}, {"id", "entropy"}});
  if (opts_.config.balloon) {
    json b{{"type", "virtio-balloon"}, {"id", "balloon"}, {"target_mib", opts_.config.balloon->amount_mib}};
    if (vm_.balloon) {
      b["actual_mib"] = (static_cast<uint64_t>(vm_.balloon->actual_pages()) * 4096) >> 20;
      if (stats) {
        auto c = vm_.balloon->counters();
        b["counters"] = {{"inflated_pages", c.inflated_pages}, {"deflated_pages", c.deflated_pages},
                         {"reported_bytes", c.reported_bytes}, {"invalid_pfns", c.invalid_pfns},
                         {"discard_errors", c.discard_errors}, {"stats_received", c.stats_received},
                         {"stats_polls", c.stats_polls}};
      }
    }
    devices.push_back(b);
  }
  if (opts_.config.vsock)
    devices.push_back({{"type", "virtio-vsock"}, {"id", "vsock"}, {"guest_cid", opts_.config.vsock->guest_cid},
                       {"uds_path", opts_.config.vsock->uds_path}});
  j["devices"] = devices;
  if (migration_) j["migration"] = migration_json();
  if (stats) {
    json s;
    s["serial_bytes"] = serial_->bytes();
    if (vm_.machine) s["interrupts"] = interrupt_json(*vm_.machine);
    s["api_connections"] = api_->connections();
    s["metrics"] = metrics_totals();
    s["vmm_rss_kib"] = s["metrics"]["vmm"]["rss_kib"];
    if (auto merged = ksm_merging_pages(::getpid())) s["ksm_merging_pages"] = *merged;
    j["stats"] = s;
  }
  return j;
}

}  // namespace vessel::vmm
