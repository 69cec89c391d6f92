// The sending side of a live migration (see migration.h).

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <optional>
#include <thread>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/migration/disk_copy.h"
#include "vmm/migration/migration.h"
#include "vmm/snapshot/machine_state.h"
#include "vmm/snapshot/state_file.h"
#include "vmm/virtio/block/block.h"
#include "vmm/virtio/net/net.h"
#include "vmm/virtio/vsock/vsock.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "unknown"
#endif

namespace vessel::vmm::migration {

virtio::VsockDevice* vsock_of(Machine& m) {
  for (size_t i = 0; i < m.virtio_count(); ++i)
    if (auto* vs = dynamic_cast<virtio::VsockDevice*>(&m.virtio_transport(i).device())) return vs;
  return nullptr;
}

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The first set bit of `bits` at or after `from`, or `total` when none is below it.
uint64_t next_set(const std::vector<uint64_t>& bits, uint64_t from, uint64_t total) {
  while (from < total) {
    uint64_t w = bits[from / 64] >> (from % 64);
    if (w) return std::min(total, from + static_cast<uint64_t>(std::countr_zero(w)));
    from = (from / 64 + 1) * 64;
  }
  return total;
}

// Keeps the stream under `bw` bytes/s (0: no limit).
class Pacer {
 public:
  explicit Pacer(uint64_t bw) : bw_(bw), start_(Clock::now()) {}
  // Counts `n` bytes and waits until they are due.
  void sent(uint64_t n) {
    count(n);
    if (ahead()) std::this_thread::sleep_until(due());
  }
  // Counts `n` bytes without waiting; ahead() says whether the stream is ahead of the rate.
  void count(uint64_t n) { bytes_ += n; }
  bool ahead() const { return bw_ && due() > Clock::now(); }

 private:
  Clock::time_point due() const {
    return start_ + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(bytes_) / static_cast<double>(bw_)));
  }
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

  // One PAGES frame for the window of `count` pages from `first_page`: the
  // pages first_page + i for i in `sent` (ascending, at most kMaxRunPages).
  Status send_pages(uint64_t first_page, uint32_t count, std::span<const uint32_t> sent) {
    frame_.build(first_page * kPageSize, count, sent, m_.memory().linear(first_page * kPageSize));
    if (m_.stopping()) return Error::invalid("the VM stopped during the migration");
    TRY(c_.send_raw(frame_.bytes()));
    pacer_.sent(frame_.bytes().size());
    std::lock_guard lock(p_.mu);
    p_.pages_sent += frame_.data_pages();
    p_.zero_pages += frame_.zero_pages();
    p_.bytes_sent = c_.bytes_sent();
    return ok();
  }

  // Every page of [first_page, first_page + count).
  Status send_run(uint64_t first_page, uint64_t count) {
    static const auto kAll = [] {
      std::array<uint32_t, kMaxRunPages> a{};
      for (uint32_t i = 0; i < kMaxRunPages; ++i) a[i] = i;
      return a;
    }();
    while (count) {
      uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count, kMaxRunPages));
      TRY(send_pages(first_page, n, std::span(kAll).first(n)));
      first_page += n;
      count -= n;
    }
    return ok();
  }

  // The pages of [from, end) whose bits are set, kMaxRunPages to a frame
  // whose window (at most kMaxWindowPages) starts at a set bit: scattered
  // pages share frames. Returns how many.
  Result<uint64_t> send_set(const std::vector<uint64_t>& bits, uint64_t from, uint64_t end) {
    uint64_t sent = 0;
    for (uint64_t first = next_set(bits, from, end); first < end; first = next_set(bits, first, end)) {
      uint64_t limit = std::min<uint64_t>(end, first + kMaxWindowPages), last = first;
      idx_.clear();
      for (uint64_t q = first; q < limit && idx_.size() < kMaxRunPages; q = next_set(bits, q + 1, limit)) {
        idx_.push_back(static_cast<uint32_t>(q - first));
        last = q;
      }
      TRY(send_pages(first, static_cast<uint32_t>(last - first + 1), idx_));
      sent += idx_.size();
      first = last + 1;
    }
    return sent;
  }
  Result<uint64_t> send_bitmap(const std::vector<uint64_t>& bits) {
    return send_set(bits, 0, m_.memory().size() / kPageSize);
  }

  // Round 0: every page that may hold data (the memfd's data extents).
  Status send_all() {
    auto ranges = TRY(m_.memory().populated_ranges());
    for (const auto& [off, len] : ranges) TRY(send_run(off / kPageSize, len / kPageSize));
    return ok();
  }

  // Reads READY if it came (within `timeout_ms`); an ERROR or anything
  // else from the destination ends the migration.
  Status poll_ready(int timeout_ms) {
    if (ready_ || !TRY(c_.readable(timeout_ms))) return ok();
    auto f = TRYC(c_.receive(o_.ack_timeout_ms), "read the destination's READY");
    if (f.header.type == FrameType::kError || f.header.type == FrameType::kRefuse)
      return Error::invalid(cat("the destination failed: ", decode_text(f.payload)));
    if (f.header.type != FrameType::kReady)
      return Error::invalid(cat("the destination sent ", frame_name(static_cast<uint32_t>(f.header.type)), ", not READY"));
    ready_info_ = TRY(decode_ready(f.payload));
    ready_ = true;
    std::lock_guard lock(p_.mu);
    p_.destination_estimate_ms = static_cast<double>(ready_info_.restore_estimate_us) / 1000.0;
    return ok();
  }
  // Waits (up to the ACK timeout) until the destination's machine is built.
  Status wait_ready() {
    auto t = Clock::now();
    while (!ready_) {
      TRY(poll_ready(100));
      if (ms_since(t) > o_.ack_timeout_ms)
        return Error(ETIMEDOUT, cat("the destination did not build the machine within ", o_.ack_timeout_ms, " ms"));
    }
    return ok();
  }
  bool ready() const { return ready_; }
  double destination_estimate_ms() const { return static_cast<double>(ready_info_.restore_estimate_us) / 1000.0; }

  Machine& m_;
  Connection& c_;
  const SendOptions& o_;
  Progress& p_;
  Pacer pacer_;
  PagesFrameBuilder frame_;
  std::vector<uint32_t> idx_;  // send_set's pages of one frame
  bool ready_ = false;
  Ready ready_info_;
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
  TRY(snapshot::flush_disks(m, spec));
  for (const auto& d : spec.devices)
    if (d.kind == snapshot::DeviceSpec::Kind::kBlock) s.disks.push_back(TRY(snapshot::disk_record(d.path)));
  TRY(snapshot::capture_machine(m, s));
  s.memory.size = m.memory().size();
  return snapshot::encode_state(s, VESSEL_VERSION);
}

