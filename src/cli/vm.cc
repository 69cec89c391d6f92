// `vessel vm run` (foreground or -d) and the `vm` subcommand. Parsing only.
#include <sys/random.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli.h"
#include "cli/vm.h"
#include "common/strings.h"
#include "vmm/instance/launch.h"
#include "vmm/instance/state_dir.h"
#include "vmm/vm_runner.h"

namespace vessel::cli {
namespace {

constexpr const char* kRunHelp =
    "Boot a Linux kernel (bzImage, or an ELF with a PVH entry note) in a KVM virtual machine.\n"
    "In the foreground COM1 is the console (stdin/stdout, raw mode on a tty: Ctrl-C goes to the guest).\n"
    "Exit status: 0 when the guest powers off or SIGTERM/SIGINT/SIGHUP stops the VM;\n"
    "3 when the guest reboots (any of Linux's reboot=k|a|t|pci methods or its default, also\n"
    "a kernel panic with panic=N), unless --on-reboot restart boots it again; 1 on errors\n"
    "and fatal guest exits (a triple fault the guest did not announce with ACPI _TTS, KVM\n"
    "internal error, failed entry), which print the vCPU registers.\n"
    "With -d the VM runs in its own VMM process with an API socket (Firecracker's API)\n"
    "and state under <root>/vm/<id>/; manage it with the other vm verbs.";

constexpr const char* kCreateHelp =
    "Start a VMM process that waits for its configuration on its API socket, like\n"
    "`firecracker --api-sock PATH` (or is configured by the same flags as vm run or by\n"
    "a --config-file); `vm start ID` or PUT /actions InstanceStart boots it.";

// Exit status of `vm run` when the guest reboots.
constexpr int kExitReboot = 3;

// The flags `vm run` and `vm create` share.
struct VmFlags {
  vmm::VmRunOptions o;
  std::string memory = "128M";
  std::string serial;  // default: stdio in the foreground, log when detached
  std::string config_file;
  std::string name;
  std::string api_sock;
  std::string on_reboot = "exit";
  bool detach = false;
};

void add_vm_flags(CLI::App* cmd, VmFlags& f, bool is_run) {
  cmd->add_option("--kernel", f.o.kernel, "kernel image: bzImage, or ELF vmlinux with a PVH note");
  cmd->add_option("--initrd", f.o.initrd, "initial ramdisk");
  cmd->add_option("--cmdline", f.o.cmdline, "kernel command line")->capture_default_str();
  cmd->add_option("--cpus", f.o.cpus, "number of vCPUs")->capture_default_str();
  cmd->add_option("--memory", f.memory,
                  "guest RAM: SIZE[,mergeable=on|off], e.g. 512M or 2G; mergeable=on lets the host's KSM share "
                  "identical pages between guests (off by default: page sharing is a timing side channel)")
      ->capture_default_str();
  cmd->add_option("--serial", f.serial,
                  is_run ? "COM1: stdio (foreground default), none, file:PATH, or log (-d default: <state>/serial.log)"
                         : "COM1: log (default: <state>/serial.log, read with vm console), none or file:PATH");
  cmd->add_option("--disk", f.o.disks,
                  "virtio-blk disk (repeatable): PATH[,readonly][,serial=S][,bandwidth=BYTES_PER_SEC][,iops=N]; "
                  "raw or qcow2 (with a backing file)");
  cmd->add_option("--net", f.o.nets,
                  "virtio-net on a host tap (repeatable): tap=NAME[,mac=M][,bandwidth=BYTES_PER_SEC][,iops=N]");
  cmd->add_flag("--rng", f.o.rng, "add a virtio-rng device fed by the host's getrandom()");
  cmd->add_option("--balloon", f.o.balloon,
                  "virtio-balloon: SIZE[,deflate_on_oom][,stats=SECONDS][,reporting]; SIZE (whole MiB) is the memory "
                  "the balloon takes from the guest at start (e.g. 0); reporting: free pages the guest reports go "
                  "back to the host");
  cmd->add_option("--vsock", f.o.vsock,
                  "virtio-vsock: cid=N,uds=PATH; the host connects to PATH and sends 'CONNECT <port>', guest "
                  "connections to the host's port P go to PATH_P (Firecracker's mapping)");
  cmd->add_option("--config-file", f.config_file,
                  "the VM as JSON in Firecracker's config-file format (boot-source, machine-config, drives, "
                  "network-interfaces, entropy, logger, metrics; vessel keys under \"vessel\")");
  cmd->add_option("--name", f.name, "VM id (default: a generated vm-XXXXXXXX, printed)");
  cmd->add_option("--api-sock", f.api_sock, "API socket path (default <root>/vm/<id>/api.sock)");
  cmd->add_option("--kvm-device", f.o.kvm_device, "KVM device")->group("");  // hidden, for tests
  if (is_run) {
    cmd->add_flag("-d,--detach", f.detach, "run the VM in a detached VMM process");
    cmd->add_option("--on-reboot", f.on_reboot,
                    "what a guest reboot does: exit (status 3, like QEMU's -no-reboot) or restart (boot the same "
                    "kernel, initrd and disks again on the same console; foreground only)")
        ->capture_default_str();
  }
}

// --memory SIZE[,mergeable=on|off] into o.memory and o.mergeable.
Status parse_memory_flag(const std::string& flag, vmm::VmRunOptions& o) {
  auto parts = split(flag, ',');
  auto size = parts.empty() ? std::nullopt : parse_size(parts[0]);
  if (!size) return Error::invalid(cat("--memory: cannot parse '", flag, "' as a size (e.g. 512M, 2G)"));
  o.memory = *size;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i] == "mergeable=on" || parts[i] == "mergeable") {
      o.mergeable = true;
    } else if (parts[i] == "mergeable=off") {
      o.mergeable = false;
    } else {
      return Error::invalid(cat("--memory: unknown option '", parts[i], "' (mergeable=on|off)"));
    }
  }
  return ok();
}

