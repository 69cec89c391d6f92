#include "vmm/machine.h"

#include <poll.h>
#include <sys/random.h>
#include <sys/eventfd.h>

#include "common/strings.h"
#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/msr.h"

namespace vessel::vmm {

Result<std::unique_ptr<Machine>> Machine::create(const MachineConfig& cfg) {
  if (cfg.cpus == 0 || cfg.cpus > kMaxCpus) return Error::invalid(cat("vCPU count must be 1 to ", kMaxCpus, ", not ", cfg.cpus));
  GuestMemory mem = TRYC(GuestMemory::create(cfg.memory, x86::kMmioHoleStart, x86::kMmioHoleEnd, cfg.mergeable), "guest memory");
  std::unique_ptr<Machine> m(new Machine(std::move(mem)));
  TRY(m->init(cfg));
  return m;
}

Result<std::unique_ptr<Machine>> Machine::create_restored(const MachineConfig& cfg, GuestMemory mem) {
  if (cfg.cpus == 0 || cfg.cpus > kMaxCpus) return Error::invalid(cat("vCPU count must be 1 to ", kMaxCpus, ", not ", cfg.cpus));
  if (mem.size() != cfg.memory) return Error::invalid(cat("guest memory is ", mem.size(), " bytes, the machine has ", cfg.memory));
  std::unique_ptr<Machine> m(new Machine(std::move(mem)));
  TRY(m->init(cfg, /*restoring=*/true));
  return m;
}

// KVM's 8259 pair starts as no firmware would leave it: every input unmasked
// and vectors based at 0, and the boot CPU's LINT0 takes its output
// (ExtINT). A guest that never programs the 8259 (Linux on hardware-reduced
// ACPI uses the IOAPIC only) would take the legacy line of a device (COM1's
// IRQ 4, the i8042's IRQ 1) a second time through the 8259, as exception
// vector 4 or 1. As a BIOS does: vectors 0x08 and 0x70, everything masked
// but the cascade. A guest that programs the 8259 (ICW1) resets all of it.
Status Machine::mask_legacy_pic() {
  for (auto [chip, base, imr] : {std::tuple{KVM_IRQCHIP_PIC_MASTER, 0x08, 0xfb}, std::tuple{KVM_IRQCHIP_PIC_SLAVE, 0x70, 0xff}}) {
    kvm_irqchip c = TRYC(vm_.get_irqchip(static_cast<uint32_t>(chip)), "read the 8259's reset state");
    c.chip.pic.irq_base = static_cast<uint8_t>(base);
    c.chip.pic.imr = static_cast<uint8_t>(imr);
    TRYC(vm_.set_irqchip(c), "mask the 8259's inputs");
  }
  return ok();
}

Status Machine::init(const MachineConfig& cfg, bool restoring) {
  cpus_ = cfg.cpus;
  irqchip_ = cfg.irqchip;
  track_dirty_ = cfg.track_dirty_pages;
  track_dirty_configured_ = cfg.track_dirty_pages;
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return Error::from_errno("eventfd");
  stop_fd_.reset(efd);

  kvm_ = TRY(Kvm::open(cfg.kvm_device));
  vm_ = TRY(VmFd::create(kvm_));
  // The host's KVM may allow fewer vCPUs (or vCPU ids) than kMaxCpus.
  for (long cap : {KVM_CAP_MAX_VCPUS, KVM_CAP_MAX_VCPU_ID}) {
    int max = vm_.check_extension(cap);
    if (max > 0 && cfg.cpus > static_cast<unsigned>(max))
      return Error::invalid(cat("vCPU count ", cfg.cpus, ": this host's KVM allows at most ", max, " vCPUs per VM"));
  }
  TRY(vm_.set_identity_map_addr(x86::kIdentityMapAddr));
  TRY(vm_.set_tss_addr(x86::kTssAddr));
  if (irqchip_) {
    TRY(vm_.create_irqchip());
    TRY(vm_.create_pit2());
    if (!restoring) TRY(mask_legacy_pic());
  }
  // The ring, before any vCPU exists (KVM refuses it after).
  if (cfg.dirty_ring_entries) ring_entries_ = vm_.enable_dirty_ring(cfg.dirty_ring_entries, &ring_note_);
  uint32_t slot = 0;
  uint32_t slot_flags = track_dirty_ ? KVM_MEM_LOG_DIRTY_PAGES : 0;
  for (const auto& r : mem_.regions()) TRY(vm_.set_user_memory_region(slot++, r.guest_addr, r.size, r.host, slot_flags));
  if (track_dirty_) mem_.enable_dirty_tracking();

  // Platform devices on the port I/O bus.
  VmFd* vm = &vm_;
  bool irqchip = irqchip_;
  serial_ = std::make_unique<Serial>(
      [vm, irqchip](bool level) {
        if (irqchip) (void)vm->irq_line(x86::kCom1Irq, level);
      },
      cfg.serial_out);
  rtc_ = std::make_unique<Rtc>();
  i8042_ = std::make_unique<I8042>([this] { request_stop(StopReason::kReset); },
                                   [vm, irqchip] {  // edge on IRQ 1
                                     if (!irqchip) return;
                                     (void)vm->irq_line(x86::kKeyboardIrq, true);
                                     (void)vm->irq_line(x86::kKeyboardIrq, false);
                                   });
  acpi_pm_ = std::make_unique<AcpiPm>([this] { request_stop(StopReason::kPoweroff); });
  TRY(pio_.insert(serial_.get(), x86::kCom1Port, 8, "COM1"));
  TRY(pio_.insert(rtc_.get(), x86::kRtcPort, 2, "RTC"));
  TRY(pio_.insert(i8042_.get(), x86::kI8042Port, 5, "i8042"));
  reset_control_ = std::make_unique<ResetControl>([this] { request_stop(StopReason::kReset); });
  TRY(pio_.insert(acpi_pm_.get(), x86::kAcpiSleepPort, AcpiPm::kRegisterCount, "ACPI sleep registers"));
  TRY(pio_.insert(reset_control_.get(), x86::kResetControlPort, 1, "reset control register"));

  size_t mmap_size = TRY(kvm_.vcpu_mmap_size());
  if (restoring) {  // the snapshot sets CPUID, MSRs, FPU, LAPIC and the rest
    for (unsigned i = 0; i < cpus_; ++i)
      vcpus_.push_back(std::make_unique<Vcpu>(TRY(create_vcpu(i, mmap_size)), pio_, mmio_, *this));
    return ok();
  }
  auto supported = TRY(kvm_.supported_cpuid());
  auto msrs = x86::boot_msrs();
  x86::CpuidExtras extras;
  extras.tsc_deadline = irqchip_ && kvm_.check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
  extras.brand = x86::host_brand_string();
  for (unsigned i = 0; i < cpus_; ++i) {
    VcpuFd fd = TRY(create_vcpu(i, mmap_size));
    TRYC(fd.set_cpuid(x86::normalize_cpuid(supported, i, cpus_, extras)), cat("vCPU ", i));
    TRYC(fd.set_msrs(msrs), cat("vCPU ", i));
    TRYC(fd.set_fpu(x86::default_fpu()), cat("vCPU ", i));
    if (irqchip_) {
      kvm_lapic_state lapic = TRYC(fd.get_lapic(), cat("vCPU ", i));
      x86::set_lint_pins(lapic);
      TRYC(fd.set_lapic(lapic), cat("vCPU ", i));
    }
    vcpus_.push_back(std::make_unique<Vcpu>(std::move(fd), pio_, mmio_, *this));
  }
  return ok();
}

Result<VcpuFd> Machine::create_vcpu(unsigned i, size_t mmap_size) {
  VcpuFd fd = TRY(VcpuFd::create(vm_, i, mmap_size));
  if (ring_entries_) rings_.push_back(TRY(DirtyRing::map(fd.fd(), i, ring_entries_)));
  return fd;
}

Machine::~Machine() {
  if (!threads_.empty()) (void)finish();
  stop_workers();
}

void Machine::stop_workers() {
  for (auto& v : virtio_)
    if (v.worker) v.worker->stop();
}

namespace {
// GSIs for virtio-mmio devices: free IOAPIC pins (not COM1 4, RTC 8, SCI 9, PS/2 mouse 12).
constexpr uint32_t kVirtioGsis[] = {5, 6, 7, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
}  // namespace

Result<virtio::MmioTransport*> Machine::add_virtio_device(std::unique_ptr<virtio::VirtioDevice> dev, std::string name) {
  // Threads started parked that never ran (a migration's receiver starts them
  // before the state and the devices come) touch no device yet.
  if (guest_ran_) return Error::invalid("virtio devices must be added before the VM starts");
  size_t i = virtio_.size();
  if (i >= std::size(kVirtioGsis)) return Error::invalid(cat("too many virtio devices (", std::size(kVirtioGsis), " at most)"));
  VirtioSlot slot;
  slot.base = x86::kVirtioMmioStart + i * virtio::mmio::kWindowSize;
  slot.gsi = kVirtioGsis[i];
  slot.transport = std::make_unique<virtio::MmioTransport>(std::move(dev), mem_, /*notify_fds=*/true);
  auto* t = slot.transport.get();
  const auto& fds = t->notify_fds();
  for (size_t q = 0; q < fds.size(); ++q) {
    if (!fds[q]) return Error::from_errno(cat(name, ": queue eventfd"));
    TRYC(vm_.register_ioeventfd(fds[q].get(), slot.base + virtio::mmio::kQueueNotify, 4, q), name);
  }
  if (irqchip_) {
    int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return Error::from_errno("eventfd");
    slot.irqfd.reset(efd);
    TRYC(vm_.register_irqfd(efd, slot.gsi), name);
    t->set_irq([efd] {
      uint64_t one = 1;
      (void)!::write(efd, &one, sizeof one);
    });
  }
  slot.worker = TRYC(virtio::DeviceWorker::create(*t, name), name);
  TRYC(mmio_.insert(t, slot.base, virtio::mmio::kWindowSize, name), name);
  virtio_.push_back(std::move(slot));
  return t;
}

Status Machine::load_linux(x86::BootSources src) {
  x86::AcpiConfig acpi;
  acpi.cpu_count = cpus_;
  acpi.vmgenid = irqchip_;  // the notification is an interrupt
  for (const auto& v : virtio_)
    acpi.virtio_mmio.push_back({v.base, static_cast<uint32_t>(virtio::mmio::kWindowSize), v.gsi});
  src.rsdp_addr = TRY(x86::write_acpi_tables(mem_, acpi));
  TRY(x86::write_reset_vector(mem_));
  if (acpi.vmgenid) {
    vmgenid_addr_ = x86::kVmGenIdAddr;
    TRY(new_generation_id());
    generation_changed_ = false;  // the first one needs no notification
  }
  entry_ = TRY(x86::load_kernel(mem_, src));
  return ok();
}

void Machine::start_threads(bool workers) {
  Vcpu::install_kick_handler();
  if (workers)
    for (auto& v : virtio_) v.worker->start();
  for (auto& v : vcpus_) {
    Vcpu* p = v.get();
    threads_.emplace_back([p] { p->run_loop(); });
  }
}

Status Machine::start() {
  if (!entry_) return Error::invalid("no kernel loaded and no entry point set");
  TRYC(x86::apply_entry(mem_, vcpus_[0]->fd(), *entry_), "set up the boot vCPU");
  guest_ran_ = true;
  start_threads(/*workers=*/true);
  return ok();
}

Status Machine::start_paused() {
  if (!threads_.empty()) return Error::invalid("the VM is already running");
  {
    std::lock_guard lock(pause_mu_);
    pause_requested_ = true;
  }
  start_threads(/*workers=*/false);  // each parks before its first KVM_RUN; resume() starts the workers
  std::unique_lock lock(pause_mu_);
  pause_cv_.wait(lock, [this] { return parked_ == vcpus_.size() || stopping(); });
  if (stopping()) {
    pause_requested_ = false;
    return Error::invalid("the VM stopped while starting");
  }
  paused_.store(true, std::memory_order_release);
  return ok();
}

std::optional<kvm_clock_data> Machine::paused_clock() const {
  if (!clock_saved_) return std::nullopt;
  return clock_;
}

void Machine::set_paused_clock(const kvm_clock_data& c) {
  clock_ = c;
  clock_saved_ = true;
}

Result<std::vector<uint64_t>> Machine::take_dirty_pages() {
  if (!track_dirty_) return Error::invalid("the VM was not created with dirty page tracking");
  if (ring_entries_) {
    TRY(harvest_dirty_rings());
    return mem_.take_dirty();
  }
  std::vector<uint64_t> bits = mem_.take_dirty();
  uint32_t slot = 0;
  for (const auto& r : mem_.regions()) {
    uint64_t pages = r.size / GuestMemory::kPageSize;
    auto log = TRY(vm_.get_dirty_log(slot, pages));
    if (manual_dirty_protect_) TRY(vm_.clear_dirty_log(slot, pages, log));
    ++slot;
    uint64_t first = r.fd_offset / GuestMemory::kPageSize;
    for (uint64_t p = 0; p < pages; ++p)
      if (log[p / 64] >> (p % 64) & 1) bits[(first + p) / 64] |= 1ULL << ((first + p) % 64);
  }
  return bits;
}

Status Machine::set_dirty_logging(bool on) {
  if (track_dirty_configured_ || track_dirty_ == on) return ok();
  // Before the slots log: they then start all dirty (the first
  // take_dirty_pages() returns every page) without a write-protect pass.
  // Not with a ring: KVM would then not write-protect the slots at all.
  if (on && !ring_entries_ && !manual_dirty_protect_) manual_dirty_protect_ = vm_.enable_manual_dirty_protect();
  if (on) {  // before the slots log, so no ring entry finds it off
    mem_.enable_dirty_tracking();
    (void)mem_.take_dirty();
  }
  uint32_t slot = 0;
  for (const auto& r : mem_.regions())
    TRY(vm_.set_user_memory_region(slot++, r.guest_addr, r.size, r.host, on ? KVM_MEM_LOG_DIRTY_PAGES : 0));
  track_dirty_ = on;
  // Logging off: what the rings still hold is of no use (and would be
  // reported by the next logging's first take_dirty_pages()).
  if (!on && ring_entries_) {
    TRY(harvest_dirty_rings());
    (void)mem_.take_dirty();
  }
  return ok();
}

Status Machine::harvest_dirty_rings() {
  std::lock_guard lock(ring_mu_);
  const auto& regions = mem_.regions();
  uint64_t harvested = 0;
  for (auto& ring : rings_) {
    harvested += ring.harvest([&](uint32_t slot, uint64_t offset) {
      // Address space 0 (the high half) and one of our slots, within it.
      if (slot >= regions.size() || offset >= regions[slot].size / GuestMemory::kPageSize) return;
      mem_.mark_dirty(regions[slot].guest_addr + offset * GuestMemory::kPageSize, GuestMemory::kPageSize);
    });
  }
  if (harvested) TRY(vm_.reset_dirty_rings());
  return ok();
}

void Machine::dirty_ring_full(Vcpu& vcpu) {
  ring_full_exits_.fetch_add(1, std::memory_order_relaxed);
  if (Status st = harvest_dirty_rings(); !st)
    request_stop(StopReason::kError, cat("vCPU ", vcpu.id(), ": its dirty ring is full and could not be emptied: ",
                                         st.error().message()));
}

void Machine::request_stop(StopReason reason, std::string detail) {
  {
    std::lock_guard lock(mu_);
    if (stopping_.load()) return;
    result_.reason = reason;
    result_.detail = std::move(detail);
    stopping_.store(true, std::memory_order_release);
  }
  {
    std::lock_guard lock(pause_mu_);  // wakes parked vCPUs and a waiting pause()
  }
  pause_cv_.notify_all();
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
}

void Machine::park_if_paused(Vcpu& vcpu) {
  std::unique_lock lock(pause_mu_);
  if (!pause_requested_) {
    vcpu.fd().run_area()->immediate_exit = 0;
    return;
  }
  ++parked_;
  pause_cv_.notify_all();
  pause_cv_.wait(lock, [this] { return !pause_requested_ || stopping(); });
  --parked_;
  // A pause() that came while we were waking has set immediate_exit again: keep it.
  if (!pause_requested_) vcpu.fd().run_area()->immediate_exit = 0;
}

Status Machine::pause() {
  if (threads_.empty()) return Error::invalid("the VM is not running");
  {
    std::unique_lock lock(pause_mu_);
    if (pause_requested_) return Error::invalid("the VM is already paused");
    if (stopping()) return Error::invalid("the VM is stopping");
    pause_requested_ = true;
    for (auto& v : vcpus_) v->kick();  // under the lock: see park_if_paused()
    pause_cv_.wait(lock, [this] { return parked_ == vcpus_.size() || stopping(); });
    if (stopping()) {
      pause_requested_ = false;
      return Error::invalid("the VM stopped while pausing");
    }
  }
  for (auto& v : virtio_) v.worker->stop();
  auto clock = vm_.get_clock();
  clock_saved_ = static_cast<bool>(clock);
  if (clock) clock_ = *clock;
  paused_.store(true, std::memory_order_release);
  return ok();
}

Status Machine::resume() {
  if (!paused()) return Error::invalid("the VM is not paused");
  if (clock_saved_) TRYC(vm_.set_clock(clock_), "restore the guest clock");
  guest_ran_ = true;
  for (auto& v : virtio_) v.worker->start();
  paused_.store(false, std::memory_order_release);
  {
    std::lock_guard lock(pause_mu_);
    pause_requested_ = false;
  }
  pause_cv_.notify_all();
  return notify_generation();
}

Status Machine::notify_generation() {
  if (!generation_changed_ || !irqchip_) return ok();
  generation_changed_ = false;
  TRYC(vm_.irq_line(x86::kGedGsi, true), "notify the new VM generation ID");
  TRYC(vm_.irq_line(x86::kGedGsi, false), "notify the new VM generation ID");
  return ok();
}

VcpuExitCounts Machine::vcpu_exit_counts() const {
  VcpuExitCounts sum;
  for (const auto& v : vcpus_) sum += v->exit_counts();
  return sum;
}

Result<std::array<uint8_t, 16>> Machine::new_generation_id() {
  if (vmgenid_addr_ == 0) return Error::invalid("the VM has no VM generation ID device");
  std::array<uint8_t, 16> id{};
  if (::getrandom(id.data(), id.size(), 0) != static_cast<ssize_t>(id.size())) return Error::from_errno("getrandom");
  TRYC(mem_.write(vmgenid_addr_, id), "write the VM generation ID");
  generation_changed_ = true;
  return id;
}

Status Machine::send_ctrl_alt_del() {
  if (threads_.empty()) return Error::invalid("the VM is not running");
  if (stopping()) return Error::invalid("the VM is stopping");
  if (!i8042_->trigger_ctrl_alt_del()) return Error(EBUSY, "the i8042 keyboard queue is full (the guest does not read it)");
  return ok();
}

RunResult Machine::finish() {
  request_stop(StopReason::kStopped);
  // Only threads that were not joined yet: pthread_kill on a joined thread is
  // undefined (a second finish(), e.g. the Vmm's destructor, crashed with its stack gone).
  if (!threads_.empty())
    for (auto& v : vcpus_) v->kick();
  for (auto& t : threads_) t.join();
  threads_.clear();
  stop_workers();
  std::lock_guard lock(mu_);
  return result_;
}

RunResult Machine::run() {
  if (auto s = start(); !s) return {StopReason::kError, s.error().message()};
  pollfd p{stop_fd_.get(), POLLIN, 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
  return finish();
}

}  // namespace vessel::vmm
