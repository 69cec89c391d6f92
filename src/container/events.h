// `events`: a running container's resource usage and OOM kills as runc's JSON
// lines ({"type":"stats","id":ID,"data":{...}} and {"type":"oom","id":ID}).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "cgroups/stats.h"
#include "common/error.h"

namespace vessel::container {

struct EventsOptions {
  std::string root;  // state root (--root)
  std::string id;
  bool stats_only = false;  // --stats: one stats line, then return
  std::chrono::nanoseconds interval = std::chrono::seconds(5);
};

// Receives each event line (without the newline).
using EventSink = std::function<void(const std::string& line)>;

// With stats_only, emits one stats event. Otherwise emits a stats event every
// interval and an oom event whenever the container's OOM-kill count rises, until
// the container stops (a last OOM check is made then) and returns ok. Holds the
// container's lock only while reading its state. An error if the container is
// stopped when called (as runc).
Status events(const EventsOptions& o, const EventSink& emit);

// The event lines.
std::string stats_event(const std::string& id, const cgroups::Stats& s);
std::string oom_event(const std::string& id);

// Parses a Go duration ("5s", "500ms", "1m30s", "1.5h", "100us"); must be > 0.
Result<std::chrono::nanoseconds> parse_duration(std::string_view s);

}  // namespace vessel::container
