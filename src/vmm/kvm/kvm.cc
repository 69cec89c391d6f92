#include "vmm/kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/strings.h"
#include "vmm/hex.h"

namespace vessel::vmm {

namespace {
// <linux/kvm.h>'s flexible-array structs (kvm_cpuid2, kvm_msrs) have a
// different size in C++ with g++ 12 (__DECLARE_FLEX_ARRAY adds an empty
// struct), which changes the ioctl numbers and the entries' offset. We lay
// the buffers out by hand: an 8-byte header, then the entries.
struct FlexHeader {
  uint32_t count;
  uint32_t pad;
};
static_assert(sizeof(FlexHeader) == 8);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, FlexHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, FlexHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, FlexHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, FlexHeader);
constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, FlexHeader);
// kvm_xsave ends in a flexible array too (sizeof 4100 in C++): the ioctls by hand with the 4 KiB region.
struct XsaveRegion {
  uint32_t region[1024];
};
constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, XsaveRegion);
constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, XsaveRegion);
constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, XsaveRegion);
struct MsrListHeader {  // kvm_msr_list: a 4-byte count, then the indices
  uint32_t nmsrs;
};
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);

// A header + entries buffer for one of those ioctls.
template <class Entry>
struct FlexBuffer {
  explicit FlexBuffer(size_t n) : bytes(sizeof(FlexHeader) + n * sizeof(Entry), 0) {
    header()->count = static_cast<uint32_t>(n);
  }
  FlexHeader* header() { return reinterpret_cast<FlexHeader*>(bytes.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(bytes.data() + sizeof(FlexHeader)); }
  std::vector<uint8_t> bytes;
};
}  // namespace

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
  FlexBuffer<kvm_cpuid_entry2> c(256);
  if (::ioctl(fd_.get(), kGetSupportedCpuid, c.bytes.data()) < 0) return Error::from_errno("KVM_GET_SUPPORTED_CPUID");
  return std::vector<kvm_cpuid_entry2>(c.entries(), c.entries() + c.header()->count);
}

Result<std::vector<uint32_t>> Kvm::msr_index_list() const {
  // An 4-byte count then 32-bit indices; E2BIG tells the real count.
  for (uint32_t n = 256; n <= 16384; n *= 4) {
    std::vector<uint32_t> buf(n + 1, 0);
    buf[0] = n;
    if (::ioctl(fd_.get(), kGetMsrIndexList, buf.data()) == 0) return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + buf[0]);
    if (errno != E2BIG) return Error::from_errno("KVM_GET_MSR_INDEX_LIST");
  }
  return Error::invalid("KVM_GET_MSR_INDEX_LIST: more than 16384 MSRs");
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

int VmFd::check_extension(long cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
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

Status VmFd::set_user_memory_region(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host, uint32_t flags) {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = flags;
  r.guest_phys_addr = guest_addr;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &r) < 0)
    return Error::from_errno(cat("KVM_SET_USER_MEMORY_REGION slot ", slot, " at ", hex(guest_addr), " size ", hex(size),
                                 " flags ", hex(flags)));
  return ok();
}

Result<std::vector<uint64_t>> VmFd::get_dirty_log(uint32_t slot, uint64_t pages) {
  std::vector<uint64_t> bits((pages + 63) / 64, 0);
  kvm_dirty_log d{};
  d.slot = slot;
  d.dirty_bitmap = bits.data();
  if (::ioctl(fd_.get(), KVM_GET_DIRTY_LOG, &d) < 0) return Error::from_errno(cat("KVM_GET_DIRTY_LOG slot ", slot));
  return bits;
}