// What the stop is expected to cost (ms) when `pages` are left: each page
// (and the frames still queued for the destination, and the
// state file) at `page_ms`, the last dirty log read (as long as the last one,
// `log_ms`), and twice the destination's restore estimate: once for its
// restore, once for the pause and state capture here (the same vCPU and
// device state, read instead of set).
struct Estimate {
  double pages_ms = 0, fixed_ms = 0;
  double total() const { return pages_ms + fixed_ms; }
};
Estimate estimate_stop(uint64_t pages, uint64_t in_flight_bytes, double page_ms, double log_ms, double destination_ms) {
  constexpr uint64_t kStatePages = 4;  // a 1-vCPU state file is ~10-20 KiB
  Estimate e;
  e.pages_ms = static_cast<double>(pages) * page_ms;
  e.fixed_ms = static_cast<double>(in_flight_bytes / kPageSize + kStatePages) * page_ms + log_ms + 2 * destination_ms;
  return e;
}

// --copy-disks: what the disks' files hold that the destination lacks (all
// of each the first time), counted in the progress.
Status send_disks(DiskCopier* disks, Connection& c, Progress& p) {
  if (!disks) return ok();
  TRY(disks->send(c));
  std::lock_guard lock(p.mu);
  p.disk_bytes = disks->bytes_sent();
  return ok();
}

