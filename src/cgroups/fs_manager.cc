#include "cgroups/fs_manager.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cgroups/freezer.h"
#include "cgroups/paths.h"
#include "cgroups/tree.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/scope_exit.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

constexpr std::string_view kDefaultRoot = "/sys/fs/cgroup";

// Moves a mount point under /sys/fs/cgroup below `root` (tests use a temp dir).
std::string rebase(const std::string& mountpoint, const std::string& root) {
  if (root == kDefaultRoot || !starts_with(mountpoint, kDefaultRoot)) return mountpoint;
  if (mountpoint.size() != kDefaultRoot.size() && mountpoint[kDefaultRoot.size()] != '/') return mountpoint;
  return root + mountpoint.substr(kDefaultRoot.size());
}

std::string join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

nlohmann::json to_json(const HierarchyDir& h) {
  // "owned" is for readers of state.json; load() derives it from "created".
  return {{"mountpoint", h.mountpoint}, {"controllers", h.controllers}, {"path", h.path},
          {"created", h.created},       {"owned", h.owned()}};
}

Result<HierarchyDir> hierarchy_from_json(const nlohmann::json& j, int version) {
  if (!j.is_object() || !j.contains("mountpoint") || !j["mountpoint"].is_string() || !j.contains("path") ||
      !j["path"].is_string())
    return Error::invalid("saved cgroup state: malformed hierarchy entry");
  HierarchyDir h;
  h.version = version;
  h.mountpoint = j["mountpoint"].get<std::string>();
  h.path = j["path"].get<std::string>();
  try {
    if (j.contains("controllers")) h.controllers = j["controllers"].get<std::vector<std::string>>();
    if (j.contains("created")) h.created = j["created"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    return Error::invalid("saved cgroup state: malformed hierarchy entry");
  }
  return h;
}

}  // namespace

bool HierarchyDir::holds(std::string_view controller) const {
  return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
}

Status make_dirs(HierarchyDir& h) {
  struct stat st{};
  if (::stat(h.mountpoint.c_str(), &st) < 0) return Error::from_errno(cat("stat ", h.mountpoint));
  std::string cur = h.mountpoint;
  for (const auto& part : split(h.path, '/')) {
    if (part.empty()) continue;
    cur += '/';
    cur += part;
    if (::mkdir(cur.c_str(), 0755) == 0) {
      h.created.push_back(cur);
    } else if (errno != EEXIST) {
      return Error::from_errno(cat("mkdir ", cur));
    }
  }
  return ok();
}

std::vector<std::string> missing_dirs(const HierarchyDir& h) {
  std::vector<std::string> out;
  std::string cur = h.mountpoint;
  for (const auto& part : split(h.path, '/')) {
    if (part.empty()) continue;
    cur += '/';
    cur += part;
    if (!out.empty() || !path_exists(cur)) out.push_back(cur);
  }
  return out;
}

Result<std::unique_ptr<Manager>> Manager::plan(const Options& options) {
  auto m = TRY(FsManager::plan(options));
  return std::unique_ptr<Manager>(std::move(m));
}

Result<std::unique_ptr<Manager>> Manager::create(const Options& options) {
  auto m = TRY(FsManager::plan(options));
  TRY(m->make());
  return std::unique_ptr<Manager>(std::move(m));
}

Result<std::unique_ptr<Manager>> Manager::load(const std::string& saved) {
  auto m = TRY(FsManager::load(saved));
  return std::unique_ptr<Manager>(std::move(m));
}

namespace {

// runc's rules for a cgroup the config names that exists already: it must not be the
// hierarchy's root, have processes (they are someone else's: delete would have to
// leave them or kill them), or be frozen (the container would start frozen).
Status check_existing(const HierarchyDir& h, const std::string& cgroups_path) {
  std::string field = cat("linux.cgroupsPath \"", cgroups_path, "\"");
  if (h.path == "/") return Error::invalid(cat(field, ": the root cgroup of ", h.mountpoint, " cannot be a container's cgroup"));
  if (!path_exists(h.dir())) return ok();
  auto pids = list_pids_recursive(h.dir());
  if (pids && !pids->empty())
    return Error(EBUSY, cat(field, ": container's cgroup is not empty: ", pids->size(), " process(es) found in ", h.dir()));
  CgroupDir d(h.dir());
  bool frozen = false;
  if (h.version == 1 && h.holds("freezer")) {
    auto state = d.read("freezer.state");
    frozen = state && *state != "THAWED";
  } else if (h.version == 2) {
    auto f = d.read("cgroup.freeze");
    frozen = f && *f == "1";
  }
  if (frozen) return Error(EBUSY, cat(field, ": container's cgroup unexpectedly frozen: ", h.dir()));
  return ok();
}

}  // namespace

