#include "vmm/kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstdlib>
#include <memory>
#include <utility>

#include "common/strings.h"
#include "vmm/hex.h"

namespace vessel::vmm {

Result<Kvm> Kvm::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(cat("open ", path));
  Kvm k;
  k.fd_.reset(fd);
  int v = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  if (v < 0) return Error::from_errno(cat(path, " is not a KVM device: KVM_GET_API_VERSION"));
  if (v != KVM_API_VERSION) return Error::invalid(cat(path, ": KVM API version ", v, ", expected ", KVM_API_VERSION));
  return k;
}

int Kvm::check_extension(long cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

Result<size_t> Kvm::vcpu_mmap_size() const {
  int r = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (r < 0) return Error::from_errno("KVM_GET_VCPU_MMAP_SIZE");
  return static_cast<size_t>(r);
}

Result<std::vector<kvm_cpuid_entry2>> Kvm::supported_cpuid() const {
  constexpr unsigned kMax = 256;
  size_t bytes = sizeof(kvm_cpuid2) + kMax * sizeof(kvm_cpuid_entry2);
  std::unique_ptr<kvm_cpuid2, decltype(&std::free)> c(static_cast<kvm_cpuid2*>(std::calloc(1, bytes)), &std::free);
  if (!c) return Error(ENOMEM, "allocate CPUID buffer");
  c->nent = kMax;
  if (::ioctl(fd_.get(), KVM_GET_SUPPORTED_CPUID, c.get()) < 0) return Error::from_errno("KVM_GET_SUPPORTED_CPUID");
  return std::vector<kvm_cpuid_entry2>(c->entries, c->entries + c->nent);
}

Result<VmFd> VmFd::create(const Kvm& kvm) {
  int fd;
  do fd = ::ioctl(kvm.fd(), KVM_CREATE_VM, 0);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return Error::from_errno("KVM_CREATE_VM");
  VmFd v;
  v.fd_.reset(fd);
  return v;
}

Status VmFd::set_tss_addr(uint64_t addr) {
  if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) < 0)
    return Error::from_errno(cat("KVM_SET_TSS_ADDR ", hex(addr)));
  return ok();
}

Status VmFd::set_identity_map_addr(uint64_t addr) {
  uint64_t a = addr;
  if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &a) < 0)
    return Error::from_errno(cat("KVM_SET_IDENTITY_MAP_ADDR ", hex(addr)));
  return ok();
}

Status VmFd::create_irqchip() {
  if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) return Error::from_errno("KVM_CREATE_IRQCHIP");
  return ok();
}

Status VmFd::create_pit2() {
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &pit) < 0) return Error::from_errno("KVM_CREATE_PIT2");
  return ok();
}

Status VmFd::set_user_memory_region(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host) {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.guest_phys_addr = guest_addr;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &r) < 0)
    return Error::from_errno(cat("KVM_SET_USER_MEMORY_REGION slot ", slot, " at ", hex(guest_addr), " size ", hex(size)));
  return ok();
}

Status VmFd::irq_line(uint32_t irq, bool level) {
  kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  if (::ioctl(fd_.get(), KVM_IRQ_LINE, &l) < 0) return Error::from_errno(cat("KVM_IRQ_LINE ", irq));
  return ok();
}

Result<UniqueFd> VmFd::create_vcpu(unsigned id) {
  int fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) return Error::from_errno(cat("KVM_CREATE_VCPU ", id));
  return UniqueFd(fd);
}

Result<VcpuFd> VcpuFd::create(VmFd& vm, unsigned id, size_t mmap_size) {
  VcpuFd v;
  v.fd_ = TRY(vm.create_vcpu(id));
  v.id_ = id;
  void* p = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v.fd_.get(), 0);
  if (p == MAP_FAILED) return Error::from_errno(cat("map kvm_run of vCPU ", id));
  v.run_ = static_cast<kvm_run*>(p);
  v.mmap_size_ = mmap_size;
  return v;
}

VcpuFd::VcpuFd(VcpuFd&& o) noexcept
    : fd_(std::move(o.fd_)), id_(o.id_), run_(std::exchange(o.run_, nullptr)), mmap_size_(o.mmap_size_) {}

VcpuFd::~VcpuFd() {
  if (run_) ::munmap(run_, mmap_size_);
}

int VcpuFd::run() { return ::ioctl(fd_.get(), KVM_RUN, 0) < 0 ? -errno : 0; }

Result<kvm_regs> VcpuFd::get_regs() const {
  kvm_regs r{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &r) < 0) return Error::from_errno("KVM_GET_REGS");
  return r;
}

Status VcpuFd::set_regs(const kvm_regs& r) {
  if (::ioctl(fd_.get(), KVM_SET_REGS, &r) < 0) return Error::from_errno("KVM_SET_REGS");
  return ok();
}

Result<kvm_sregs> VcpuFd::get_sregs() const {
  kvm_sregs s{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &s) < 0) return Error::from_errno("KVM_GET_SREGS");
  return s;
}

Status VcpuFd::set_sregs(const kvm_sregs& s) {
  if (::ioctl(fd_.get(), KVM_SET_SREGS, &s) < 0) return Error::from_errno("KVM_SET_SREGS");
  return ok();
}

Status VcpuFd::set_fpu(const kvm_fpu& f) {
  if (::ioctl(fd_.get(), KVM_SET_FPU, &f) < 0) return Error::from_errno("KVM_SET_FPU");
  return ok();
}

Status VcpuFd::set_cpuid(std::span<const kvm_cpuid_entry2> entries) {
  size_t bytes = sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2);
  std::unique_ptr<kvm_cpuid2, decltype(&std::free)> c(static_cast<kvm_cpuid2*>(std::calloc(1, bytes)), &std::free);
  if (!c) return Error(ENOMEM, "allocate CPUID buffer");
  c->nent = static_cast<uint32_t>(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) c->entries[i] = entries[i];
  if (::ioctl(fd_.get(), KVM_SET_CPUID2, c.get()) < 0) return Error::from_errno("KVM_SET_CPUID2");
  return ok();
}

Status VcpuFd::set_msrs(std::span<const kvm_msr_entry> entries) {
  size_t bytes = sizeof(kvm_msrs) + entries.size() * sizeof(kvm_msr_entry);
  std::unique_ptr<kvm_msrs, decltype(&std::free)> m(static_cast<kvm_msrs*>(std::calloc(1, bytes)), &std::free);
  if (!m) return Error(ENOMEM, "allocate MSR buffer");
  m->nmsrs = static_cast<uint32_t>(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) m->entries[i] = entries[i];
  int r = ::ioctl(fd_.get(), KVM_SET_MSRS, m.get());
  if (r < 0) return Error::from_errno("KVM_SET_MSRS");
  if (static_cast<size_t>(r) != entries.size())
    return Error::invalid(cat("KVM_SET_MSRS: KVM refused MSR ", hex(entries[static_cast<size_t>(r)].index)));
  return ok();
}

Result<kvm_lapic_state> VcpuFd::get_lapic() const {
  kvm_lapic_state l{};
  if (::ioctl(fd_.get(), KVM_GET_LAPIC, &l) < 0) return Error::from_errno("KVM_GET_LAPIC");
  return l;
}

Status VcpuFd::set_lapic(const kvm_lapic_state& l) {
  if (::ioctl(fd_.get(), KVM_SET_LAPIC, &l) < 0) return Error::from_errno("KVM_SET_LAPIC");
  return ok();
}

}  // namespace vessel::vmm
