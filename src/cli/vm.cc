// `vessel vm run`: boot a Linux kernel in a KVM virtual machine. Parsing only.
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "common/strings.h"
#include "vmm/vm_runner.h"

namespace vessel::cli {
namespace {

constexpr const char* kRunHelp =
    "Boot a Linux kernel (bzImage, or an ELF with a PVH entry note) in a KVM virtual machine.\n"
    "COM1 is the console (stdin/stdout, raw mode on a tty: Ctrl-C goes to the guest).\n"
    "Exit status: 0 when the guest powers off or SIGTERM/SIGINT/SIGHUP stops the VM;\n"
    "3 when the guest reboots (i8042 reset or ACPI reset register, also a kernel panic\n"
    "with panic=N): the VM is not restarted; 1 on errors and fatal guest exits (triple\n"
    "fault, KVM internal error, failed entry), which print the vCPU registers.";

// Exit status of `vm run` when the guest reboots.
constexpr int kExitReboot = 3;

struct VmRunFlags {
  vmm::VmRunOptions o;
  std::string memory = "128M";
};

void add_vm(CLI::App& app, Globals&) {
  auto* vm = app.add_subcommand("vm", "run virtual machines");
  vm->require_subcommand(1);
  auto flags = std::make_shared<VmRunFlags>();
  auto* run = vm->add_subcommand("run", kRunHelp);
  run->add_option("--kernel", flags->o.kernel, "kernel image: bzImage, or ELF vmlinux with a PVH note")->required();
  run->add_option("--initrd", flags->o.initrd, "initial ramdisk");
  run->add_option("--cmdline", flags->o.cmdline, "kernel command line")->capture_default_str();
  run->add_option("--cpus", flags->o.cpus, "number of vCPUs")->capture_default_str();
  run->add_option("--memory", flags->memory, "guest RAM, e.g. 512M or 2G")->capture_default_str();
  run->add_option("--serial", flags->o.serial, "COM1: stdio, none or file:PATH")->capture_default_str();
  run->add_option("--disk", flags->o.disks,
                  "virtio-blk disk (repeatable): PATH[,readonly][,serial=S][,bandwidth=BYTES_PER_SEC][,iops=N]; "
                  "raw or qcow2 (with a backing file)");
  run->add_option("--net", flags->o.nets,
                  "virtio-net on a host tap (repeatable): tap=NAME[,mac=M][,bandwidth=BYTES_PER_SEC][,iops=N]");
  run->add_flag("--rng", flags->o.rng, "add a virtio-rng device fed by the host's getrandom()");
  run->add_option("--balloon", flags->o.balloon,
                  "virtio-balloon: SIZE[,deflate_on_oom][,stats=SECONDS][,reporting]; SIZE is the memory the "
                  "balloon takes from the guest at start (e.g. 0); reporting: free pages the guest reports go back "
                  "to the host");
  run->add_option("--vsock", flags->o.vsock,
                  "virtio-vsock: cid=N,uds=PATH; the host connects to PATH and sends 'CONNECT <port>', guest "
                  "connections to the host's port P go to PATH_P (Firecracker's mapping)");
  run->add_option("--kvm-device", flags->o.kvm_device, "KVM device")->group("");  // hidden, for tests
  run->callback([flags] {
    auto size = parse_size(flags->memory);
    if (!size) {
      report(Error::invalid(cat("--memory: cannot parse '", flags->memory, "' as a size (e.g. 512M, 2G)")));
      return;
    }
    flags->o.memory = *size;
    auto r = vmm::run_vm(flags->o);
    if (!r) {
      report(std::move(r).error());
      return;
    }
    set_exit_code(*r == vmm::StopReason::kReset ? kExitReboot : 0);
  });
}

VerbRegistration reg(80, add_vm);

}  // namespace
}  // namespace vessel::cli