Result<std::unique_ptr<FsManager>> FsManager::plan(const Options& o) {
  std::string mountinfo = o.mountinfo.empty() ? TRY(read_file("/proc/self/mountinfo")) : o.mountinfo;
  std::string proc_cgroup = o.proc_cgroup.empty() ? TRY(read_file("/proc/self/cgroup")) : o.proc_cgroup;
  auto table = TRY(parse_mountinfo(mountinfo));
  auto self = TRY(parse_proc_cgroup(proc_cgroup));
  std::string name = default_cgroup_name(o.container_id, o.state_root);

  auto make = [&](const Hierarchy& h) -> Result<HierarchyDir> {
    HierarchyDir d;
    d.version = h.version;
    d.mountpoint = rebase(h.mountpoint, o.root);
    d.controllers = h.controllers;
    d.path = TRY(resolve_path(o.cgroups_path, name, own_path_for(h, self)));
    TRY(check_existing(d, o.cgroups_path.empty() ? d.path : o.cgroups_path));
    d.created = missing_dirs(d);
    return d;
  };
  std::vector<HierarchyDir> v1;
  for (const auto& h : table.v1) v1.push_back(TRY(make(h)));
  std::optional<HierarchyDir> v2;
  if (table.v2) v2 = TRY(make(*table.v2));
  return std::make_unique<FsManager>(table.layout, std::move(v1), std::move(v2), o.write_log, o.device_installer);
}

Status FsManager::make() {
  // From here `created` lists what was really made: a directory that appeared since
  // plan() is someone else's.
  for (auto& h : v1_) h.created.clear();
  if (v2_) v2_->created.clear();
  ScopeExit undo([&] { (void)destroy(); });
  for (auto& h : v1_) TRY(create_v1(h, log_));
  if (v2_) TRY(create_v2(*v2_, log_));
  undo.dismiss();
  log::debug("cgroups", cat("created cgroups (", layout_name(layout_), ")"));
  return ok();
}

bool FsManager::owned() const {
  for (const auto& h : v1_)
    if (!h.owned()) return false;
  if (v2_ && !v2_->owned()) return false;
  return !v1_.empty() || v2_.has_value();
}

std::string FsManager::save() const {
  nlohmann::json j = {{"layout", layout_name(layout_)}};
  nlohmann::json v1 = nlohmann::json::array();
  for (const auto& h : v1_) v1.push_back(to_json(h));
  j["v1"] = std::move(v1);
  if (v2_) j["v2"] = to_json(*v2_);
  return j.dump();
}

Result<std::unique_ptr<FsManager>> FsManager::load(const std::string& saved) {
  auto j = nlohmann::json::parse(saved, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("layout") || !j["layout"].is_string())
    return Error::invalid("saved cgroup state: not a cgroup state object");
  Layout layout = TRY(layout_from_name(j["layout"].get<std::string>()));
  std::vector<HierarchyDir> v1;
  if (j.contains("v1")) {
    if (!j["v1"].is_array()) return Error::invalid("saved cgroup state: v1 is not an array");
    for (const auto& e : j["v1"]) v1.push_back(TRY(hierarchy_from_json(e, 1)));
  }
  std::optional<HierarchyDir> v2;
  if (j.contains("v2")) v2 = TRY(hierarchy_from_json(j["v2"], 2));
  return std::make_unique<FsManager>(layout, std::move(v1), std::move(v2), nullptr);
}

const HierarchyDir* FsManager::v1_for(std::string_view controller) const {
  for (const auto& h : v1_)
    if (h.holds(controller)) return &h;
  return nullptr;
}

bool FsManager::v2_has(std::string_view controller) const {
  if (!v2_) return false;
  if (!v2_controllers_) {
    auto text = CgroupDir(v2_->dir()).read("cgroup.controllers");
    v2_controllers_ = text ? split(*text, ' ') : std::vector<std::string>{};
  }
  return std::find(v2_controllers_->begin(), v2_controllers_->end(), controller) != v2_controllers_->end();
}

std::string FsManager::dir_for(const std::string& controller) const {
  if (controller.empty()) return v2_ ? v2_->dir() : std::string();
  if (const auto* h = v1_for(controller)) return h->dir();
  if (v2_has(controller)) return v2_->dir();
  return "";
}

StatsSources FsManager::stats_sources() const {
  auto source = [&](std::string_view controller) -> ControllerDir {
    if (const auto* h = v1_for(controller)) return {h->dir(), 1};
    // cpu.stat is a core v2 file: usage is there without the cpu controller.
    bool core = controller == "cpu" || controller == "cpuacct";
    std::string_view v2_name = controller == "blkio" ? "io" : controller == "cpuacct" ? "cpu" : controller;
    if (v2_ && (core || v2_has(v2_name))) return {v2_->dir(), 2};
    return {};
  };
  StatsSources s;
  s.cpu = source("cpu");
  s.cpuacct = source("cpuacct");
  s.memory = source("memory");
  s.pids = source("pids");
  s.blkio = source("blkio");
  s.hugetlb = source("hugetlb");
  return s;
}

