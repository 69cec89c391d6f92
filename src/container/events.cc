#include "container/events.h"

#include <poll.h>

#include <cmath>
#include <algorithm>
#include <memory>
#include <optional>

#include "cgroups/manager.h"
#include "cgroups/oom_notify.h"
#include "common/log.h"
#include "common/strings.h"
#include "container/state.h"

namespace vessel::container {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often the OOM counter and the container's life are checked between
// notifications (the notifier usually wakes us first).
constexpr milliseconds kCheckPeriod{100};

struct Target {
  State state;
  std::unique_ptr<cgroups::Manager> cgroup;
};

// Loads the container under its lock (released on return) and refuses a stopped one.
Result<Target> open_target(const std::string& root, const std::string& id) {
  auto dir = TRY(ContainerDir::open(root, id));
  Target t;
  t.state = TRY(dir.load());
  t.cgroup = TRYC(cgroups::Manager::load(t.state.cgroup), cat("container \"", id, "\" cgroups"));
  if (!process_alive(t.state.pid, t.state.pid_start_time))
    return Error::invalid(cat("container with id ", id, " is not running"));
  return t;
}

}  // namespace

std::string stats_event(const std::string& id, const cgroups::Stats& s) {
  nlohmann::ordered_json j = {{"type", "stats"}, {"id", id}, {"data", cgroups::to_runc_json(s)}};
  return j.dump();
}

std::string oom_event(const std::string& id) {
  nlohmann::ordered_json j = {{"type", "oom"}, {"id", id}};
  return j.dump();
}

Status events(const EventsOptions& o, const EventSink& emit) {
  if (o.interval.count() <= 0) return Error::invalid("--interval: the interval must be greater than 0");
  auto t = TRYC(open_target(o.root, o.id), cat("events ", o.id));
  const cgroups::Manager& cg = *t.cgroup;
  if (o.stats_only) {
    auto s = TRYC(cg.stats(), cat("events ", o.id));
    emit(stats_event(o.id, s));
    return ok();
  }

  // OOM kills: the counter is the truth; the notifier only wakes us early.
  auto baseline = cg.oom_kill_count();
  bool watch_oom = baseline.ok();
  uint64_t oom_seen = watch_oom ? *baseline : 0;
  if (!watch_oom) log::warn("events", cat("OOM events unavailable: ", baseline.error().message()));
  std::optional<cgroups::OomNotifier> notifier;
  if (watch_oom) {
    auto n = cg.notify_oom();
    if (n) {
      notifier.emplace(std::move(*n));
    } else {
      log::debug("events", cat("polling for OOM kills: ", n.error().message()));
    }
  }
  auto check_oom = [&] {
    if (!watch_oom) return;
    auto n = cg.oom_kill_count();
    if (n && *n > oom_seen) {
      oom_seen = *n;
      emit(oom_event(o.id));
    }
  };

  auto next_stats = Clock::now() + o.interval;
  while (true) {
    if (!process_alive(t.state.pid, t.state.pid_start_time)) {
      check_oom();  // a kill that ended the container
      return ok();
    }
    auto now = Clock::now();
    if (now >= next_stats) {
      auto s = cg.stats();
      if (s) {
        emit(stats_event(o.id, *s));
      } else {
        log::warn("events", cat("stats of ", o.id, ": ", s.error().message()));
      }
      next_stats += o.interval;
      if (next_stats < now) next_stats = now + o.interval;  // fell behind (suspend, slow reads)
      continue;
    }
    auto wait = std::min<Clock::duration>(next_stats - now, kCheckPeriod);
    int timeout_ms = static_cast<int>(std::chrono::ceil<milliseconds>(wait).count());
    if (notifier) {
      pollfd p{notifier->fd(), POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) > 0) notifier->drain();
    } else {
      ::poll(nullptr, 0, timeout_ms);
    }
    check_oom();
  }
}

Result<std::chrono::nanoseconds> parse_duration(std::string_view s) {
  std::string_view in = s;
  if (s.empty()) return Error::invalid("invalid duration \"\"");
  double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == 0) return Error::invalid(cat("invalid duration \"", in, "\""));
    std::string number(s.substr(0, i));
    if (std::count(number.begin(), number.end(), '.') > 1) return Error::invalid(cat("invalid duration \"", in, "\""));
    double value = std::strtod(number.c_str(), nullptr);
    s.remove_prefix(i);
    size_t j = 0;
    while (j < s.size() && !((s[j] >= '0' && s[j] <= '9') || s[j] == '.')) ++j;
    std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    double scale;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else if (unit.empty()) return Error::invalid(cat("missing unit in duration \"", in, "\""));
    else return Error::invalid(cat("unknown unit \"", unit, "\" in duration \"", in, "\""));
    total += value * scale;
  }
  if (total > 9.2e18) return Error::invalid(cat("invalid duration \"", in, "\": too long"));
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(total)));
}

}  // namespace vessel::container
