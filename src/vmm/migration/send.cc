// The sending side of a live migration (see migration.h).
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <bit>
#include <chrono>
#include <thread>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/migration/migration.h"
#include "vmm/snapshot/machine_state.h"
#include "vmm/snapshot/state_file.h"
#include "vmm/virtio/block/block.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "unknown"
#endif

namespace vessel::vmm::migration {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Keeps the stream under `bw` bytes/s (0: no limit).
class Pacer {
 public:
  explicit Pacer(uint64_t bw) : bw_(bw), start_(Clock::now()) {}
  void sent(uint64_t n) {
    if (!bw_) return;
    bytes_ += n;
    auto due = start_ + std::chrono::duration<double>(static_cast<double>(bytes_) / static_cast<double>(bw_));
    if (due > Clock::now()) std::this_thread::sleep_until(due);
  }

 private:
  uint64_t bw_;
  Clock::time_point start_;
  uint64_t bytes_ = 0;
};

// Auto-converge: pauses the guest for `pct` % of every 100 ms slice (all
// vCPUs and the virtio workers), so it dirties memory more slowly.
class Throttle {
 public:
  explicit Throttle(Machine& m) : m_(m), t_([this] { loop(); }) {}
  ~Throttle() { stop(); }
  void set(unsigned pct) { pct_.store(std::min(pct, 95u)); }
  void stop() {
    stop_.store(true);
    if (t_.joinable()) t_.join();
  }

 private:
  void loop() {
    using std::chrono::milliseconds;
    while (!stop_.load()) {
      unsigned p = pct_.load();
      if (p == 0) {
        std::this_thread::sleep_for(milliseconds(10));
        continue;
      }
      std::this_thread::sleep_for(milliseconds(100 - p));
      if (stop_.load() || m_.stopping()) break;
      if (!m_.pause()) continue;
      std::this_thread::sleep_for(milliseconds(p));
      (void)m_.resume();
    }
  }
  Machine& m_;
  std::atomic<unsigned> pct_{0};
  std::atomic<bool> stop_{false};
  std::thread t_;
};

class Sender {
 public:
  Sender(Machine& m, Connection& c, const SendOptions& o, Progress& p) : m_(m), c_(c), o_(o), p_(p), pacer_(o.bandwidth) {}

  // One PAGES frame per run of consecutive pages (at most kMaxRunPages).
  Status send_run(uint64_t first_page, uint64_t count) {
    while (count) {
      uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count, kMaxRunPages));
      uint64_t off = first_page * kPageSize;
      uint32_t data = 0;
      auto payload = encode_pages(off, n, [&](uint32_t i) -> const uint8_t* {
        const uint8_t* pg = m_.memory().linear(off + i * kPageSize);
        if (!is_zero_page(pg)) ++data;
        return pg;
      });
      if (m_.stopping()) return Error::invalid("the VM stopped during the migration");
      TRY(c_.send(FrameType::kPages, payload));
      pacer_.sent(payload.size());
      std::lock_guard lock(p_.mu);
      p_.pages_sent += data;
      p_.zero_pages += n - data;
      p_.bytes_sent = c_.bytes_sent();
      first_page += n;
      count -= n;
    }
    return ok();
  }

  // The pages whose bits are set; returns how many.
  Result<uint64_t> send_bitmap(const std::vector<uint64_t>& bits) {
    uint64_t total = m_.memory().size() / kPageSize, sent = 0;
    uint64_t page = 0;
    while (page < total) {
      if (!((bits[page / 64] >> (page % 64)) & 1)) {
        if (bits[page / 64] >> (page % 64) == 0) page = (page / 64 + 1) * 64;
        else ++page;
        continue;
      }
      uint64_t end = page;
      while (end < total && ((bits[end / 64] >> (end % 64)) & 1)) ++end;
      TRY(send_run(page, end - page));
      sent += end - page;
      page = end;
    }
    return sent;
  }

  // Round 0: every page that may hold data (the memfd's data extents).
  Status send_all() {
    auto ranges = TRY(m_.memory().populated_ranges());
    for (const auto& [off, len] : ranges) TRY(send_run(off / kPageSize, len / kPageSize));
    return ok();
  }

  Machine& m_;
  Connection& c_;
  const SendOptions& o_;
  Progress& p_;
  Pacer pacer_;
};

