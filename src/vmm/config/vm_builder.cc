#include "vmm/config/vm_builder.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/strings.h"
#include "vmm/device_options.h"
#include "vmm/disk/disk.h"
#include "vmm/virtio/balloon/balloon.h"
#include "vmm/virtio/block/block.h"
#include "vmm/virtio/net/net.h"
#include "vmm/virtio/rng/rng.h"
#include "vmm/virtio/vsock/vsock.h"

namespace vessel::vmm {

namespace {
Result<uint64_t> regular_file_size(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return Error::from_errno(cat("stat ", path));
  if (!S_ISREG(st.st_mode)) return Error::invalid(cat(path, " is not a regular file"));
  return static_cast<uint64_t>(st.st_size);
}

// The lower of two rates, 0 meaning unlimited.
uint64_t min_rate(uint64_t a, uint64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}
}  // namespace

Result<BuiltVm> build_vm(const VmConfig& c, Serial::OutFn serial_out) {
  TRY(validate_for_start(c));
  const auto& bs = *c.boot_source;
  UniqueFd kernel = TRYC(open_file(bs.kernel_image_path, O_RDONLY | O_CLOEXEC), "boot-source.kernel_image_path");
  x86::BootSources src;
  src.kernel_fd = kernel.get();
  src.kernel_size = TRYC(regular_file_size(kernel.get(), bs.kernel_image_path), "boot-source.kernel_image_path");
  UniqueFd initrd;
  if (!bs.initrd_path.empty()) {
    initrd = TRYC(open_file(bs.initrd_path, O_RDONLY | O_CLOEXEC), "boot-source.initrd_path");
    src.initrd_fd = initrd.get();
    src.initrd_size = TRYC(regular_file_size(initrd.get(), bs.initrd_path), "boot-source.initrd_path");
  }
  src.cmdline = c.effective_boot_args();

  MachineConfig mc;
  mc.kvm_device = c.kvm_device;
  mc.cpus = c.machine.vcpu_count;
  mc.memory = c.machine.mem_size_mib << 20;
  mc.track_dirty_pages = c.machine.track_dirty_pages;  // diff snapshots
  mc.mergeable = c.mem_mergeable;
  mc.dirty_ring_entries = c.dirty_ring_entries;
  mc.serial_out = std::move(serial_out);
  BuiltVm vm;
  vm.machine = TRYC(Machine::create(mc), "create the VM");
  for (const DriveConfig* d : c.drives_in_order()) {
    std::string what = cat("drives.", d->drive_id);
    virtio::BlockOptions o;
    o.readonly = d->is_read_only;
    o.serial = d->serial.empty() ? d->drive_id.substr(0, 20) : d->serial;
    if (d->rate_limiter) {
      o.bandwidth = d->rate_limiter->bytes_per_second();
      o.iops = d->rate_limiter->ops_per_second();
    }
    auto image = TRYC(disk::open_disk(d->path_on_host, o.readonly), cat(what, ".path_on_host"));
    auto dev = TRYC(virtio::BlockDevice::create(std::move(image), o), what);
    auto* t = TRY(vm.machine->add_virtio_device(std::move(dev), cat("virtio-blk ", d->drive_id)));
    vm.devices.push_back({"block", d->drive_id, t});
  }
  for (const auto& n : c.nets) {
    std::string what = cat("network-interfaces.", n.iface_id);
    virtio::NetOptions o;
    o.tap = n.host_dev_name;
    if (!n.guest_mac.empty()) {
      o.mac = TRYC(parse_mac(n.guest_mac), cat(what, ".guest_mac"));
      o.mac_set = true;
    }
    // vessel's virtio-net has one rate for both directions: the lower of rx and tx.
    auto bytes = [](const auto& l) { return l ? l->bytes_per_second() : 0; };
    auto ops = [](const auto& l) { return l ? l->ops_per_second() : 0; };
    o.bandwidth = min_rate(bytes(n.rx_rate_limiter), bytes(n.tx_rate_limiter));
    o.iops = min_rate(ops(n.rx_rate_limiter), ops(n.tx_rate_limiter));
    auto dev = TRYC(virtio::NetDevice::create(o), cat(what, ".host_dev_name ", n.host_dev_name));
    auto* t = TRY(vm.machine->add_virtio_device(std::move(dev), cat("virtio-net ", n.iface_id)));
    vm.devices.push_back({"net", n.iface_id, t});
  }
  if (c.entropy) {
    auto* t = TRY(vm.machine->add_virtio_device(std::make_unique<virtio::RngDevice>(), "virtio-rng"));
    vm.devices.push_back({"rng", "entropy", t});
  }
  if (c.balloon) {
    virtio::BalloonOptions o;
    o.target_pages = static_cast<uint32_t>((c.balloon->amount_mib << 20) / virtio::kBalloonPageSize);
    o.deflate_on_oom = c.balloon->deflate_on_oom;
    o.stats_interval_s = c.balloon->stats_polling_interval_s;
    o.free_page_reporting = c.balloon->free_page_reporting;
    auto dev = TRYC(virtio::BalloonDevice::create(o), "balloon");
    vm.balloon = dev.get();
    auto* t = TRY(vm.machine->add_virtio_device(std::move(dev), "virtio-balloon"));
    vm.devices.push_back({"balloon", "balloon", t});
  }
  if (c.vsock) {
    auto dev = TRYC(virtio::VsockDevice::create({c.vsock->guest_cid, c.vsock->uds_path}), "vsock");
    vm.vsock = dev.get();
    auto* t = TRY(vm.machine->add_virtio_device(std::move(dev), "virtio-vsock"));
    vm.devices.push_back({"vsock", "vsock", t});
  }
  TRYC(vm.machine->load_linux(src), "boot-source");
  return vm;
}

}  // namespace vessel::vmm
