// The receiving side of a live migration (see migration.h).
#include <fcntl.h>

#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/migration/disk_copy.h"
#include "vmm/migration/migration.h"
#include "vmm/migration/postcopy.h"
#include "vmm/snapshot/cpu_check.h"
#include "vmm/virtio/vsock/vsock.h"

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
  std::unique_ptr<PostcopyPager> pager;
  // The fault thread's REQUESTs go out while this thread answers too.
  std::mutex send_mu;
  auto send = [&](FrameType t, std::span<const uint8_t> payload) {
    std::lock_guard lock(send_mu);
    return conn.send(t, payload);
  };
  bool memfd = false, postcopy = false;
  bool ready_due = false;
  Received out;
  // --copy-disks: the image files (removed again unless the migration completes).
  std::unique_ptr<CopiedDisks> disks;
  if (!o.disk_dir.empty()) disks = TRY(CopiedDisks::open(o.disk_dir));
  // The machine over `mem`, built now, while the source still runs: its
  // vCPU threads started and parked, and the state codec rehearsed (see
  // rehearse_state_codec()), so that the restore after END does neither.
  auto build = [&](const snapshot::VmSpec& spec, GuestMemory mem) -> Status {
    auto t = Clock::now();
    machine = TRYC(snapshot::prepare_machine(spec, std::move(mem), ro), "build the machine");
    // The restore estimate in READY is a share of this (the KVM calls that
    // build the machine): not of the two below, which the restore no longer does.
    out.build_ms = elapsed_ms(t);
    TRYC(machine->start_paused(), "start the vCPUs");
    TRY(snapshot::rehearse_state_codec(spec));
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
        ro.supported_cpuid = std::move(supported);  // the restore checks the vCPUs' CPUID against it
        if (h.copy_disks && !disks)
          return Error::invalid("the source copies its disks (--copy-disks): this receiver has no disk directory "
                                "for them (vm receive --disk-dir DIR)");
        memfd = h.memfd;
        postcopy = h.postcopy;
        return ok();
      },
      [&](const snapshot::VmSpec& spec) -> Result<MemorySink*> {
        if (disks) disks->set_spec(spec);
        if (memfd) return static_cast<MemorySink*>(nullptr);  // MEMFD brings the memory
        // Post-copy punches single pages out of the RAM: 4 KiB pages then.
        GuestMemory mem = TRYC(postcopy ? GuestMemory::create_small_pages(spec.memory, x86::kMmioHoleStart, x86::kMmioHoleEnd)
                                        : GuestMemory::create(spec.memory, x86::kMmioHoleStart, x86::kMmioHoleEnd),
                               "guest memory");
        TRY(build(spec, std::move(mem)));
        sink.emplace(machine->memory());
        return &*sink;
      });
  sr.set_disk_sink(disks.get());
  sr.set_postcopy([&](std::vector<uint64_t> missing) -> Result<MemorySink*> {
    pager = TRY(PostcopyPager::start(machine->memory(), std::move(missing),
                                     [&](uint64_t off) { return send(FrameType::kRequest, encode_request(off)); }));
    return static_cast<MemorySink*>(pager.get());
  });
  Clock::time_point t0;
  bool accepted = false;
  auto fail = [&](Error e) -> Error {
    // Best effort: the sender resumes its guest either way.
    (void)send(accepted ? FrameType::kError : FrameType::kRefuse, encode_text(e.message()));
    return e;
  };
  std::vector<UniqueFd> taps;  // handed over with TAP frames, by NIC
  UniqueFd vsock_listener;     // and the VSOCK frame's socket
  Frame f;
  while (!sr.ended()) {
    if (auto s = conn.receive_into(f, o.timeout_ms); !s) return fail(std::move(s).error());
    if (!accepted) t0 = Clock::now();
    if (auto s = sr.on_frame(f.header, f.body(), static_cast<bool>(f.fd)); !s) return fail(std::move(s).error());
    if (f.header.type == FrameType::kHello) {
      if (auto s = send(FrameType::kAccept, {}); !s) return std::move(s).error().context("send ACCEPT");
      accepted = true;
    } else if (f.header.type == FrameType::kTap) {
      if (taps.size() <= sr.last_tap_nic()) taps.resize(sr.last_tap_nic() + 1);
      taps[sr.last_tap_nic()] = std::move(f.fd);
    } else if (f.header.type == FrameType::kVsock) {
      vsock_listener = std::move(f.fd);
    } else if (f.header.type == FrameType::kMemfd) {
      auto m = GuestMemory::adopt_memfd(std::move(f.fd), sr.hello().memory_size, x86::kMmioHoleStart, x86::kMmioHoleEnd);
      if (!m) return fail(std::move(m).error().context("the passed guest RAM"));
      if (auto s = build(sr.spec(), std::move(*m)); !s) return fail(std::move(s).error());
    }
    if (ready_due) {
      // Adding the devices, setting the state and starting the vCPUs took
      // about a third of the time building the machine took, in the VM
      // harness's nested KVM (KVM_CREATE_VM, the vCPUs and the memory slots
      // cost the most): a third of the build is the estimate. (Since the
      // vCPU threads start here, before READY, the restore takes less: the
      // estimate errs long, which costs a round at most.)
      Ready r{to_us(out.build_ms), to_us(out.build_ms / 3)};
      if (auto s = send(FrameType::kReady, encode_ready(r)); !s) return std::move(s).error().context("send READY");
      ready_due = false;
    }
  }
  out.stream_ms = elapsed_ms(t0);
  out.memfd = sr.got_memfd();
  if (disks && sr.hello().copy_disks) {
    if (auto s = disks->finish(sr.state()); !s) return fail(std::move(s).error().context("the copied disks"));
    out.disk_bytes = disks->bytes_written();
  }
  // Post-copy: the missing pages come while the guest runs; this thread
  // reads them (and COMPLETE) while that one restores and runs the guest.
  std::thread pages;
  std::optional<Error> pages_error;
  auto end_pages = [&] {
    if (!pages.joinable()) return;
    ::shutdown(conn.fd(), SHUT_RDWR);
    pages.join();
  };
  if (sr.postcopy()) {
    pages = std::thread([&] {
      Frame g;
      while (!sr.finished()) {
        Status s = conn.receive_into(g, o.timeout_ms);
        if (s) s = sr.on_frame(g.header, g.body(), static_cast<bool>(g.fd));
        if (!s) {
          pages_error = std::move(s).error().context("post-copy stream");
          return;
        }
      }
    });
  }
  for (const auto& t : taps) ro.tap_fds.push_back(t ? t.get() : -1);
  ro.vsock_listener_fd = vsock_listener ? vsock_listener.get() : -1;
  ro.vsock_uds = o.vsock_uds;
  if (o.nets_for) {
    auto nets = o.nets_for(sr.state());
    if (!nets) {
      Error e = fail(std::move(nets).error());
      end_pages();
      return e;
    }
    ro.nets = std::move(*nets);
  }
  auto t1 = Clock::now();
  auto r = snapshot::restore_prepared(std::move(machine), std::move(sr.state()), ro);
  if (!r) {
    Error e = fail(std::move(r).error().context("restore the migrated VM"));
    end_pages();
    return e;
  }
  out.restore_ms = elapsed_ms(t1);
  out.restored = std::move(*r);
  // Stops the guest here; after a post-copy failure its RAM is fenced
  // first, so nothing waiting on a page that never came goes on with a zero
  // page instead.
  auto stop_here = [&] {
    out.restored.machine->request_stop(StopReason::kStopped);
    if (pager) pager->fence();
    end_pages();
    (void)out.restored.machine->finish();
  };
  if (auto s = send(FrameType::kRunning, {}); !s) {
    // The source may resume too: both would run. Stop ours; the source keeps the guest.
    stop_here();
    return std::move(s).error().context("tell the source that the VM runs here (this copy was stopped)");
  }
  if (disks) disks->commit();  // the guest runs on them here
  // The source lets go of the vsock's path now (it removes it no more): this VMM does.
  if (vsock_listener)
    if (virtio::VsockDevice* vs = vsock_of(*out.restored.machine)) vs->set_owns_path(true);
  if (pages.joinable()) {
    auto tp = Clock::now();
    pages.join();
    Status st = pages_error ? Status(*pages_error) : pager->fault_error();
    if (st && pager->missing() != 0)
      st = Error::invalid(cat("the source said COMPLETE with ", pager->missing(), " pages not sent"));
    if (st) st = send(FrameType::kDone, {}).context("send DONE");
    if (!st) {
      uint64_t left = pager->missing();
      stop_here();
      return Error(st.error().code(), cat("post-copy failed after the guest started here, with ", left,
                                          " of its pages still on the source: the VM was stopped (",
                                          st.error().message(), ")"));
    }
    out.postcopy_ms = elapsed_ms(tp);
    out.postcopy_requested = pager->requested();
    out.postcopy_zero_filled = pager->zero_filled();
    pager->stop();
  }
  out.data_pages = sr.data_pages();
  out.zero_pages = sr.zero_pages();
  log::info("migration", cat("received: machine built in ", out.build_ms, " ms before the pause; restore after END ",
                             out.restore_ms, " ms (checks ", out.restored.stats.load_ms, ", devices ",
                             out.restored.stats.machine_ms, ", state ", out.restored.stats.apply_ms, ", start ",
                             out.restored.stats.start_ms, ")",
                             sr.postcopy() ? cat("; post-copy ", out.postcopy_ms, " ms, ", out.postcopy_requested,
                                                 " pages asked for, ", out.postcopy_zero_filled, " holes zero-filled")
                                           : std::string()));
  return out;
}

}  // namespace vessel::vmm::migration