// The VmConfig of the flags or of --config-file; nullopt when nothing was configured (vm create).
Result<std::optional<vmm::VmConfig>> config_of(const VmFlags& f, CLI::App* cmd) {
  if (!f.config_file.empty()) {
    for (const char* flag : {"--kernel", "--initrd", "--cmdline", "--cpus", "--memory", "--disk", "--net", "--rng"})
      if (cmd->count(flag)) return Error::invalid(cat(flag, " cannot be combined with --config-file"));
    std::string text = TRYC(vmm::read_bounded(f.config_file, vmm::kMaxConfigBytes), cat("--config-file ", f.config_file));
    vmm::VmConfig c = TRYC(vmm::parse_vm_config_text(text), cat("--config-file ", f.config_file));
    if (cmd->count("--kvm-device")) c.kvm_device = f.o.kvm_device;
    return std::optional<vmm::VmConfig>(std::move(c));
  }
  if (f.o.kernel.empty()) {
    for (const char* flag : {"--initrd", "--cmdline", "--disk", "--net", "--rng"})
      if (cmd->count(flag)) return Error::invalid(cat(flag, " needs --kernel (or --config-file)"));
  }
  vmm::VmRunOptions o = f.o;
  TRY(parse_memory_flag(f.memory, o));
  TRY(vmm::validate(o));
  if (o.kernel.empty()) {
    // Machine flags without a kernel still describe the machine.
    vmm::VmConfig c;
    c.machine.vcpu_count = o.cpus;
    c.machine.mem_size_mib = o.memory >> 20;
    c.kvm_device = o.kvm_device;
    c.mem_mergeable = o.mergeable;
    if (cmd->count("--cpus") || cmd->count("--memory") || cmd->count("--kvm-device"))
      return std::optional<vmm::VmConfig>(c);
    return std::optional<vmm::VmConfig>();
  }
  return std::optional<vmm::VmConfig>(TRY(vmm::to_vm_config(o)));
}

// vm run -d / vm create: a detached VMM.
Status launch(const VmFlags& f, CLI::App* cmd, Globals& g, bool start) {
  auto config = TRY(config_of(f, cmd));
  if (start && !config) return Error::invalid("--kernel or --config-file is required");
  vmm::VmmOptions o;
  bool generated = f.name.empty();
  o.id = generated ? generated_vm_id() : f.name;
  o.root = g.root;
  o.api_sock = f.api_sock;
  o.serial = f.serial.empty() ? "log" : f.serial;
  if (config) o.config = std::move(*config);
  o.start = start;
  o.version = VESSEL_VERSION;
  std::string id = o.id;
  TRY(vmm::launch_detached(std::move(o)).context(cat(start ? "run " : "create ", id)));
  if (generated) std::printf("%s\n", id.c_str());
  return ok();
}

void add_vm(CLI::App& app, Globals& g) {
  auto* vm = app.add_subcommand("vm", "run and manage virtual machines");
  vm->require_subcommand(1);

  auto rf = std::make_shared<VmFlags>();
  auto* run = vm->add_subcommand("run", kRunHelp);
  add_vm_flags(run, *rf, true);
  run->callback([rf, run, &g] {
    if (rf->on_reboot != "exit" && rf->on_reboot != "restart")
      return report(Error::invalid(cat("--on-reboot must be exit or restart, not '", rf->on_reboot, "'")));
    if (rf->detach) {
      if (rf->on_reboot == "restart") return report(Error::invalid("--on-reboot restart needs a foreground VM (no -d)"));
      return finish(launch(*rf, run, g, true));
    }
    for (const char* flag : {"--name", "--api-sock"})
      if (run->count(flag)) return report(Error::invalid(cat(flag, " needs -d (a detached VM)")));
    auto config = config_of(*rf, run);
    if (!config) return report(std::move(config).error());
    if (!*config) return report(Error::invalid("--kernel or --config-file is required"));
    auto r = vmm::run_vm(**config, rf->serial.empty() ? "stdio" : rf->serial, rf->on_reboot == "restart");
    if (!r) return report(std::move(r).error());
    set_exit_code(*r == vmm::StopReason::kReset ? kExitReboot : 0);
  });

  auto cf = std::make_shared<VmFlags>();
  auto* create = vm->add_subcommand("create", kCreateHelp);
  add_vm_flags(create, *cf, false);
  create->callback([cf, create, &g] { finish(launch(*cf, create, g, false)); });

  add_vm_lifecycle(*vm, g);
  add_vm_console(*vm, g);
  add_vm_balloon(*vm, g);
  add_vm_snapshot(*vm, g);
  add_vm_migrate(*vm, g);
}

VerbRegistration reg_vm(80, add_vm);

}  // namespace

std::string generated_vm_id() {
  uint32_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != sizeof r) r = static_cast<uint32_t>(::getpid());
  char buf[16];
  std::snprintf(buf, sizeof buf, "vm-%08x", r);
  return buf;
}

}  // namespace vessel::cli