bool VmFd::enable_manual_dirty_protect() {
  const uint64_t want = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
  int have = check_extension(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
  if (have <= 0 || (static_cast<uint64_t>(have) & want) != want) return false;
  kvm_enable_cap c{};
  c.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
  c.args[0] = want;
  return ::ioctl(fd_.get(), KVM_ENABLE_CAP, &c) == 0;
}

Status VmFd::clear_dirty_log(uint32_t slot, uint64_t pages, std::vector<uint64_t>& bits) {
  kvm_clear_dirty_log d{};
  d.slot = slot;
  d.first_page = 0;
  d.num_pages = static_cast<uint32_t>(pages);
  d.dirty_bitmap = bits.data();
  if (::ioctl(fd_.get(), KVM_CLEAR_DIRTY_LOG, &d) < 0) return Error::from_errno(cat("KVM_CLEAR_DIRTY_LOG slot ", slot));
  return ok();
}

uint32_t VmFd::enable_dirty_ring(uint32_t entries, std::string* why) {
  // The acquire/release flavour where offered (Linux 6.1; on x86 the same ring).
  long cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
  int max_bytes = check_extension(cap);
  if (max_bytes <= 0) max_bytes = check_extension(cap = KVM_CAP_DIRTY_LOG_RING);
  if (max_bytes <= 0) {
    if (why) *why = "this KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)";
    return 0;
  }
  uint64_t bytes = uint64_t{entries} * sizeof(kvm_dirty_gfn);
  while (bytes > static_cast<uint64_t>(max_bytes)) bytes /= 2;
  if (bytes < 4096 || (bytes & (bytes - 1)) != 0) {
    if (why) *why = cat("dirty ring of ", entries, " entries: KVM allows at most ", max_bytes, " bytes");
    return 0;
  }
  kvm_enable_cap c{};
  c.cap = static_cast<uint32_t>(cap);
  c.args[0] = bytes;
  if (::ioctl(fd_.get(), KVM_ENABLE_CAP, &c) < 0) {
    if (why) *why = cat("KVM_ENABLE_CAP KVM_CAP_DIRTY_LOG_RING (", bytes, " bytes): ", std::strerror(errno));
    return 0;
  }
  return static_cast<uint32_t>(bytes / sizeof(kvm_dirty_gfn));
}

Status VmFd::reset_dirty_rings() {
  if (::ioctl(fd_.get(), KVM_RESET_DIRTY_RINGS, 0) < 0) return Error::from_errno("KVM_RESET_DIRTY_RINGS");
  return ok();
}

Result<kvm_irqchip> VmFd::get_irqchip(uint32_t chip_id) const {
  kvm_irqchip c{};
  c.chip_id = chip_id;
  if (::ioctl(fd_.get(), KVM_GET_IRQCHIP, &c) < 0) return Error::from_errno(cat("KVM_GET_IRQCHIP chip ", chip_id));
  return c;
}

Status VmFd::set_irqchip(const kvm_irqchip& chip) {
  if (::ioctl(fd_.get(), KVM_SET_IRQCHIP, &chip) < 0) return Error::from_errno(cat("KVM_SET_IRQCHIP chip ", chip.chip_id));
  return ok();
}

Result<kvm_pit_state2> VmFd::get_pit2() const {
  kvm_pit_state2 p{};
  if (::ioctl(fd_.get(), KVM_GET_PIT2, &p) < 0) return Error::from_errno("KVM_GET_PIT2");
  return p;
}

Status VmFd::set_pit2(const kvm_pit_state2& pit) {
  if (::ioctl(fd_.get(), KVM_SET_PIT2, &pit) < 0) return Error::from_errno("KVM_SET_PIT2");
  return ok();
}

Status VmFd::irq_line(uint32_t irq, bool level) {
  kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  if (::ioctl(fd_.get(), KVM_IRQ_LINE, &l) < 0) return Error::from_errno(cat("KVM_IRQ_LINE ", irq));
  return ok();
}

Result<kvm_clock_data> VmFd::get_clock() const {
  kvm_clock_data c{};
  if (::ioctl(fd_.get(), KVM_GET_CLOCK, &c) < 0) return Error::from_errno("KVM_GET_CLOCK");
  return c;
}

Status VmFd::set_clock(const kvm_clock_data& c) {
  kvm_clock_data in{};
  in.clock = c.clock;  // flags other than 0 ask KVM to use realtime/host_tsc: not wanted here
  if (::ioctl(fd_.get(), KVM_SET_CLOCK, &in) < 0) return Error::from_errno("KVM_SET_CLOCK");
  return ok();
}

Result<UniqueFd> VmFd::create_vcpu(unsigned id) {
  int fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) return Error::from_errno(cat("KVM_CREATE_VCPU ", id));
  return UniqueFd(fd);
}

Status VmFd::register_ioeventfd(int fd, uint64_t addr, uint32_t len, uint64_t datamatch) {
  kvm_ioeventfd io{};
  io.datamatch = datamatch;
  io.addr = addr;
  io.len = len;
  io.fd = fd;
  io.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &io) < 0) return Error::from_errno(cat("KVM_IOEVENTFD at ", hex(addr)));
  return ok();
}

