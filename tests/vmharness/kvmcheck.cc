// vessel-kvmcheck: proves that /dev/kvm works by running a real guest instruction.
//
// Built static (it runs in the VM harness's busybox initramfs). Opens /dev/kvm, checks
// the API version, creates a VM with 64 KiB of memory and one vCPU in real mode, and
// runs three instructions: `mov al, 0x42; out 0xe9, al; hlt`. Passes when KVM_RUN
// reports the port write and then the halt.
//
// Usage: vessel-kvmcheck [--require-npt]
//   --require-npt  also fail unless kvm_amd or kvm_intel reports nested paging (npt/ept)
// Exit codes: 0 pass, 1 fail. Every step prints one line.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr uint64_t kGuestMemSize = 64 * 1024;
constexpr uint64_t kCodeAddr = 0x1000;
constexpr uint16_t kPort = 0xe9;
constexpr uint8_t kValue = 0x42;

[[noreturn]] void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("kvmcheck: FAIL: ", stdout);
  std::vfprintf(stdout, fmt, ap);
  va_end(ap);
  std::fputc('\n', stdout);
  std::exit(1);
}

void note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("kvmcheck: ", stdout);
  std::vfprintf(stdout, fmt, ap);
  va_end(ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// Reads the first line of a small sysfs file; empty when it cannot be read.
std::string read_line(const char* path) {
  FILE* f = std::fopen(path, "re");
  if (!f) return {};
  char buf[64] = {};
  if (!std::fgets(buf, sizeof buf, f)) buf[0] = '\0';
  std::fclose(f);
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Reports the nested-paging parameter of the loaded KVM vendor module; true if on.
bool report_paging() {
  struct Param { const char* path; const char* name; };
  const Param params[] = {{"/sys/module/kvm_amd/parameters/npt", "kvm_amd npt"},
                          {"/sys/module/kvm_intel/parameters/ept", "kvm_intel ept"}};
  bool on = false;
  for (const Param& p : params) {
    std::string v = read_line(p.path);
    if (v.empty()) continue;
    note("%s=%s", p.name, v.c_str());
    on = on || v == "Y" || v == "1";
  }
  std::string nested = read_line("/sys/module/kvm_amd/parameters/nested");
  if (!nested.empty()) note("kvm_amd nested=%s", nested.c_str());
  return on;
}

int checked_ioctl(int fd, unsigned long req, unsigned long arg, const char* what) {
  int r = ioctl(fd, req, arg);
  if (r < 0) fail("%s: %s", what, std::strerror(errno));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  bool require_npt = argc > 1 && std::strcmp(argv[1], "--require-npt") == 0;

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) fail("open /dev/kvm: %s", std::strerror(errno));
  int api = checked_ioctl(kvm, KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION");
  if (api != KVM_API_VERSION) fail("KVM API version %d, expected %d", api, KVM_API_VERSION);
  note("/dev/kvm open, API version %d", api);

  int vm = checked_ioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
  note("KVM_CREATE_VM ok (max vcpus %d)",
       ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));

  void* mem = mmap(nullptr, kGuestMemSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) fail("mmap guest memory: %s", std::strerror(errno));
  const uint8_t code[] = {0xb0, kValue,           // mov al, 0x42
                          0xe6, uint8_t(kPort),   // out 0xe9, al
                          0xf4};                  // hlt
  std::memcpy(static_cast<uint8_t*>(mem) + kCodeAddr, code, sizeof code);

  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = kGuestMemSize;
  region.userspace_addr = reinterpret_cast<uint64_t>(mem);
  checked_ioctl(vm, KVM_SET_USER_MEMORY_REGION, reinterpret_cast<unsigned long>(&region),
                "KVM_SET_USER_MEMORY_REGION");

  int vcpu = checked_ioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
  int run_size = checked_ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
  void* run_map = mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run_map == MAP_FAILED) fail("mmap kvm_run: %s", std::strerror(errno));
  auto* run = static_cast<kvm_run*>(run_map);

  kvm_sregs sregs{};
  checked_ioctl(vcpu, KVM_GET_SREGS, reinterpret_cast<unsigned long>(&sregs), "KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  checked_ioctl(vcpu, KVM_SET_SREGS, reinterpret_cast<unsigned long>(&sregs), "KVM_SET_SREGS");
  kvm_regs regs{};
  regs.rip = kCodeAddr;
  regs.rflags = 0x2;
  checked_ioctl(vcpu, KVM_SET_REGS, reinterpret_cast<unsigned long>(&regs), "KVM_SET_REGS");

  bool saw_io = false;
  for (int i = 0; i < 16; ++i) {
    checked_ioctl(vcpu, KVM_RUN, 0, "KVM_RUN");
    switch (run->exit_reason) {
      case KVM_EXIT_IO: {
        const auto* data = reinterpret_cast<const uint8_t*>(run) + run->io.data_offset;
        if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != kPort ||
            run->io.size != 1 || data[0] != kValue)
          fail("unexpected I/O exit: port 0x%x size %u value 0x%x", run->io.port,
               run->io.size, data[0]);
        note("guest wrote 0x%x to port 0x%x", data[0], run->io.port);
        saw_io = true;
        break;
      }
      case KVM_EXIT_HLT: {
        if (!saw_io) fail("guest halted before its port write");
        bool npt = report_paging();
        if (require_npt && !npt) fail("nested paging (npt/ept) is off");
        note("PASS: guest ran and halted");
        return 0;
      }
      case KVM_EXIT_FAIL_ENTRY:
        fail("KVM_EXIT_FAIL_ENTRY, hardware reason 0x%llx",
             static_cast<unsigned long long>(run->fail_entry.hardware_entry_failure_reason));
      case KVM_EXIT_INTERNAL_ERROR:
        fail("KVM_EXIT_INTERNAL_ERROR, suberror %u", run->internal.suberror);
      default:
        fail("unexpected exit reason %u", run->exit_reason);
    }
  }
  fail("guest did not halt");
}
