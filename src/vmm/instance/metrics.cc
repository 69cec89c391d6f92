// The VMM's metrics: what PUT /metrics writes (one JSON line per flush) and
// what `vm state --stats` shows. Names follow Firecracker's metrics where it
// has the same thing: "block_<drive_id>" / "net_<iface_id>" objects with
// read_count, read_bytes, write_count, write_bytes, flush_count,
// rate_limiter_throttled_events, rx/tx_packets_count, rx/tx_bytes_count,
// rx/tx_rate_limiter_throttled, ...; "block" and "net" aggregate them;
// "entropy"; "vcpu" with exit_io_in, exit_io_out, exit_mmio_read,
// exit_mmio_write (all vCPUs); "uart" write_count (bytes the guest wrote to
// COM1); "vmm" rss_kib (vessel's). As in Firecracker, the counters of a
// metrics line count what happened since the previous line (the first line:
// since the start); `vm state --stats` shows totals.
#include <fcntl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/strings.h"
#include "vmm/instance/vmm.h"
#include "vmm/virtio/mmio.h"

namespace vessel::vmm {

using nlohmann::json;

namespace {
// Adds every number of `from` into `into` (the aggregate objects).
void accumulate(json& into, const json& from) {
  for (const auto& [k, v] : from.items()) into[k] = into.value(k, uint64_t{0}) + v.get<uint64_t>();
}

// `now` minus `last`, leaf by leaf, for counters; gauges are kept as they are.
json delta(const json& now, const json& last) {
  if (now.is_object()) {
    json out = json::object();
    for (const auto& [k, v] : now.items()) {
      static const json kNull;
      const json& l = last.is_object() && last.contains(k) ? last[k] : kNull;
      out[k] = k == "rss_kib" ? v : delta(v, l);
    }
    return out;
  }
  if (now.is_number_unsigned() && last.is_number_unsigned() && last.get<uint64_t>() <= now.get<uint64_t>())
    return now.get<uint64_t>() - last.get<uint64_t>();
  return now;
}

uint64_t rss_kib() {
  auto status = read_bounded("/proc/self/status", 64 * 1024);
  if (!status) return 0;
  auto pos = status->find("VmRSS:");
  if (pos == std::string::npos) return 0;
  auto end = status->find('\n', pos);
  std::string v(trim(status->substr(pos + 6, end == std::string::npos ? std::string::npos : end - pos - 6)));
  if (v.size() > 3 && v.compare(v.size() - 3, 3, " kB") == 0) v.resize(v.size() - 3);
  return parse_u64(trim(v)).value_or(0);
}
}  // namespace

json Vmm::metrics_totals() const {
  json m = json::object();
  json block = json::object(), net = json::object();
  for (const auto& d : vm_.devices) {
    json dev = json::object();
    d.transport->device().report_metrics([&dev](const char* name, uint64_t v) { dev[name] = v; });
    if (d.kind == "block") {
      accumulate(block, dev);
      m["block_" + d.id] = dev;
    } else if (d.kind == "net") {
      accumulate(net, dev);
      m["net_" + d.id] = dev;
    } else if (d.kind == "rng") {
      m["entropy"] = dev;
    } else if (!dev.empty()) {
      m[d.kind] = dev;
    }
  }
  if (!block.empty()) m["block"] = block;
  if (!net.empty()) m["net"] = net;
  if (vm_.machine) {
    VcpuExitCounts e = vm_.machine->vcpu_exit_counts();
    m["vcpu"] = {{"exit_io_in", e.exit_io_in},
                 {"exit_io_out", e.exit_io_out},
                 {"exit_mmio_read", e.exit_mmio_read},
                 {"exit_mmio_write", e.exit_mmio_write},
                 {"exit_intr", e.exit_intr}};
  }
  m["uart"] = {{"write_count", serial_->bytes()}};
  m["vmm"] = {{"rss_kib", rss_kib()}};
  return m;
}

Status Vmm::open_metrics(const MetricsConfig& m) {
  if (metrics_fd_) return Error::invalid("metrics_path: the metrics sink is configured already (Firecracker allows one)");
  // O_NONBLOCK: a FIFO without a reader must not block the control loop (and
  // opening one fails with ENXIO, which names the path).
  UniqueFd fd = TRYC(open_file(m.metrics_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600),
                     "metrics_path");
  int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tfd < 0) return Error::from_errno("timerfd_create");
  time_t period = static_cast<time_t>(m.flush_interval_s);
  itimerspec its{{period, 0}, {period, 0}};
  ::timerfd_settime(tfd, 0, &its, nullptr);
  metrics_timer_.reset(tfd);
  metrics_fd_ = std::move(fd);
  opts_.config.metrics = m;
  return ok();
}

Status Vmm::flush_metrics() {
  if (!metrics_fd_) return Error::invalid("FlushMetrics: no metrics sink (PUT /metrics first)");
  json totals = metrics_totals();
  json j = delta(totals, metrics_last_);
  metrics_last_ = std::move(totals);
  j["utc_timestamp_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  j["vessel"] = {{"id", opts_.id}, {"status", status_name(status_)}, {"flush", ++metrics_flushes_}};
  std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  ssize_t n = ::write(metrics_fd_.get(), line.data(), line.size());
  // A FIFO whose reader is gone or slow loses the line, as Firecracker's does; a file error is reported.
  if (n < 0 && errno != EAGAIN && errno != EPIPE) return Error::from_errno(cat("write metrics to ", opts_.config.metrics->metrics_path));
  return ok();
}

}  // namespace vessel::vmm
