#include "vmm/vm_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "vmm/config/vm_builder.h"
#include "vmm/console.h"
#include "vmm/device_options.h"
#include "vmm/disk/disk.h"
#include "vmm/machine.h"
#include "vmm/serial_buffer.h"
#include "vmm/virtio/rng/rng.h"

namespace vessel::vmm {

Status validate(const VmRunOptions& o) {
  if (o.cpus == 0 || o.cpus > Machine::kMaxCpus)
    return Error::invalid(cat("--cpus must be between 1 and ", Machine::kMaxCpus, ", not ", o.cpus));
  if (o.memory < kMinGuestMemory) return Error::invalid(cat("--memory must be at least ", kMinGuestMemory >> 20, " MiB"));
  if (o.memory % 4096 != 0) return Error::invalid("--memory must be a multiple of 4 KiB");
  if (o.serial != "stdio" && o.serial != "none" && !(starts_with(o.serial, "file:") && o.serial.size() > 5))
    return Error::invalid(cat("--serial must be stdio, none or file:PATH, not '", o.serial, "'"));
  for (const auto& d : o.disks) TRY(parse_disk_spec(d));
  for (const auto& n : o.nets) TRY(parse_net_spec(n));
  if (!o.balloon.empty()) {
    auto b = TRY(parse_balloon_spec(o.balloon));
    if (static_cast<uint64_t>(b.target_pages) * virtio::kBalloonPageSize >= o.memory)
      return Error::invalid(cat("--balloon ", o.balloon, ": the balloon must be smaller than --memory"));
  }
  if (!o.vsock.empty()) TRY(parse_vsock_spec(o.vsock));
  return ok();
}

namespace {
// Console output: all of `data`, retrying short writes (a full pipe or tty).
void write_all(int fd, std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      (void)::poll(&p, 1, 100);
      continue;
    }
    if (n <= 0) return;  // the reader is gone: drop the rest
    done += static_cast<size_t>(n);
  }
}

// How long a partial line of console output may wait before it is written.
constexpr int kSerialFlushDelayMs = 5;

// A bucket refilled every second with `rate` tokens (0: none).
std::optional<TokenBucketConfig> per_second(uint64_t rate) {
  if (rate == 0) return std::nullopt;
  return TokenBucketConfig{rate, 0, 1000};
}

std::optional<RateLimiterConfig> limiter(uint64_t bandwidth, uint64_t iops) {
  if (bandwidth == 0 && iops == 0) return std::nullopt;
  return RateLimiterConfig{per_second(bandwidth), per_second(iops)};
}
}  // namespace

Result<VmConfig> to_vm_config(const VmRunOptions& o) {
  TRY(validate(o));
  VmConfig c;
  c.boot_source = BootSourceConfig{o.kernel, o.cmdline, o.initrd};
  c.machine.vcpu_count = o.cpus;
  c.machine.mem_size_mib = o.memory >> 20;
  if (o.memory % (1 << 20) != 0) return Error::invalid("--memory must be a multiple of 1 MiB");
  c.kvm_device = o.kvm_device;
  c.mem_mergeable = o.mergeable;
  for (size_t i = 0; i < o.disks.size(); ++i) {
    DiskSpec spec = TRY(parse_disk_spec(o.disks[i]));
    DriveConfig d;
    d.drive_id = cat("disk", i);
    d.path_on_host = spec.path;
    d.is_read_only = spec.options.readonly;
    d.serial = spec.options.serial;
    d.rate_limiter = limiter(spec.options.bandwidth, spec.options.iops);
    c.drives.push_back(d);
  }
  for (size_t i = 0; i < o.nets.size(); ++i) {
    auto opts = TRY(parse_net_spec(o.nets[i]));
    NetConfig n;
    n.iface_id = cat("net", i);
    n.host_dev_name = opts.tap;
    if (opts.mac_set) {
      static const char* kHex = "0123456789abcdef";
      for (size_t b = 0; b < opts.mac.size(); ++b) {
        if (b) n.guest_mac += ':';
        n.guest_mac += kHex[opts.mac[b] >> 4];
        n.guest_mac += kHex[opts.mac[b] & 15];
      }
    }
    n.rx_rate_limiter = n.tx_rate_limiter = limiter(opts.bandwidth, opts.iops);
    c.nets.push_back(n);
  }
  if (o.rng) c.entropy = EntropyConfig{};
  if (!o.balloon.empty()) {
    auto b = TRY(parse_balloon_spec(o.balloon));
    c.balloon = BalloonConfig{(static_cast<uint64_t>(b.target_pages) * virtio::kBalloonPageSize) >> 20, b.deflate_on_oom,
                              b.stats_interval_s, b.free_page_reporting};
  }
  if (!o.vsock.empty()) {
    auto v = TRY(parse_vsock_spec(o.vsock));
    c.vsock = VsockConfig{v.guest_cid, v.uds_path};
  }
  return c;
}

