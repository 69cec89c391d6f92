#include "vmm/vcpu.h"

#include <signal.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "common/strings.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/hex.h"

namespace vessel::vmm {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kPoweroff: return "poweroff";
    case StopReason::kReset: return "reset";
    case StopReason::kHalt: return "halt";
    case StopReason::kStopped: return "stopped";
    case StopReason::kError: return "error";
  }
  return "?";
}

VcpuExitCounts& VcpuExitCounts::operator+=(const VcpuExitCounts& o) {
  exit_io_in += o.exit_io_in;
  exit_io_out += o.exit_io_out;
  exit_mmio_read += o.exit_mmio_read;
  exit_mmio_write += o.exit_mmio_write;
  exit_intr += o.exit_intr;
  return *this;
}

VcpuExitCounts Vcpu::exit_counts() const {
  return {io_in_.get(), io_out_.get(), mmio_read_.get(), mmio_write_.get(), intr_.get()};
}

int Vcpu::kick_signal() { return SIGRTMIN; }

void Vcpu::install_kick_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN returns EINTR
    sigaction(kick_signal(), &sa, nullptr);
  });
}

void Vcpu::kick() {
  fd_.run_area()->immediate_exit = 1;
  if (started_.load()) pthread_kill(thread_, kick_signal());
}

void Vcpu::fail(const char* what, uint64_t detail, bool shutdown) {
  std::string regs;
  auto r = fd_.get_regs();
  auto s = fd_.get_sregs();
  if (r && s) regs = x86::format_regs(*r, *s);
  // On AMD SVM KVM INITs a vCPU when it reports a shutdown (svm.c shutdown_interception).
  const char* note = shutdown && r && s && r->rip == 0xfff0 && s->cs.base == 0xffff0000
                         ? "; on AMD SVM KVM resets the vCPU on a shutdown: the registers below are its INIT "
                           "state, not the faulting one"
                         : "";
  host_.request_stop(StopReason::kError, cat("vCPU ", fd_.id(), ": ", what, note, " (", hex(detail), "): ", regs));
}

void Vcpu::run_loop() {
  thread_ = pthread_self();
  started_.store(true);
  // Unblock the kick signal in this thread whatever the creator blocked.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, kick_signal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  // Started parked (Machine::start_paused()): park before the first KVM_RUN,
  // so that the state may still be set after (a migration's receiver starts
  // the threads when it builds the machine, before the state comes).
  host_.park_if_paused(*this);
  while (!host_.stopping()) {
    int r = fd_.run();
    if (r == -EINTR || r == -EAGAIN) {
      intr_.add();
      // A kick (immediate_exit) also completes a pending I/O exit first, so a
      // parked vCPU's state is consistent (what a snapshot needs).
      host_.park_if_paused(*this);
      continue;
    }
    if (r < 0) {
      host_.request_stop(StopReason::kError, cat("vCPU ", fd_.id(), ": KVM_RUN: ", std::strerror(-r)));
      return;
    }
    if (!handle_exit()) return;
  }
}

bool Vcpu::handle_exit() {
  kvm_run* run = fd_.run_area();
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      (run->io.direction == KVM_EXIT_IO_OUT ? io_out_ : io_in_).add();
      auto* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
      for (uint32_t i = 0; i < run->io.count; ++i) {
        uint8_t* p = data + i * run->io.size;
        if (run->io.direction == KVM_EXIT_IO_OUT)
          pio_.write(run->io.port, std::span<const uint8_t>(p, run->io.size));
        else
          pio_.read(run->io.port, std::span<uint8_t>(p, run->io.size));
      }
      return true;
    }
    case KVM_EXIT_MMIO: {
      uint32_t len = run->mmio.len > 8 ? 8 : run->mmio.len;
      (run->mmio.is_write ? mmio_write_ : mmio_read_).add();
      if (run->mmio.is_write)
        mmio_.write(run->mmio.phys_addr, std::span<const uint8_t>(run->mmio.data, len));
      else
        mmio_.read(run->mmio.phys_addr, std::span<uint8_t>(run->mmio.data, len));
      return true;
    }
    case KVM_EXIT_INTR: intr_.add(); return true;
    case KVM_EXIT_DIRTY_RING_FULL: host_.dirty_ring_full(*this); return true;
    case KVM_EXIT_HLT: host_.request_stop(StopReason::kHalt); return false;
    case KVM_EXIT_SHUTDOWN:
      if (host_.restart_announced()) host_.request_stop(StopReason::kReset, "triple fault after a restart request");
      else fail("triple fault (KVM_EXIT_SHUTDOWN)", 0, /*shutdown=*/true);
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      fail("KVM_EXIT_FAIL_ENTRY, hardware entry failure reason", run->fail_entry.hardware_entry_failure_reason);
      return false;
    case KVM_EXIT_INTERNAL_ERROR: fail("KVM_EXIT_INTERNAL_ERROR, suberror", run->internal.suberror); return false;
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN: host_.request_stop(StopReason::kPoweroff); return false;
        case KVM_SYSTEM_EVENT_RESET: host_.request_stop(StopReason::kReset); return false;
        default: fail("KVM_EXIT_SYSTEM_EVENT", run->system_event.type); return false;
      }
    default: fail("unhandled KVM exit reason", run->exit_reason); return false;
  }
}

}  // namespace vessel::vmm
