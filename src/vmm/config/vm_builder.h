// Building a Machine from a VmConfig: opens the kernel, initrd, disk images
// and taps, adds the virtio devices (root drive first), loads the kernel.
// `vm run` (foreground and detached) and the API's InstanceStart both come
// here, so a VM is the same whichever way it was described.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/config/vm_config.h"
#include "vmm/devices/serial.h"
#include "vmm/machine.h"

namespace vessel::vmm {

namespace virtio {
class BlockDevice;
}

// A built machine and handles on its devices (by id, for PATCH and metrics).
struct BuiltVm {
  std::unique_ptr<Machine> machine;
  struct Device {
    std::string kind;  // "block" | "net" | "rng"
    std::string id;    // drive_id / iface_id / "entropy"
    virtio::MmioTransport* transport = nullptr;
  };
  std::vector<Device> devices;
};

// Builds (does not start) the VM of `c`; COM1 output goes to `serial_out`.
Result<BuiltVm> build_vm(const VmConfig& c, Serial::OutFn serial_out);

}  // namespace vessel::vmm