// Pre-copy rounds until the stop fits the budget; `to_postcopy` set when
// (with o.postcopy) the rounds do not converge and post-copy takes over.
// `disks` (--copy-disks): the image files go first, and what changed in them
// between the rounds, outside the rounds' measures of the pages.
Status precopy(Sender& s, Machine& m, Progress& p, const SendOptions& o, DiskCopier* disks, std::vector<uint64_t>& left,
               bool& to_postcopy) {
  Throttle throttle(m);
  unsigned throttle_pct = 0;
  TRY(send_disks(disks, s.c_, p));
  auto t = Clock::now();
  uint64_t bytes0 = s.c_.bytes_sent();
  uint64_t pages0 = 0;
  {
    std::lock_guard lock(p.mu);
    pages0 = p.pages_sent + p.zero_pages;
  }
  TRY(s.send_all());
  double send_ms = ms_since(t);
  // The cost of one page in the last round: measured on the last round that
  // sent mostly data pages (as the last round will); until there is one,
  // round 0's time over its data pages only (its zero pages cost time too:
  // an estimate on the high side, while one over all its pages, most of them
  // zero, was 50x too low in the bench at 10 MiB/s).
  double page_ms = 0;
  bool page_ms_from_data = false;
  for (unsigned round = 1;; ++round) {
    uint64_t round_bytes = s.c_.bytes_sent() - bytes0;
    uint64_t round_data = 0, round_pages = 0;
    {
      std::lock_guard lock(p.mu);
      round_pages = p.pages_sent + p.zero_pages - pages0;
      round_data = round_bytes / kPageSize;
    }
    if (round_data >= 64 && 2 * round_data >= round_pages) {
      page_ms = send_ms / static_cast<double>(round_data);
      page_ms_from_data = true;
    } else if (!page_ms_from_data && round_pages > 0) {
      page_ms = send_ms / static_cast<double>(std::max<uint64_t>(round_data, 1));
    }
    double bw = page_ms > 0 ? static_cast<double>(kPageSize) / page_ms * 1000.0 : 0;
    auto tl = Clock::now();
    left = TRY(m.take_dirty_pages());
    double log_ms = ms_since(tl);
    double secs = std::max(ms_since(t) / 1000.0, 1e-6);
    uint64_t dirty = popcount(left);
    double dirty_rate = static_cast<double>(dirty * kPageSize) / secs;
    TRY(s.poll_ready(0));
    // What this round left queued for the destination would be delivered
    // inside the pause: counted as it is (SIOCOUTQ), and when only it keeps
    // the stop over the budget, delivered first while the guest runs.
    uint64_t queued = std::min(round_bytes, s.c_.queued());
    Estimate e = estimate_stop(dirty, queued, page_ms, log_ms, s.destination_estimate_ms());
    double budget = static_cast<double>(o.max_downtime_ms);
    double queued_ms = static_cast<double>(queued / kPageSize) * page_ms;
    if (queued > 0 && e.total() - queued_ms <= budget) {
      int wait_ms = static_cast<int>(std::clamp(3 * queued_ms, 20.0, 1000.0));
      s.c_.drain(wait_ms);
      queued = std::min(round_bytes, s.c_.queued());
      e = estimate_stop(dirty, queued, page_ms, log_ms, s.destination_estimate_ms());
    }
    {
      std::lock_guard lock(p.mu);
      p.round = round;
      p.dirty_pages = dirty;
      p.dirty_rate = dirty_rate;
      p.bandwidth = bw;
      p.expected_downtime_ms = e.total();
      p.fixed_estimate_ms = e.fixed_ms;
    }
    log::debug("migration", cat("round ", round, ": ", dirty, " dirty pages, ", static_cast<uint64_t>(dirty_rate),
                                " B/s dirtied, ", page_ms, " ms a page, downtime ~", e.total(), " ms (fixed ",
                                e.fixed_ms, ")"));
    bool stuck = round >= o.max_rounds || (round >= 2 && dirty_rate > bw / 2);
    if (o.postcopy && e.total() > budget && stuck && s.ready()) {
      to_postcopy = true;
      break;
    }
    bool done = e.total() <= budget || round >= o.max_rounds;
    if (done && s.ready()) break;
    // The destination has not built its machine yet: wait for it (a round
    // more then sends what was dirtied meanwhile).
    if (done) TRY(s.wait_ready());
    if (o.auto_converge && !o.postcopy && round >= 2 && dirty_rate > bw / 2) {
      throttle_pct = throttle_pct == 0 ? 20 : std::min(throttle_pct + 10, 95u);
      throttle.set(throttle_pct);
      std::lock_guard lock(p.mu);
      p.throttle_pct = throttle_pct;
    }
    TRY(send_disks(disks, s.c_, p));
    t = Clock::now();
    bytes0 = s.c_.bytes_sent();
    {
      std::lock_guard lock(p.mu);
      pages0 = p.pages_sent + p.zero_pages;
    }
    TRY(s.send_bitmap(left));
    send_ms = ms_since(t);
    left.clear();
  }
  throttle.stop();  // before the final pause: it pauses and resumes too
  return ok();
}
// What the destination says during post-copy, read on a thread of its own
// while the pages go out.
class PostcopyListener {
 public:
  PostcopyListener(Connection& c, uint64_t memory_size, int ack_timeout_ms)
      : c_(c), memory_size_(memory_size), ack_timeout_ms_(ack_timeout_ms), t_([this] { loop(); }) {}
  ~PostcopyListener() { stop(); }
  void stop() {
    stop_.store(true);
    if (t_.joinable()) t_.join();
  }
  // Takes the REQUESTs so far; waits up to `wait_ms` for one (or an event) when there are none.
  std::deque<uint64_t> take(int wait_ms) {
    std::unique_lock lock(mu_);
    if (requests_.empty() && !done_ && !error_ && wait_ms > 0)
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms));
    return std::exchange(requests_, {});
  }
  std::optional<Clock::time_point> running_at() const {
    std::lock_guard lock(mu_);
    return running_at_;
  }
  bool done() const {
    std::lock_guard lock(mu_);
    return done_;
  }
  std::optional<Error> error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void loop() {
    while (!stop_.load()) {
      auto readable = c_.readable(100);
      if (readable && !*readable) continue;
      Result<Frame> f = readable ? c_.receive(ack_timeout_ms_) : Result<Frame>(std::move(readable).error());
      std::unique_lock lock(mu_);
      if (!f) {
        error_ = std::move(f).error().context("post-copy: read from the destination");
        break;
      }
      FrameType t = f->header.type;
      if (t == FrameType::kRequest) {
        auto off = decode_request(f->payload, memory_size_);
        if (!off) {
          error_ = std::move(off).error();
          break;
        }
        // More outstanding than the guest has pages: not a destination asking
        // for what its guest touches (the queue stays bounded either way).
        if (requests_.size() >= memory_size_ / kPageSize) {
          error_ = Error::invalid(cat("the destination asked for more than ", memory_size_ / kPageSize,
                                      " pages without the source catching up"));
          break;
        }
        requests_.push_back(*off);
      } else if (t == FrameType::kRunning && !running_at_) {
        running_at_ = Clock::now();
      } else if (t == FrameType::kDone && running_at_) {
        done_ = true;
        break;
      } else if (t == FrameType::kError || t == FrameType::kRefuse) {
        error_ = Error::invalid(cat("the destination failed: ", decode_text(f->payload)));
        break;
      } else {
        error_ = Error::invalid(cat("the destination sent ", frame_name(static_cast<uint32_t>(t)), " during post-copy"));
        break;
      }
      lock.unlock();
      cv_.notify_all();
    }
    cv_.notify_all();
  }
  Connection& c_;
  uint64_t memory_size_;
  int ack_timeout_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> requests_;
  std::optional<Clock::time_point> running_at_;
  bool done_ = false;
  std::optional<Error> error_;
  std::atomic<bool> stop_{false};
  std::thread t_;
};