uint64_t popcount(const std::vector<uint64_t>& bits) {
  uint64_t n = 0;
  for (uint64_t w : bits) n += static_cast<uint64_t>(std::popcount(w));
  return n;
}

void set_phase(Progress& p, const char* phase) {
  std::lock_guard lock(p.mu);
  p.phase = phase;
}

Status expect_reply(Connection& c, FrameType want, int timeout_ms, const char* waiting_for) {
  auto f = TRYC(c.receive(timeout_ms), cat("waiting for the destination's ", waiting_for));
  if (f.header.type == FrameType::kRefuse)
    return Error::invalid(cat("the destination refused the migration: ", decode_text(f.payload)));
  if (f.header.type == FrameType::kError)
    return Error::invalid(cat("the destination failed: ", decode_text(f.payload)));
  if (f.header.type != want)
    return Error::invalid(cat("the destination sent ", frame_name(static_cast<uint32_t>(f.header.type)), ", not ",
                              frame_name(static_cast<uint32_t>(want))));
  return ok();
}

// The vCPU, VM and device state of the paused machine, as a state file.
Result<std::vector<uint8_t>> capture_state(Machine& m, const snapshot::VmSpec& spec, const std::string& vm_config) {
  snapshot::SnapshotState s;
  s.spec = spec;
  s.vm_config = vm_config;
  s.id = 1;
  for (size_t i = 0; i < m.virtio_count(); ++i)
    if (auto* blk = dynamic_cast<virtio::BlockDevice*>(&m.virtio_transport(i).device()))
      TRYC(blk->flush(), cat("flush disk ", i < spec.devices.size() ? spec.devices[i].path : ""));
  for (const auto& d : spec.devices) {
    if (d.kind != snapshot::DeviceSpec::Kind::kBlock) continue;
    struct stat st {};
    if (::stat(d.path.c_str(), &st) < 0) return Error::from_errno(cat("disk ", d.path));
    s.disks.push_back({d.path, static_cast<uint64_t>(st.st_size),
                       static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
  }
  TRY(snapshot::capture_machine(m, s));
  s.memory.size = m.memory().size();
  return snapshot::encode_state(s, VESSEL_VERSION);
}

Status precopy(Sender& s, Machine& m, Progress& p, const SendOptions& o, std::vector<uint64_t>& left) {
  Throttle throttle(m);
  unsigned throttle_pct = 0;
  auto t = Clock::now();
  uint64_t bytes0 = s.c_.bytes_sent();
  TRY(s.send_all());
  for (unsigned round = 1;; ++round) {
    double secs = std::max(ms_since(t) / 1000.0, 1e-6);
    double bw = static_cast<double>(s.c_.bytes_sent() - bytes0) / secs;
    left = TRY(m.take_dirty_pages());
    uint64_t dirty = popcount(left);
    double dirty_rate = static_cast<double>(dirty * kPageSize) / secs;
    double expected_ms = bw > 0 ? static_cast<double>(dirty * kPageSize) / bw * 1000.0 : 0;
    {
      std::lock_guard lock(p.mu);
      p.round = round;
      p.dirty_pages = dirty;
      p.dirty_rate = dirty_rate;
      if (s.c_.bytes_sent() - bytes0 > (64u << 10)) p.bandwidth = bw;  // too little sent to measure otherwise
      p.expected_downtime_ms = p.bandwidth > 0 ? static_cast<double>(dirty * kPageSize) / p.bandwidth * 1000.0 : expected_ms;
      expected_ms = p.expected_downtime_ms;
    }
    log::debug("migration", cat("round ", round, ": ", dirty, " dirty pages, ", static_cast<uint64_t>(dirty_rate),
                                " B/s dirtied, ", static_cast<uint64_t>(bw), " B/s sent, downtime ~", expected_ms, " ms"));
    if (expected_ms <= static_cast<double>(o.max_downtime_ms) || round >= o.max_rounds) break;
    if (o.auto_converge && round >= 2 && dirty_rate > bw / 2) {
      throttle_pct = throttle_pct == 0 ? 20 : std::min(throttle_pct + 10, 95u);
      throttle.set(throttle_pct);
      std::lock_guard lock(p.mu);
      p.throttle_pct = throttle_pct;
    }
    t = Clock::now();
    bytes0 = s.c_.bytes_sent();
    TRY(s.send_bitmap(left));
    left.clear();
  }
  throttle.stop();  // before the final pause: it pauses and resumes too
  return ok();
}
}  // namespace

Status send_machine(Machine& m, const snapshot::VmSpec& spec, const std::string& vm_config, Connection& conn,
                    const SendOptions& o, Progress& p) {
  auto t0 = Clock::now();
  {
    std::lock_guard lock(p.mu);
    p.phase = "precopy";
    p.pages_total = m.memory().size() / kPageSize;
  }
  if (o.memfd && m.memory().file_backed())
    return Error::invalid("a local migration hands over the guest RAM memfd, but this VM's RAM is a private mapping "
                          "of a snapshot memory file: migrate it without --local");
  Hello h;
  h.vessel_version = VESSEL_VERSION;
  h.memory_size = m.memory().size();
  h.cpus = m.cpu_count();
  h.memfd = o.memfd;
  h.host_cpuid = TRY(m.kvm().supported_cpuid());
  conn.set_timeout_ms(o.ack_timeout_ms);
  TRYC(conn.send(FrameType::kHello, encode_hello(h)), "send HELLO");
  TRY(expect_reply(conn, FrameType::kAccept, o.ack_timeout_ms, "ACCEPT"));

  Sender s(m, conn, o, p);
  std::vector<uint64_t> left;
  bool logging = false;
  bool paused = false;
  Clock::time_point pause_at;
  auto run = [&]() -> Status {
    if (!o.memfd) {
      TRYC(m.set_dirty_logging(true), "enable dirty page logging");
      logging = true;
      (void)TRY(m.take_dirty_pages());  // round 0 sends everything written before now
      TRY(precopy(s, m, p, o, left));
    }
    set_phase(p, "stop-and-copy");
    pause_at = Clock::now();
    TRYC(m.pause(), "pause the VM");
    paused = true;
    if (o.memfd) {
      uint64_t size = m.memory().size();
      std::vector<uint8_t> payload(8);
      std::memcpy(payload.data(), &size, 8);
      TRYC(conn.send(FrameType::kMemfd, payload, m.memory().fd()), "send the guest RAM memfd");
    } else {
      auto last = TRY(m.take_dirty_pages());
      for (size_t i = 0; i < last.size() && i < left.size(); ++i) last[i] |= left[i];
      uint64_t n = TRY(s.send_bitmap(last));
      std::lock_guard lock(p.mu);
      p.dirty_pages = n;
    }
    auto state = TRYC(capture_state(m, spec, vm_config), "capture the VM state");
    TRYC(conn.send(FrameType::kState, state), "send STATE");
    TRYC(conn.send(FrameType::kEnd, {}), "send END");
    set_phase(p, "waiting");
    TRY(expect_reply(conn, FrameType::kRunning, o.ack_timeout_ms, "RUNNING"));
    return ok();
  };
  Status st = run();
  {
    std::lock_guard lock(p.mu);
    p.bytes_sent = conn.bytes_sent();
    p.total_ms = ms_since(t0);
    if (paused) p.downtime_ms = ms_since(pause_at);
  }
  if (st) {
    set_phase(p, "completed");
    return ok();
  }
  // The guest stays here: running again, without the logging's cost.
  if (paused) (void)m.resume();
  if (logging) (void)m.set_dirty_logging(false);
  return st;
}

}  // namespace vessel::vmm::migration
