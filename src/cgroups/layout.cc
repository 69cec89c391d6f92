#include "cgroups/layout.h"

#include <algorithm>
#include <array>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

// The v1 controllers a kernel may have; other super options (rw, relatime,
// clone_children, release_agent=...) are mount flags.
constexpr std::array<std::string_view, 15> kV1Controllers = {
    "cpu",     "cpuacct",    "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
    "blkio",   "perf_event", "hugetlb", "pids",  "rdma",    "misc",    "debug"};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
        s[i + 3] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string> space_fields(std::string_view line) {
  std::vector<std::string> out;
  for (auto& f : split(line, ' '))
    if (!f.empty()) out.push_back(std::move(f));
  return out;
}

}  // namespace

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::kV1: return "v1";
    case Layout::kV2: return "v2";
    case Layout::kHybrid: return "hybrid";
  }
  return "?";
}

Result<Layout> layout_from_name(std::string_view name) {
  if (name == "v1") return Layout::kV1;
  if (name == "v2") return Layout::kV2;
  if (name == "hybrid") return Layout::kHybrid;
  return Error::invalid(cat("unknown cgroup layout \"", name, "\""));
}

Result<MountTable> parse_mountinfo(std::string_view text) {
  MountTable t;
  std::vector<Hierarchy> v2s;
  for (const auto& line : split(text, '\n')) {
    auto f = space_fields(line);
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
    auto dash = std::find(f.begin(), f.end(), "-");
    if (dash == f.end() || dash - f.begin() < 6 || f.end() - dash < 3) continue;
    const std::string& fstype = *(dash + 1);
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    Hierarchy h;
    h.root = unescape(f[3]);
    h.mountpoint = unescape(f[4]);
    if (fstype == "cgroup2") {
      h.version = 2;
      v2s.push_back(std::move(h));
      continue;
    }
    const std::string super = f.end() - dash >= 4 ? *(dash + 3) : "";
    for (const auto& opt : split(super, ',')) {
      if (starts_with(opt, "name=") ||
          std::find(kV1Controllers.begin(), kV1Controllers.end(), opt) != kV1Controllers.end())
        h.controllers.push_back(opt);
    }
    if (h.controllers.empty()) continue;
    std::sort(h.controllers.begin(), h.controllers.end());
    // A hierarchy mounted twice (bind mounts): keep the first.
    bool seen = std::any_of(t.v1.begin(), t.v1.end(),
                            [&](const Hierarchy& o) { return o.controllers == h.controllers; });
    if (!seen) t.v1.push_back(std::move(h));
  }
  if (!v2s.empty()) {
    // Prefer the usual places over a stray bind mount.
    auto it = std::find_if(v2s.begin(), v2s.end(), [](const Hierarchy& h) {
      return h.mountpoint == "/sys/fs/cgroup" || h.mountpoint == "/sys/fs/cgroup/unified";
    });
    t.v2 = it != v2s.end() ? *it : v2s.front();
  }
  if (t.v1.empty() && !t.v2) return Error(ENOENT, "no cgroup filesystem is mounted");
  t.layout = t.v1.empty() ? Layout::kV2 : (t.v2 ? Layout::kHybrid : Layout::kV1);
  return t;
}

Result<Layout> detect_layout(std::string_view mountinfo) { return TRY(parse_mountinfo(mountinfo)).layout; }

Result<Layout> detect_layout() {
  auto text = TRY(read_file("/proc/self/mountinfo"));
  return detect_layout(text);
}

Result<std::vector<ProcCgroup>> parse_proc_cgroup(std::string_view text) {
  std::vector<ProcCgroup> out;
  for (const auto& line : split(text, '\n')) {
    if (trim(line).empty()) continue;
    // hierarchy-ID:controller-list:path (the path may contain ':')
    auto a = line.find(':');
    auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) return Error::invalid(cat("malformed /proc/self/cgroup line \"", line, "\""));
    ProcCgroup p;
    for (auto& c : split(std::string_view(line).substr(a + 1, b - a - 1), ','))
      if (!c.empty()) p.controllers.push_back(std::move(c));
    std::sort(p.controllers.begin(), p.controllers.end());
    p.path = line.substr(b + 1);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace vessel::cgroups
