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

// Pages into guest RAM; zero pages become holes of the memfd.
class RamSink : public MemorySink {
 public:
  explicit RamSink(GuestMemory& mem) : mem_(mem) {}
  Status write_page(uint64_t offset, const uint8_t* data) override {
    if (offset + kPageSize > mem_.size()) return Error::invalid("page outside guest RAM");
    std::memcpy(mem_.linear(offset), data, kPageSize);
    return ok();
  }
  Status zero_pages(uint64_t offset, uint64_t count) override {
    if (offset > mem_.size() || count > (mem_.size() - offset) / kPageSize) return Error::invalid("pages outside guest RAM");
    if (::fallocate(mem_.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(count * kPageSize)) < 0)
      std::memset(mem_.linear(offset), 0, count * kPageSize);
    return ok();
  }

 private:
  GuestMemory& mem_;
};
}  // namespace

Result<Received> receive_machine(Connection& conn, const ReceiveOptions& o) {
  conn.set_timeout_ms(o.timeout_ms);
  std::optional<GuestMemory> mem;
  std::optional<RamSink> sink;
  StreamReceiver::Limits limits;
  limits.max_memory = o.max_memory;
  StreamReceiver sr(limits, [&](const Hello& h) -> Result<MemorySink*> {
    Kvm kvm = TRY(Kvm::open(o.kvm_device));
    auto supported = TRY(kvm.supported_cpuid());
    TRYC(snapshot::check_cpuid(h.host_cpuid, supported), "the source host's CPU has features this one lacks");
    if (!h.memfd) {
      mem = TRYC(GuestMemory::create(h.memory_size, x86::kMmioHoleStart, x86::kMmioHoleEnd), "guest memory");
      sink.emplace(*mem);
      return &*sink;
    }
    return static_cast<MemorySink*>(nullptr);  // MEMFD brings the memory
  });
  Received out;
  Clock::time_point t0;
  bool accepted = false;
  auto fail = [&](Error e) -> Error {
    // Best effort: the sender resumes its guest either way.
    (void)conn.send(accepted ? FrameType::kError : FrameType::kRefuse, encode_text(e.message()));
    return e;
  };
  while (!sr.finished()) {
    auto f = conn.receive(o.timeout_ms);
    if (!f) return fail(std::move(f).error());
    if (!accepted) t0 = Clock::now();
    if (auto s = sr.on_frame(f->header, f->payload, static_cast<bool>(f->fd)); !s) return fail(std::move(s).error());
    if (f->header.type == FrameType::kHello) {
      if (auto s = conn.send(FrameType::kAccept, {}); !s) return std::move(s).error().context("send ACCEPT");
      accepted = true;
    } else if (f->header.type == FrameType::kMemfd) {
      auto m = GuestMemory::adopt_memfd(std::move(f->fd), sr.hello().memory_size, x86::kMmioHoleStart, x86::kMmioHoleEnd);
      if (!m) return fail(std::move(m).error().context("the passed guest RAM"));
      mem = std::move(*m);
    }
  }
  out.stream_ms = elapsed_ms(t0);
  out.data_pages = sr.data_pages();
  out.zero_pages = sr.zero_pages();
  out.memfd = sr.got_memfd();
  auto t1 = Clock::now();
  snapshot::RestoreOptions ro;
  ro.kvm_device = o.kvm_device;
  ro.serial_out = o.serial_out;
  auto r = snapshot::restore_state(std::move(sr.state()), std::move(*mem), ro);
  if (!r) return fail(std::move(r).error().context("restore the migrated VM"));
  out.restore_ms = elapsed_ms(t1);
  out.restored = std::move(*r);
  if (auto s = conn.send(FrameType::kRunning, {}); !s) {
    // The source may resume too: both would run. Stop ours; the source keeps the guest.
    out.restored.machine->request_stop(StopReason::kStopped);
    (void)out.restored.machine->finish();
    return std::move(s).error().context("tell the source that the VM runs here (this copy was stopped)");
  }
  return out;
}

}  // namespace vessel::vmm::migration