// The pages the destination asks for, around them first.
constexpr uint32_t kRequestWindowPages = 16;
// Queued bytes the background pages may leave ahead of an asked-for page.
constexpr uint64_t kPostcopyQueue = 256 << 10;

// Sends the `missing` pages (the guest runs on the destination, or is being
// restored there): asked-for ones first, the rest in order; then COMPLETE,
// and waits for DONE. `lost`: set once the destination ran the guest.
Status serve_postcopy(Sender& s, Machine& m, Progress& p, const SendOptions& o, std::vector<uint64_t> missing,
                      PostcopyListener& in, Clock::time_point& running_at, bool& lost) {
  uint64_t total = m.memory().size() / kPageSize;
  auto unsent = [&](uint64_t page) { return (missing[page / 64] >> (page % 64)) & 1; };
  // Sends the unsent pages of [first, first + n) and marks them sent.
  auto send_from = [&](uint64_t first, uint64_t n) -> Status {
    uint64_t end = std::min<uint64_t>(first + n, total);
    TRY(s.send_set(missing, first, end));
    for (uint64_t q = first; q < end; ++q) missing[q / 64] &= ~(1ULL << (q % 64));
    return ok();
  };
  // The error first: the listener records RUNNING before any error that
  // comes after it, so a failure after RUNNING is always seen as one.
  auto check = [&]() -> Status {
    auto e = in.error();
    if (auto at = in.running_at(); at && !lost) {
      lost = true;
      running_at = *at;
    }
    if (e) return *e;
    return ok();
  };
  uint64_t cursor = 0, requests = 0;
  Pacer background(o.postcopy_bandwidth);  // the pages not asked for
  for (;;) {
    TRY(check());
    bool backlog = s.c_.queued() > kPostcopyQueue || background.ahead();
    for (uint64_t off : in.take(backlog ? 1 : 0)) {
      ++requests;
      if (unsent(off / kPageSize)) TRY(send_from(off / kPageSize, kRequestWindowPages));
    }
    {
      std::lock_guard lock(p.mu);
      p.postcopy_requests = requests;
    }
    if (backlog) continue;
    cursor = next_set(missing, cursor, total);
    if (cursor >= total) break;
    uint64_t before = s.c_.bytes_sent();
    TRY(send_from(cursor, kMaxRunPages));
    background.count(s.c_.bytes_sent() - before);
  }
  TRYC(s.c_.send(FrameType::kComplete, {}), "send COMPLETE");
  auto t = Clock::now();
  while (!in.done()) {
    TRY(check());
    (void)in.take(100);  // asked for before they came: sent already
    if (ms_since(t) > o.ack_timeout_ms)
      return Error(ETIMEDOUT, cat("the destination did not confirm the last pages within ", o.ack_timeout_ms, " ms"));
  }
  TRY(check());
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
  if (o.copy_disks && o.memfd) return Error::invalid("a local migration keeps the disks where they are: --copy-disks does not go with it");
  // Changes of the disks are noted from here on (and no more when it goes).
  std::unique_ptr<DiskCopier> disks;
  if (o.copy_disks) {
    disks = TRY(DiskCopier::start(m, spec));
    if (disks->disks() == 0) disks.reset();  // nothing to copy: a plain stream
  }
  Hello h;
  h.copy_disks = disks != nullptr;
  h.version = h.copy_disks ? kCopyDisksStreamVersion : kPlainStreamVersion;
  h.vessel_version = VESSEL_VERSION;
  h.memory_size = m.memory().size();
  h.cpus = m.cpu_count();
  h.memfd = o.memfd;
  h.postcopy = o.postcopy && !o.memfd;
  h.host_cpuid = TRY(m.kvm().supported_cpuid());
  conn.set_timeout_ms(o.ack_timeout_ms);
  TRYC(conn.send(FrameType::kHello, encode_hello(h)), "send HELLO");
  TRY(expect_reply(conn, FrameType::kAccept, o.ack_timeout_ms, "ACCEPT"));

  TRYC(conn.send(FrameType::kMachine, snapshot::encode_spec(spec)), "send MACHINE");
  // The state is encoded in the downtime: its code runs once before (see rehearse_state_codec()).
  TRY(snapshot::rehearse_state_codec(spec));

  Sender s(m, conn, o, p);
  std::vector<uint64_t> left;
  bool logging = false;
  bool paused = false;
  Clock::time_point pause_at;
  double pause_ms = 0, last_log_ms = 0, last_pages_ms = 0, capture_ms = 0, restore_wait_ms = 0;
  uint64_t last_pages = 0;
  bool to_postcopy = false, lost = false;
  auto run = [&]() -> Status {
    if (o.memfd) {
      // The RAM is shared: hand it over while the guest runs, then wait
      // until the destination has built its machine over it.
      uint64_t size = m.memory().size();
      std::vector<uint8_t> payload(8);
      std::memcpy(payload.data(), &size, 8);
      TRYC(conn.send(FrameType::kMemfd, payload, m.memory().fd()), "send the guest RAM memfd");
      TRY(s.wait_ready());
    } else {
      TRYC(m.set_dirty_logging(true), "enable dirty page logging");
      logging = true;
      {
        std::lock_guard lock(p.mu);
        p.dirty_log = m.dirty_ring_entries() ? "ring" : "bitmap";
      }
      (void)TRY(m.take_dirty_pages());  // round 0 sends everything written before now
      TRY(precopy(s, m, p, o, disks.get(), left, to_postcopy));
    }
    // Before the pause: a flush of the disks, so that the one at the pause has
    // only the writes since (PATCH /drives is refused while a migration runs).
    // The state capture's KVM reads wait for the pause: a vCPU ioctl waits for
    // KVM_RUN to return, which an idle guest halted in the in-kernel LAPIC may
    // not do for seconds.
    TRY(snapshot::flush_disks(m, spec));
    set_phase(p, "stop-and-copy");
    pause_at = Clock::now();
    TRYC(m.pause(), "pause the VM");
    paused = true;
    pause_ms = ms_since(pause_at);
    if (disks) {
      // The devices are stopped: what the guest last wrote to its disks.
      auto td = Clock::now();
      TRYC(send_disks(disks.get(), conn, p), "send the disks' last changes");
      std::lock_guard lock(p.mu);
      p.last_disk_ms = ms_since(td);
    }
    std::vector<uint64_t> last;  // post-copy: the pages the destination still lacks
    if (!o.memfd) {
      auto tl = Clock::now();
      last = TRY(m.take_dirty_pages());
      last_log_ms = ms_since(tl);
      for (size_t i = 0; i < last.size() && i < left.size(); ++i) last[i] |= left[i];
      if (to_postcopy) {
        uint64_t n = popcount(last);
        {
          std::lock_guard lock(p.mu);
          p.phase = "postcopy";
          p.postcopy = true;
          p.postcopy_pages = n;
          p.dirty_pages = n;
        }
        TRYC(conn.send(FrameType::kPostcopy, encode_postcopy(last, m.memory().size())), "send POSTCOPY");
      } else {
        auto tp = Clock::now();
        last_pages = TRY(s.send_bitmap(last));
        last_pages_ms = ms_since(tp);
        std::lock_guard lock(p.mu);
        p.dirty_pages = last_pages;
      }
    }
    if (o.memfd) {
      // The taps go along (the paused devices here leave them alone).
      uint32_t nic = 0;
      for (size_t i = 0; i < m.virtio_count(); ++i) {
        auto* net = dynamic_cast<virtio::NetDevice*>(&m.virtio_transport(i).device());
        if (!net) continue;
        if (net->tap_fd() >= 0) {
          std::vector<uint8_t> payload(4);
          std::memcpy(payload.data(), &nic, 4);
          TRYC(conn.send(FrameType::kTap, payload, net->tap_fd()), cat("hand over the tap of NIC ", nic));
        }
        ++nic;
      }
      // So does the vsock's listening socket: its path cannot be bound twice.
      if (virtio::VsockDevice* vs = vsock_of(m)) {
        std::vector<uint8_t> payload(4, 0);
        TRYC(conn.send(FrameType::kVsock, payload, vs->listener_fd()), cat("hand over the vsock socket ", vs->uds_path()));
      }
    }
    auto tc = Clock::now();
    auto state = TRYC(capture_state(m, spec, vm_config), "capture the VM state");
    capture_ms = ms_since(tc);
    auto tr = Clock::now();
    TRYC(conn.send(FrameType::kState, state), "send STATE");
    TRYC(conn.send(FrameType::kEnd, {}), "send END");
    if (to_postcopy) {
      PostcopyListener in(conn, m.memory().size(), o.ack_timeout_ms);
      auto tp = Clock::now();
      Clock::time_point running_at;
      Status st = serve_postcopy(s, m, p, o, std::move(last), in, running_at, lost);
      in.stop();
      if (lost) {
        restore_wait_ms = std::chrono::duration<double, std::milli>(running_at - tr).count();
        std::lock_guard lock(p.mu);
        p.downtime_ms = std::chrono::duration<double, std::milli>(running_at - pause_at).count();
        p.postcopy_ms = ms_since(tp);
      }
      return st;
    }
    set_phase(p, "waiting");
    TRY(expect_reply(conn, FrameType::kRunning, o.ack_timeout_ms, "RUNNING"));
    restore_wait_ms = ms_since(tr);
    return ok();
  };
  uint64_t ring_full_before = m.dirty_ring_full_exits();
  Status st = run();
  {
    std::lock_guard lock(p.mu);
    p.dirty_ring_full_exits = m.dirty_ring_full_exits() - ring_full_before;
    p.bytes_sent = conn.bytes_sent();
    p.total_ms = ms_since(t0);
    if (paused && !lost) p.downtime_ms = ms_since(pause_at);
    p.source_lost = lost && !st;
    p.pause_ms = pause_ms;
    p.last_log_ms = last_log_ms;
    p.last_pages = last_pages;
    p.last_pages_ms = last_pages_ms;
    p.capture_ms = capture_ms;
    p.restore_wait_ms = restore_wait_ms;
  }
  if (st) {
    // The new VMM listens on the vsock's path now: this one must leave it.
    if (o.memfd)
      if (virtio::VsockDevice* vs = vsock_of(m)) vs->set_owns_path(false);
    set_phase(p, "completed");
    return ok();
  }
  // The destination ran the guest (post-copy) and failed: the copy here is
  // stale, and stays paused for the caller to stop.
  if (lost) return Error(st.error().code(), cat("post-copy failed after the destination started the guest: ",
                                                st.error().message(), "; the guest is lost"));
  // The guest stays here: running again, without the logging's cost.
  if (paused) (void)m.resume();
  if (logging) (void)m.set_dirty_logging(false);
  return st;
}

}  // namespace vessel::vmm::migration