Result<StopReason> run_vm(const VmRunOptions& o) {
  return run_vm(TRY(to_vm_config(o)), o.serial, o.restart_on_reboot);
}

Result<StopReason> run_vm(const VmConfig& c, const std::string& serial, bool restart_on_reboot) {
  if (serial != "stdio" && serial != "none" && !(starts_with(serial, "file:") && serial.size() > 5))
    return Error::invalid(cat("--serial must be stdio, none or file:PATH, not '", serial, "'"));
  UniqueFd serial_file;
  int out_fd = -1;
  if (serial == "stdio") out_fd = STDOUT_FILENO;
  if (starts_with(serial, "file:")) {
    serial_file = TRYC(open_file(serial.substr(5), O_WRONLY | O_CREAT | O_TRUNC, 0644), "serial output");
    out_fd = serial_file.get();
  }
  // Signals that stop the VM arrive on a signalfd, from before the VM is built (a SIGTERM
  // while the kernel loads stops it cleanly too); the vCPU threads inherit the blocked mask.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&stop_signals, s);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  ScopeExit restore_mask([&] { pthread_sigmask(SIG_SETMASK, &old_mask, nullptr); });
  int sfd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return Error::from_errno("signalfd");
  UniqueFd signal_fd(sfd);
  // COM1 output is batched (SerialBuffer); the vCPU that starts a partial line
  // wakes this loop through flush_fd, which writes it kSerialFlushDelayMs later.
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return Error::from_errno("eventfd");
  UniqueFd flush_fd(efd);
  SerialBuffer serial_buf([out_fd](std::span<const uint8_t> d) { write_all(out_fd, d); });
  ScopeExit flush_serial([&] { serial_buf.flush(); });
  Serial::OutFn out;
  if (out_fd >= 0)
    out = [&serial_buf, efd](uint8_t b) {
      if (serial_buf.put(b)) {
        uint64_t one = 1;
        (void)!::write(efd, &one, sizeof one);
      }
    };
  bool console_in = serial == "stdio";
  RawTerminal raw(console_in ? STDIN_FILENO : -1);
  uint8_t buf[Serial::kFifoSize];
  bool flush_due = false;
  for (;;) {
    BuiltVm vm = TRY(build_vm(c, out));  // again after a reboot with restart_on_reboot: a fresh machine
    auto& machine = vm.machine;
    TRYC(machine->start(), "start the VM");
    while (!machine->stopping()) {
      pollfd fds[4] = {{machine->stop_fd(), POLLIN, 0},
                       {signal_fd.get(), POLLIN, 0},
                       {flush_fd.get(), POLLIN, 0},
                       {STDIN_FILENO, POLLIN, 0}};
      size_t space = console_in ? machine->serial().input_space() : 0;
      nfds_t n = space > 0 ? 4 : 3;
      int timeout = flush_due ? kSerialFlushDelayMs : console_in && space == 0 ? 10 : -1;  // FIFO full: retry soon
      int r = ::poll(fds, n, timeout);
      if (r < 0 && errno != EINTR) return Error::from_errno("poll");
      if (r == 0 && flush_due) {
        serial_buf.flush();
        flush_due = false;
      }
      if (r <= 0) continue;
      if (fds[1].revents & POLLIN) {
        signalfd_siginfo si;
        if (::read(signal_fd.get(), &si, sizeof si) > 0) machine->request_stop(StopReason::kStopped);
      }
      if (fds[2].revents & POLLIN) {
        uint64_t v;
        (void)!::read(flush_fd.get(), &v, sizeof v);
        flush_due = true;
      }
      if (n == 4 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t got = ::read(STDIN_FILENO, buf, space);
        if (got > 0) machine->serial().enqueue_input(std::span<const uint8_t>(buf, static_cast<size_t>(got)));
        else if (got == 0 || errno != EINTR) console_in = false;  // EOF: stop reading the console
      }
    }
    RunResult result = machine->finish();
    serial_buf.flush();  // what the guest wrote last (before the vCPUs stopped) is on the console first
    if (result.reason == StopReason::kError) return Error(EIO, result.detail);
    if (result.reason == StopReason::kReset && restart_on_reboot) continue;
    return result.reason;
  }
}

}  // namespace vessel::vmm
