#include "container/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "common/clock.h"
#include "common/fs.h"
#include "common/strings.h"
#include "oci/json_reader.h"

namespace vessel::container {

using oci::Json;

const char* status_name(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::kCreating: return "creating";
    case ContainerStatus::kCreated: return "created";
    case ContainerStatus::kRunning: return "running";
    case ContainerStatus::kPaused: return "paused";
    case ContainerStatus::kStopped: return "stopped";
  }
  return "unknown";
}

Status validate_id(const std::string& id) {
  if (id.empty()) return Error::invalid("container ID: must not be empty");
  if (id.size() > 1024) return Error::invalid("container ID: longer than 1024 characters");
  if (id == "." || id == "..") return Error::invalid(cat("container ID \"", id, "\": not allowed"));
  for (char c : id) {
    bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '+' ||
               c == '-' || c == '.';
    if (!okc) return Error::invalid(cat("container ID \"", id, "\": invalid character '", c, "' (allowed: letters, digits, _ + - .)"));
  }
  return ok();
}

uint64_t process_start_time(pid_t pid) {
  auto text = read_file(cat("/proc/", pid, "/stat"));
  if (!text) return 0;
  // Fields after the command name, which is in parentheses and may contain spaces.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return 0;
  auto fields = split(std::string_view(*text).substr(close + 2), ' ');
  // fields[0] is field 3 (state); start time is field 22.
  if (fields.size() < 20 || fields[0] == "Z" || fields[0] == "X") return 0;
  return parse_u64(fields[19]).value_or(0);
}

bool process_alive(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  uint64_t st = process_start_time(pid);
  return st != 0 && (start_time == 0 || st == start_time);
}

static Result<UniqueFd> lock_dir(const std::string& path) {
  auto fd = TRY(open_file(path + "/.lock", O_RDWR | O_CREAT, 0600));
  while (::flock(fd.get(), LOCK_EX) < 0) {
    if (errno != EINTR) return Error::from_errno(cat("lock ", path));
  }
  return fd;
}

Result<ContainerDir> ContainerDir::create(const std::string& root, const std::string& id) {
  TRY(validate_id(id));
  TRYC(mkdir_p(root, 0711), "state root");
  std::string path = path_join(root, id);
  if (::mkdir(path.c_str(), 0711) < 0) {
    if (errno == EEXIST) return Error(EEXIST, cat("container \"", id, "\" already exists"));
    return Error::from_errno(cat("mkdir ", path));
  }
  auto lock = lock_dir(path);
  if (!lock) {
    ::rmdir(path.c_str());
    return std::move(lock).error();
  }
  return ContainerDir(path, std::move(*lock));
}

Result<ContainerDir> ContainerDir::open(const std::string& root, const std::string& id) {
  TRY(validate_id(id));
  std::string path = path_join(root, id);
  struct stat st{};
  if (::stat(path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
    return Error(ENOENT, cat("container \"", id, "\" does not exist"));
  auto lock = TRY(lock_dir(path));
  // A concurrent delete may have removed it while we waited for the lock.
  if (!path_exists(path + "/state.json")) return Error(ENOENT, cat("container \"", id, "\" does not exist"));
  return ContainerDir(path, std::move(lock));
}

Result<State> ContainerDir::load() const {
  std::string file = path_ + "/state.json";
  auto text = TRY(read_file(file));
  auto j = TRY(oci::parse_json(text, file));
  auto o = TRY(oci::JsonObject::at(j, ""));
  State s;
  s.oci_version = TRY(o.string("ociVersion"));
  s.id = TRY(o.string("id"));
  s.pid = static_cast<pid_t>(TRY(o.opt_i64("pid")).value_or(0));
  s.pid_start_time = TRY(o.opt_u64("pidStartTime")).value_or(0);
  s.bundle = TRY(o.string("bundle"));
  s.rootfs = TRY(o.string("rootfs"));
  s.created = TRY(o.string("created"));
  s.owner = TRY(o.string("owner"));
  s.annotations = TRY(o.string_map("annotations"));
  s.cgroup = TRY(o.string("cgroup"));
  s.own_pid_ns = TRY(o.boolean("ownPidNamespace", true));
  s.systemd_cgroup = TRY(o.boolean("systemdCgroup", false));
  return s;
}

Status ContainerDir::save(const State& s) const {
  Json j = {{"ociVersion", s.oci_version}, {"id", s.id},         {"pid", s.pid},
            {"pidStartTime", s.pid_start_time}, {"bundle", s.bundle}, {"rootfs", s.rootfs},
            {"created", s.created},        {"owner", s.owner},   {"annotations", s.annotations},
            {"cgroup", s.cgroup},          {"ownPidNamespace", s.own_pid_ns}, {"systemdCgroup", s.systemd_cgroup}};
  return write_file_atomic(path_ + "/state.json", j.dump());
}

Status ContainerDir::remove() { return remove_tree(path_); }

std::vector<std::string> list_ids(const std::string& root) {
  std::vector<std::string> ids;
  DIR* d = ::opendir(root.c_str());
  if (!d) return ids;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (path_exists(path_join(root, n) + "/state.json")) ids.push_back(n);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

ContainerStatus live_status(const State& s, const std::string& dir, bool frozen) {
  if (!process_alive(s.pid, s.pid_start_time)) return ContainerStatus::kStopped;
  if (path_exists(dir + "/exec.fifo")) return ContainerStatus::kCreated;
  if (frozen) return ContainerStatus::kPaused;
  return ContainerStatus::kRunning;
}

std::string state_json(const State& s, ContainerStatus status, bool pretty) {
  Json j = {{"ociVersion", s.oci_version},
            {"id", s.id},
            {"pid", status == ContainerStatus::kStopped ? 0 : s.pid},
            {"status", status_name(status)},
            {"bundle", s.bundle},
            {"rootfs", s.rootfs},
            {"created", s.created},
            {"owner", s.owner}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return pretty ? j.dump(2) : j.dump();
}


}  // namespace vessel::container