Result<Stats> FsManager::stats() const { return read_stats(stats_sources()); }

Result<uint64_t> FsManager::oom_kill_count() const { return read_oom_kill_count(stats_sources().memory); }

Result<OomNotifier> FsManager::notify_oom() const { return OomNotifier::open(stats_sources().memory); }

Status FsManager::add_process(pid_t pid) {
  for (const auto& h : v1_) TRYC(dir(h).write("cgroup.procs", std::to_string(pid)), cat("add process ", pid));
  if (v2_) TRYC(dir(*v2_).write("cgroup.procs", std::to_string(pid)), cat("add process ", pid));
  return ok();
}

Result<CgroupDir> FsManager::freezer_dir(int* version) const {
  if (const auto* h = v1_for("freezer")) {
    *version = 1;
    return dir(*h);
  }
  if (v2_) {
    *version = 2;
    return dir(*v2_);
  }
  return Error(ENOTSUP, "no freezer: neither a v1 freezer hierarchy nor cgroup v2 is mounted");
}

Status FsManager::freeze() {
  int version = 0;
  auto d = TRY(freezer_dir(&version));
  return (version == 1 ? freeze_v1(d) : freeze_v2(d)).context("freeze the container");
}

Status FsManager::thaw() {
  int version = 0;
  auto d = TRY(freezer_dir(&version));
  return (version == 1 ? thaw_v1(d) : thaw_v2(d)).context("thaw the container");
}

Result<bool> FsManager::frozen() const {
  int version = 0;
  auto d = TRY(freezer_dir(&version));
  return version == 1 ? frozen_v1(d) : frozen_v2(d);
}

Result<std::vector<pid_t>> FsManager::pids() const {
  // Every hierarchy holds all processes; prefer the one the freezer acts on.
  std::string d;
  if (layout_ == Layout::kV2 && v2_) {
    d = v2_->dir();
  } else if (const auto* h = v1_for("freezer")) {
    d = h->dir();
  } else if (v2_) {
    d = v2_->dir();
  } else if (!v1_.empty()) {
    d = v1_.front().dir();
  } else {
    return Error(ENOENT, "no cgroup hierarchy");
  }
  return list_pids_recursive(d);
}

Status FsManager::kill_all(int sig) {
  // cgroup.kill cannot wake tasks a v1 freezer holds (hybrid hosts): those take the slow path.
  if (sig == SIGKILL && v2_ && !v1_for("freezer")) {
    CgroupDir d = dir(*v2_);
    if (d.has("cgroup.kill")) return d.write("cgroup.kill", "1").context("kill the container's processes");
  }
  // Freeze so no process forks behind our back while we signal the list.
  int version = 0;
  bool was_frozen = false, froze = false;
  if (auto fd = freezer_dir(&version)) {
    auto f = frozen();
    was_frozen = f && *f;
    froze = was_frozen || freeze().ok();
  }
  Status result;
  auto list = pids();
  if (!list) {
    result = std::move(list).error();
  } else {
    for (pid_t pid : *list) {
      if (::kill(pid, sig) < 0 && errno != ESRCH && result)
        result = Error::from_errno(cat("kill ", pid, " with signal ", sig));
    }
  }
  // Stopped processes only act on their signal once thawed; a paused container stays
  // paused unless the signal is SIGKILL.
  if (froze && (!was_frozen || sig == SIGKILL)) {
    auto st = thaw();
    if (!st && result) result = std::move(st);
  }
  return result;
}

Status FsManager::destroy() {
  Status result;
  auto remove = [&](const HierarchyDir& h) {
    // Only what vessel made: a cgroup the config named that existed before is left
    // as it was (with its processes and sub-cgroups).
    if (h.owned()) {
      auto st = remove_cgroup_tree(h.dir(), 3000);
      if (!st && result) result = std::move(st);
    }
    // Parents we made, innermost first, when nothing else uses them.
    for (auto it = h.created.rbegin(); it != h.created.rend(); ++it) {
      if (*it == h.dir()) continue;
      if (::rmdir(it->c_str()) < 0 && errno != ENOENT && errno != EBUSY && errno != ENOTEMPTY && result)
        result = Error::from_errno(cat("rmdir ", *it));
    }
  };
  for (const auto& h : v1_) remove(h);
  if (v2_) remove(*v2_);
  return std::move(result).context("remove the container's cgroups");
}

std::vector<Manager::Mount> FsManager::mounts() const {
  std::vector<Mount> out;
  for (const auto& h : v1_) out.push_back({h.mountpoint, "cgroup", join(h.controllers, ','), h.path});
  if (v2_) out.push_back({v2_->mountpoint, "cgroup2", "", v2_->path});
  return out;
}

}  // namespace vessel::cgroups
