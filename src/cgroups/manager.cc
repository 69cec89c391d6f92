#include "cgroups/manager.h"

#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {
class Simple : public Manager {
 public:
  std::vector<Mount> ms;
  std::string save() const override {
    oci::Json j = oci::Json::array();
    for (auto& m : ms) j.push_back({m.mountpoint, m.fstype, m.options, m.path});
    return j.dump();
  }
  Status add_process(pid_t pid) override {
    for (auto& m : ms) TRY(write_file(path_join(path_join(m.mountpoint, m.path), "cgroup.procs"), std::to_string(pid)));
    return ok();
  }
  Result<std::vector<pid_t>> pids() const override {
    std::vector<pid_t> out;
    auto t = TRY(read_file(path_join(path_join(ms[0].mountpoint, ms[0].path), "cgroup.procs")));
    for (auto& l : split(t, '\n'))
      if (auto v = parse_u64(l)) out.push_back(static_cast<pid_t>(*v));
    return out;
  }
  Status kill_all(int sig) override {
    for (pid_t p : TRY(pids())) ::kill(p, sig);
    return ok();
  }
  Status destroy() override {
    for (auto& m : ms) {
      std::string p = path_join(m.mountpoint, m.path);
      for (int i = 0; i < 100 && ::rmdir(p.c_str()) < 0 && errno == EBUSY; ++i) ::usleep(10000);
    }
    return ok();
  }
  Result<bool> frozen() const override { return false; }
  std::vector<Mount> mounts() const override { return ms; }
};
}  // namespace

Result<std::unique_ptr<Manager>> Manager::create(const Options& o) {
  auto s = std::make_unique<Simple>();
  std::string rel = o.cgroups_path.empty() ? "/vessel/" + o.container_id : o.cgroups_path;
  if (rel[0] != '/') rel = "/" + rel;
  auto mi = TRY(read_file("/proc/self/mountinfo"));
  for (auto& line : split(mi, '\n')) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto f = split(line.substr(0, dash), ' ');
    auto g = split(line.substr(dash + 3), ' ');
    if (g.size() < 3 || f.size() < 5) continue;
    if (g[0] == "cgroup2") s->ms.push_back({f[4], "cgroup2", "", rel});
    if (g[0] == "cgroup") {
      std::string opts;
      for (auto& o2 : split(g[2], ','))
        if (o2 != "rw" && o2 != "ro" && o2 != "relatime") opts += (opts.empty() ? "" : ",") + o2;
      s->ms.push_back({f[4], "cgroup", opts, rel});
    }
  }
  for (auto& m : s->ms) {
    std::string p = path_join(m.mountpoint, rel);
    TRY(mkdir_p(p));
    if (m.options.find("cpuset") != std::string::npos) {
      // copy cpus/mems down
      std::string cur = m.mountpoint;
      for (auto& part : split(rel, '/')) {
        if (part.empty()) continue;
        std::string next = path_join(cur, part);
        for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
          auto v = read_file(path_join(next, f));
          if (v && trim(*v).empty()) TRY(write_file(path_join(next, f), *read_file(path_join(cur, f))));
        }
        cur = next;
      }
    }
  }
  return std::unique_ptr<Manager>(std::move(s));
}

Result<std::unique_ptr<Manager>> Manager::load(const std::string& saved) {
  auto s = std::make_unique<Simple>();
  auto j = TRY(oci::parse_json(saved, "cgroup state"));
  for (auto& e : j) s->ms.push_back({e[0], e[1], e[2], e[3]});
  return std::unique_ptr<Manager>(std::move(s));
}

}  // namespace vessel::cgroups