Status VmFd::register_irqfd(int fd, uint32_t gsi) {
  kvm_irqfd irq{};
  irq.fd = static_cast<uint32_t>(fd);
  irq.gsi = gsi;
  if (::ioctl(fd_.get(), KVM_IRQFD, &irq) < 0) return Error::from_errno(cat("KVM_IRQFD GSI ", gsi));
  return ok();
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

Result<DirtyRing> DirtyRing::map(int vcpu_fd, unsigned vcpu_id, uint32_t entries) {
  if (entries == 0 || (entries & (entries - 1)) != 0)
    return Error::invalid(cat("dirty ring of ", entries, " entries: not a power of two"));
  DirtyRing r;
  size_t len = size_t{entries} * sizeof(kvm_dirty_gfn);
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd,
                   static_cast<off_t>(KVM_DIRTY_LOG_PAGE_OFFSET) * 4096);
  if (p == MAP_FAILED) return Error::from_errno(cat("map the dirty ring of vCPU ", vcpu_id));
  r.gfns_ = static_cast<kvm_dirty_gfn*>(p);
  r.entries_ = entries;
  return r;
}

DirtyRing::DirtyRing(DirtyRing&& o) noexcept
    : gfns_(std::exchange(o.gfns_, nullptr)), entries_(o.entries_), fetch_(o.fetch_) {}

