#include "vmm/vm_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "vmm/console.h"
#include "vmm/device_options.h"
#include "vmm/disk/disk.h"
#include "vmm/machine.h"
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
Result<uint64_t> file_size(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return Error::from_errno(cat("stat ", path));
  if (!S_ISREG(st.st_mode)) return Error::invalid(cat(path, " is not a regular file"));
  return static_cast<uint64_t>(st.st_size);
}

void write_byte(int fd, uint8_t b) {
  while (::write(fd, &b, 1) < 0 && errno == EINTR) {
  }
}
}  // namespace

Result<StopReason> run_vm(const VmRunOptions& o) {
  TRY(validate(o));
  UniqueFd kernel = TRYC(open_file(o.kernel, O_RDONLY), "kernel");
  x86::BootSources src;
  src.kernel_fd = kernel.get();
  src.kernel_size = TRYC(file_size(kernel.get(), o.kernel), "kernel");
  UniqueFd initrd;
  if (!o.initrd.empty()) {
    initrd = TRYC(open_file(o.initrd, O_RDONLY), "initrd");
    src.initrd_fd = initrd.get();
    src.initrd_size = TRYC(file_size(initrd.get(), o.initrd), "initrd");
  }
  src.cmdline = o.cmdline;

  UniqueFd serial_file;
  int out_fd = -1;
  if (o.serial == "stdio") out_fd = STDOUT_FILENO;
  if (starts_with(o.serial, "file:")) {
    serial_file = TRYC(open_file(o.serial.substr(5), O_WRONLY | O_CREAT | O_TRUNC, 0644), "serial output");
    out_fd = serial_file.get();
  }

  MachineConfig cfg;
  cfg.kvm_device = o.kvm_device;
  cfg.cpus = o.cpus;
  cfg.memory = o.memory;
  if (out_fd >= 0) cfg.serial_out = [out_fd](uint8_t b) { write_byte(out_fd, b); };
  auto machine = TRYC(Machine::create(cfg), "create the VM");
  for (size_t i = 0; i < o.disks.size(); ++i) {
    DiskSpec spec = TRY(parse_disk_spec(o.disks[i]));
    auto image = TRYC(disk::open_disk(spec.path, spec.options.readonly), cat("--disk ", spec.path));
    auto dev = TRYC(virtio::BlockDevice::create(std::move(image), spec.options), cat("--disk ", spec.path));
    TRY(machine->add_virtio_device(std::move(dev), cat("virtio-blk ", spec.path)));
  }
  for (const auto& n : o.nets) {
    auto opts = TRY(parse_net_spec(n));
    auto dev = TRYC(virtio::NetDevice::create(opts), cat("--net ", n));
    TRY(machine->add_virtio_device(std::move(dev), cat("virtio-net ", opts.tap)));
  }
  if (o.rng) TRY(machine->add_virtio_device(std::make_unique<virtio::RngDevice>(), "virtio-rng"));
  if (!o.balloon.empty()) {
    auto dev = TRYC(virtio::BalloonDevice::create(TRY(parse_balloon_spec(o.balloon))), "--balloon");
    TRY(machine->add_virtio_device(std::move(dev), "virtio-balloon"));
  }
  if (!o.vsock.empty()) {
    auto dev = TRYC(virtio::VsockDevice::create(TRY(parse_vsock_spec(o.vsock))), "--vsock");
    TRY(machine->add_virtio_device(std::move(dev), "virtio-vsock"));
  }
  TRY(machine->load_linux(src));
  kernel.reset();
  initrd.reset();

  // Signals that stop the VM arrive on a signalfd; the vCPU threads inherit the blocked mask.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&stop_signals, s);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  ScopeExit restore_mask([&] { pthread_sigmask(SIG_SETMASK, &old_mask, nullptr); });
  int sfd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return Error::from_errno("signalfd");
  UniqueFd signal_fd(sfd);

  bool console_in = o.serial == "stdio";
  RawTerminal raw(console_in ? STDIN_FILENO : -1);
  TRYC(machine->start(), "start the VM");

  uint8_t buf[Serial::kFifoSize];
  while (!machine->stopping()) {
    pollfd fds[3] = {{machine->stop_fd(), POLLIN, 0}, {signal_fd.get(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    size_t space = console_in ? machine->serial().input_space() : 0;
    nfds_t n = space > 0 ? 3 : 2;
    int r = ::poll(fds, n, console_in && space == 0 ? 10 : -1);  // FIFO full: retry soon
    if (r < 0 && errno != EINTR) return Error::from_errno("poll");
    if (r <= 0) continue;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      if (::read(signal_fd.get(), &si, sizeof si) > 0) machine->request_stop(StopReason::kStopped);
    }
    if (n == 3 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t got = ::read(STDIN_FILENO, buf, space);
      if (got > 0) machine->serial().enqueue_input(std::span<const uint8_t>(buf, static_cast<size_t>(got)));
      else if (got == 0 || errno != EINTR) console_in = false;  // EOF: stop reading the console
    }
  }
  RunResult result = machine->finish();
  if (result.reason == StopReason::kError) return Error(EIO, result.detail);
  return result.reason;
}

}  // namespace vessel::vmm
