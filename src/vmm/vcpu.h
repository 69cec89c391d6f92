// Vcpu: one vCPU thread's run loop. KVM exits are dispatched to the port
// I/O and MMIO buses straight from the kvm_run area (no allocation per
// exit); exits that end the VM are reported to a VcpuHost with, for fatal
// ones, the registers.
#pragma once

#include <pthread.h>

#include <atomic>
#include <string>

#include "vmm/counter.h"
#include "vmm/devices/bus.h"
#include "vmm/kvm/kvm.h"

namespace vessel::vmm {

// Why a VM stopped.
enum class StopReason {
  kPoweroff,  // ACPI S5 or KVM system event shutdown
  kReset,     // i8042 reset / ACPI reset register / 0xCF9 / KVM system event reset /
              // a triple fault after the guest announced a restart
  kHalt,      // HLT with no in-kernel irqchip (tiny test guests)
  kStopped,   // request_stop() from the VMM: SIGTERM, tests
  kError,     // triple fault, internal error, failed entry, KVM_RUN error
};

const char* stop_reason_name(StopReason r);

// What the vCPU loop reports to (the machine).
class VcpuHost {
 public:
  virtual ~VcpuHost() = default;
  virtual void request_stop(StopReason reason, std::string detail = {}) = 0;
  virtual bool stopping() const = 0;
  // True when the guest said it is about to restart or shut down (ACPI
  // \_TTS(5)): a triple fault then is its way to reset, not a crash.
  virtual bool restart_announced() const { return false; }
  // Called by a vCPU thread that left KVM_RUN on a kick: parks it while the
  // machine is paused (returns at once otherwise) and clears the vCPU's
  // immediate_exit unless another pause is already pending.
  virtual void park_if_paused(class Vcpu& vcpu) = 0;
  // Called by a vCPU thread whose dirty ring is full (KVM_EXIT_DIRTY_RING_FULL):
  // the host harvests the rings before the vCPU enters the guest again.
  virtual void dirty_ring_full(class Vcpu& vcpu) = 0;
};

// vCPU exits by reason (Firecracker's VcpuMetrics names where it has them).
struct VcpuExitCounts {
  uint64_t exit_io_in = 0, exit_io_out = 0, exit_mmio_read = 0, exit_mmio_write = 0;
  uint64_t exit_intr = 0;  // KVM_RUN interrupted: kicks (pause, stop) and host signals
  VcpuExitCounts& operator+=(const VcpuExitCounts& o);
};

class Vcpu {
 public:
  Vcpu(VcpuFd fd, const Bus& pio, const Bus& mmio, VcpuHost& host)
      : fd_(std::move(fd)), pio_(pio), mmio_(mmio), host_(host) {}

  VcpuFd& fd() { return fd_; }
  unsigned id() const { return fd_.id(); }

  // Thread body: runs until the VM stops.
  void run_loop();
  // Makes KVM_RUN return at once (immediate_exit + a signal to the thread).
  void kick();

  // Its exits so far (read from any thread).
  VcpuExitCounts exit_counts() const;

  // The signal used to kick vCPU threads; its handler does nothing.
  static int kick_signal();
  static void install_kick_handler();

 private:
  // Handles one exit; false when the loop must end.
  bool handle_exit();
  // Stops the machine with an error naming `what` and the registers; `shutdown`:
  // a triple fault (whose registers AMD's KVM has already reset).
  void fail(const char* what, uint64_t detail, bool shutdown = false);

  VcpuFd fd_;
  const Bus& pio_;
  const Bus& mmio_;
  VcpuHost& host_;
  std::atomic<bool> started_{false};
  Counter io_in_, io_out_, mmio_read_, mmio_write_, intr_;
  pthread_t thread_{};
};

}  // namespace vessel::vmm