DirtyRing::~DirtyRing() {
  if (gfns_) ::munmap(gfns_, size_t{entries_} * sizeof(kvm_dirty_gfn));
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

Result<kvm_fpu> VcpuFd::get_fpu() const {
  kvm_fpu f{};
  if (::ioctl(fd_.get(), KVM_GET_FPU, &f) < 0) return Error::from_errno("KVM_GET_FPU");
  return f;
}

Status VcpuFd::set_fpu(const kvm_fpu& f) {
  if (::ioctl(fd_.get(), KVM_SET_FPU, &f) < 0) return Error::from_errno("KVM_SET_FPU");
  return ok();
}

Status VcpuFd::set_cpuid(std::span<const kvm_cpuid_entry2> entries) {
  FlexBuffer<kvm_cpuid_entry2> c(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) c.entries()[i] = entries[i];
  if (::ioctl(fd_.get(), kSetCpuid2, c.bytes.data()) < 0) return Error::from_errno("KVM_SET_CPUID2");
  return ok();
}

Status VcpuFd::set_msrs(std::span<const kvm_msr_entry> entries) {
  FlexBuffer<kvm_msr_entry> m(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) m.entries()[i] = entries[i];
  int r = ::ioctl(fd_.get(), kSetMsrs, m.bytes.data());
  if (r < 0) return Error::from_errno("KVM_SET_MSRS");
  if (static_cast<size_t>(r) != entries.size())
    return Error::invalid(cat("KVM_SET_MSRS: KVM refused MSR ", hex(entries[static_cast<size_t>(r)].index), " = ",
                              hex(entries[static_cast<size_t>(r)].data)));
  return ok();
}

Result<std::vector<kvm_cpuid_entry2>> VcpuFd::get_cpuid() const {
  FlexBuffer<kvm_cpuid_entry2> c(256);
  if (::ioctl(fd_.get(), kGetCpuid2, c.bytes.data()) < 0) return Error::from_errno("KVM_GET_CPUID2");
  uint32_t n = std::min<uint32_t>(c.header()->count, 256);
  return std::vector<kvm_cpuid_entry2>(c.entries(), c.entries() + n);
}

Result<size_t> VcpuFd::get_msrs(std::span<kvm_msr_entry> entries) const {
  FlexBuffer<kvm_msr_entry> m(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) m.entries()[i] = entries[i];
  int r = ::ioctl(fd_.get(), kGetMsrs, m.bytes.data());
  if (r < 0) return Error::from_errno("KVM_GET_MSRS");
  size_t n = std::min(static_cast<size_t>(r), entries.size());
  for (size_t i = 0; i < n; ++i) entries[i].data = m.entries()[i].data;
  return n;
}

Result<std::vector<uint8_t>> VcpuFd::get_xsave(size_t size) const {
  size = std::max<size_t>(size, sizeof(XsaveRegion));
  std::vector<uint8_t> area(size, 0);
  bool big = size > sizeof(XsaveRegion);
  if (::ioctl(fd_.get(), big ? kGetXsave2 : kGetXsave, area.data()) < 0)
    return Error::from_errno(big ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE");
  return area;
}

Status VcpuFd::set_xsave(std::span<const uint8_t> area) {
  if (area.size() < sizeof(XsaveRegion)) return Error::invalid(cat("KVM_SET_XSAVE: area of ", area.size(), " bytes"));
  // KVM reads as many bytes as its own XSAVE size: hand it a copy it may read fully.
  std::vector<uint8_t> copy(area.begin(), area.end());
  if (::ioctl(fd_.get(), kSetXsave, copy.data()) < 0) return Error::from_errno("KVM_SET_XSAVE");
  return ok();
}

Result<kvm_xcrs> VcpuFd::get_xcrs() const {
  kvm_xcrs x{};
  if (::ioctl(fd_.get(), KVM_GET_XCRS, &x) < 0) return Error::from_errno("KVM_GET_XCRS");
  return x;
}

Status VcpuFd::set_xcrs(const kvm_xcrs& x) {
  if (::ioctl(fd_.get(), KVM_SET_XCRS, &x) < 0) return Error::from_errno("KVM_SET_XCRS");
  return ok();
}

Result<kvm_mp_state> VcpuFd::get_mp_state() const {
  kvm_mp_state m{};
  if (::ioctl(fd_.get(), KVM_GET_MP_STATE, &m) < 0) return Error::from_errno("KVM_GET_MP_STATE");
  return m;
}

Status VcpuFd::set_mp_state(const kvm_mp_state& m) {
  if (::ioctl(fd_.get(), KVM_SET_MP_STATE, &m) < 0) return Error::from_errno("KVM_SET_MP_STATE");
  return ok();
}

Result<kvm_vcpu_events> VcpuFd::get_vcpu_events() const {
  kvm_vcpu_events e{};
  if (::ioctl(fd_.get(), KVM_GET_VCPU_EVENTS, &e) < 0) return Error::from_errno("KVM_GET_VCPU_EVENTS");
  return e;
}

Status VcpuFd::set_vcpu_events(const kvm_vcpu_events& e) {
  if (::ioctl(fd_.get(), KVM_SET_VCPU_EVENTS, &e) < 0) return Error::from_errno("KVM_SET_VCPU_EVENTS");
  return ok();
}

Result<kvm_debugregs> VcpuFd::get_debugregs() const {
  kvm_debugregs d{};
  if (::ioctl(fd_.get(), KVM_GET_DEBUGREGS, &d) < 0) return Error::from_errno("KVM_GET_DEBUGREGS");
  return d;
}

Status VcpuFd::set_debugregs(const kvm_debugregs& d) {
  if (::ioctl(fd_.get(), KVM_SET_DEBUGREGS, &d) < 0) return Error::from_errno("KVM_SET_DEBUGREGS");
  return ok();
}

Result<uint32_t> VcpuFd::get_tsc_khz() const {
  int r = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
  if (r < 0) return Error::from_errno("KVM_GET_TSC_KHZ");
  return static_cast<uint32_t>(r);
}

Result<std::optional<uint64_t>> VcpuFd::get_tsc_offset() const {
  uint64_t offset = 0;
  kvm_device_attr a{};
  a.group = KVM_VCPU_TSC_CTRL;
  a.attr = KVM_VCPU_TSC_OFFSET;
  a.addr = reinterpret_cast<uint64_t>(&offset);
  if (::ioctl(fd_.get(), KVM_HAS_DEVICE_ATTR, &a) < 0) return std::optional<uint64_t>{};
  if (::ioctl(fd_.get(), KVM_GET_DEVICE_ATTR, &a) < 0) return Error::from_errno("KVM_GET_DEVICE_ATTR (TSC offset)");
  return std::optional<uint64_t>(offset);
}

Status VcpuFd::set_tsc_offset(uint64_t offset) {
  kvm_device_attr a{};
  a.group = KVM_VCPU_TSC_CTRL;
  a.attr = KVM_VCPU_TSC_OFFSET;
  a.addr = reinterpret_cast<uint64_t>(&offset);
  if (::ioctl(fd_.get(), KVM_SET_DEVICE_ATTR, &a) < 0) return Error::from_errno("KVM_SET_DEVICE_ATTR (TSC offset)");
  return ok();
}

Status VcpuFd::set_tsc_khz(uint32_t khz) {
  if (::ioctl(fd_.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) < 0)
    return Error::from_errno(cat("KVM_SET_TSC_KHZ ", khz));
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
