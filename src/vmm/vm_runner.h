// run_vm(): what `vessel vm run` does. Opens the kernel and initrd, builds
// the Machine, connects COM1 to stdio (raw tty), a file or nothing, and
// runs until the guest powers off or resets (or, with --on-reboot restart,
// boots it again on a reset), a fatal exit, or SIGTERM / SIGINT / SIGHUP to
// the VMM (which stops the VM cleanly).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/config/vm_config.h"
#include "vmm/vcpu.h"

namespace vessel::vmm {

struct VmRunOptions {
  std::string kernel;
  std::string initrd;  // empty: none
  std::string cmdline = "console=ttyS0 reboot=k panic=1";
  unsigned cpus = 1;
  uint64_t memory = 128ULL << 20;
  // --memory ...,mergeable=on: RAM that KSM may merge (VmConfig::mem_mergeable).
  bool mergeable = false;
  std::string serial = "stdio";  // stdio | none | file:PATH
  std::string kvm_device = "/dev/kvm";
  // virtio-mmio devices: --disk / --net specs (see device_options.h) and virtio-rng.
  std::vector<std::string> disks;
  std::vector<std::string> nets;
  bool rng = false;
  // --balloon / --vsock specs (see device_options.h); empty: no such device.
  std::string balloon;
  std::string vsock;
  // --on-reboot restart: a guest reboot builds the machine again (kernel,
  // initrd and devices from the same configuration) instead of ending the run.
  bool restart_on_reboot = false;
};

// The smallest guest memory accepted.
inline constexpr uint64_t kMinGuestMemory = 4ULL << 20;

// Checks options that need no file or device (memory, cpus, serial, device specs).
Status validate(const VmRunOptions& o);

// The VmConfig the flags describe (drives disk0.., interfaces net0..).
Result<VmConfig> to_vm_config(const VmRunOptions& o);

// Runs the VM in the foreground; returns why it stopped. A kError stop is
// returned as an Error carrying the vCPU registers. `serial`: stdio | none | file:PATH.
// With `restart_on_reboot` a reboot (kReset) starts a fresh machine of the same
// configuration on the same console, as a reset button would; only poweroff, a stop
// signal or an error end the run.
Result<StopReason> run_vm(const VmConfig& c, const std::string& serial, bool restart_on_reboot = false);
// to_vm_config() + run_vm().
Result<StopReason> run_vm(const VmRunOptions& o);

}  // namespace vessel::vmm
