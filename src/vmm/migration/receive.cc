// The receiving side of a live migration (see migration.h).
#include <fcntl.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/migration/migration.h"
#include "vmm/snapshot/cpu_check.h"

namespace vessel::vmm::migration {

namespace {
using Clock = std::chrono::steady_clock;
double elapsed_ms(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Pages into the machine's guest RAM. The RAM starts all zero (a fresh
// memfd), so a zero page costs nothing unless the page got data earlier in
// the stream: those are zeroed (a hole punched for long runs).
class RamSink : public MemorySink {
 public:
  explicit RamSink(GuestMemory& mem) : mem_(mem), written_((mem.size() / kPageSize + 63) / 64) {}
  Status write_page(uint64_t offset, const uint8_t* data) override {
    if (offset % kPageSize || offset + kPageSize > mem_.size()) return Error::invalid("page outside guest RAM");
    std::memcpy(mem_.linear(offset), data, kPageSize);
    uint64_t p = offset / kPageSize;
    written_[p / 64] |= 1ULL << (p % 64);
    return ok();
  }
  Status zero_pages(uint64_t offset, uint64_t count) override {
    if (offset % kPageSize || offset > mem_.size() || count > (mem_.size() - offset) / kPageSize)
      return Error::invalid("pages outside guest RAM");
    uint64_t first = offset / kPageSize, end = first + count;
    for (uint64_t p = first; p < end;) {
      if (!((written_[p / 64] >> (p % 64)) & 1)) {
        ++p;
        continue;
      }
      uint64_t run = p;
      while (run < end && ((written_[run / 64] >> (run % 64)) & 1)) {
        written_[run / 64] &= ~(1ULL << (run % 64));
        ++run;
      }
      zero(p * kPageSize, (run - p) * kPageSize);
      p = run;
    }
    return ok();
  }

 private:
  void zero(uint64_t offset, uint64_t len) {
    if (len >= 16 * kPageSize && ::fallocate(mem_.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                             static_cast<off_t>(offset), static_cast<off_t>(len)) == 0)
      return;
    std::memset(mem_.linear(offset), 0, len);
  }
  GuestMemory& mem_;
  std::vector<uint64_t> written_;  // pages that hold data from the stream
};

uint64_t to_us(double ms) { return static_cast<uint64_t>(ms * 1000.0); }
}  // namespace

Result<Received> receive_machine(Connection& conn, const ReceiveOptions& o) {
  conn.set_timeout_ms(o.timeout_ms);
  snapshot::RestoreOptions ro;
  ro.kvm_device = o.kvm_device;
  ro.serial_out = o.serial_out;
  std::unique_ptr<Machine> machine;
  std::optional<RamSink> sink;
  bool memfd = false;
  bool ready_due = false;
  Received out;
  // The machine over `mem`, built now, while the source still runs.
  auto build = [&](const snapshot::VmSpec& spec, GuestMemory mem) -> Status {
    auto t = Clock::now();
    machine = TRYC(snapshot::prepare_machine(spec, std::move(mem), ro), "build the machine");
    out.build_ms = elapsed_ms(t);
    ready_due = true;
    return ok();
  };
  StreamReceiver::Limits limits;
  limits.max_memory = o.max_memory;
  StreamReceiver sr(
      limits,
      [&](const Hello& h) -> Status {
        Kvm kvm = TRY(Kvm::open(o.kvm_device));
        auto supported = TRY(kvm.supported_cpuid());
        TRYC(snapshot::check_cpuid(h.host_cpuid, supported), "the source host's CPU has features this one lacks");
        memfd = h.memfd;
        return ok();
      },
      [&](const snapshot::VmSpec& spec) -> Result<MemorySink*> {
        if (memfd) return static_cast<MemorySink*>(nullptr);  // MEMFD brings the memory
        GuestMemory mem =
            TRYC(GuestMemory::create(spec.memory, x86::kMmioHoleStart, x86::kMmioHoleEnd), "guest memory");
        TRY(build(spec, std::move(mem)));
        sink.emplace(machine->memory());
        return &*sink;
      });
  Clock::time_point t0;
  bool accepted = false;
  auto fail = [&](Error e) -> Error {
    // Best effort: the sender resumes its guest either way.
    (void)conn.send(accepted ? FrameType::kError : FrameType::kRefuse, encode_text(e.message()));
    return e;
  };
  Frame f;
  while (!sr.finished()) {
    if (auto s = conn.receive_into(f, o.timeout_ms); !s) return fail(std::move(s).error());
    if (!accepted) t0 = Clock::now();
    if (auto s = sr.on_frame(f.header, f.body(), static_cast<bool>(f.fd)); !s) return fail(std::move(s).error());
    if (f.header.type == FrameType::kHello) {
      if (auto s = conn.send(FrameType::kAccept, {}); !s) return std::move(s).error().context("send ACCEPT");
      accepted = true;
    } else if (f.header.type == FrameType::kMemfd) {
      auto m = GuestMemory::adopt_memfd(std::move(f.fd), sr.hello().memory_size, x86::kMmioHoleStart, x86::kMmioHoleEnd);
      if (!m) return fail(std::move(m).error().context("the passed guest RAM"));
      if (auto s = build(sr.spec(), std::move(*m)); !s) return fail(std::move(s).error());
    }
    if (ready_due) {
      // Adding the devices, setting the state and starting the vCPUs took
      // about a third of the time building the machine took, in the VM
      // harness's nested KVM (KVM_CREATE_VM, the vCPUs and the memory slots
      // cost the most): a third of the build is the estimate.
      Ready r{to_us(out.build_ms), to_us(out.build_ms / 3)};
      if (auto s = conn.send(FrameType::kReady, encode_ready(r)); !s) return std::move(s).error().context("send READY");
      ready_due = false;
    }
  }
  out.stream_ms = elapsed_ms(t0);
  out.data_pages = sr.data_pages();
  out.zero_pages = sr.zero_pages();
  out.memfd = sr.got_memfd();
  auto t1 = Clock::now();
  auto r = snapshot::restore_prepared(std::move(machine), std::move(sr.state()), ro);
  if (!r) return fail(std::move(r).error().context("restore the migrated VM"));
  out.restore_ms = elapsed_ms(t1);
  out.restored = std::move(*r);
  if (auto s = conn.send(FrameType::kRunning, {}); !s) {
    // The source may resume too: both would run. Stop ours; the source keeps the guest.
    out.restored.machine->request_stop(StopReason::kStopped);
    (void)out.restored.machine->finish();
    return std::move(s).error().context("tell the source that the VM runs here (this copy was stopped)");
  }
  log::info("migration", cat("received: machine built in ", out.build_ms, " ms before the pause; restore after END ",
                             out.restore_ms, " ms (checks ", out.restored.stats.load_ms, ", devices ",
                             out.restored.stats.machine_ms, ", state ", out.restored.stats.apply_ms, ", start ",
                             out.restored.stats.start_ms, ")"));
  return out;
}

}  // namespace vessel::vmm::migration
