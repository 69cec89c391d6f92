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
#include "common/crash_point.h"
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

namespace {

// Removes everything in `dir` but its lock file (and state.json with `keep_state`).
Status empty_but_lock(const std::string& dir, bool keep_state = false) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Error::from_errno(cat("opendir ", dir));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != ".." && n != ".lock" && !(keep_state && n == "state.json")) names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) TRY(remove_tree(path_join(dir, n)));
  return ok();
}

// Makes <root>/.tmp/<id> (or takes over the one a killed create left) and locks it.
// Fails with EEXIST while another live create holds it.
Result<UniqueFd> make_locked_tmp(const std::string& tmp, const std::string& id) {
  std::string parent = tmp.substr(0, tmp.rfind('/'));
  for (int attempt = 0;; ++attempt) {
    if (::mkdir(parent.c_str(), 0700) < 0 && errno != EEXIST) return Error::from_errno(cat("mkdir ", parent));
    if (::mkdir(tmp.c_str(), 0711) == 0 || errno == EEXIST) break;
    // ENOENT: another create removed the empty .tmp meanwhile.
    if (errno != ENOENT || attempt == 10) return Error::from_errno(cat("mkdir ", tmp));
  }
  auto fd = TRY(open_file(tmp + "/.lock", O_RDWR | O_CREAT, 0600));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) return Error(EEXIST, cat("container \"", id, "\" already exists (being created)"));
    return Error::from_errno(cat("lock ", tmp));
  }
  TRY(empty_but_lock(tmp));  // what a create killed before its rename left
  return fd;
}

}  // namespace

namespace {
bool is_container_dir(const std::string& path);
}  // namespace

Result<ContainerDir> ContainerDir::create(const std::string& root, const std::string& id) {
  TRY(validate_id(id));
  TRYC(mkdir_p(root, 0711), "state root");
  std::string path = path_join(root, id);
  // An empty directory of that name (a delete killed between removing the lock and
  // the directory) is no container: the rename below replaces it.
  if (is_container_dir(path)) return Error(EEXIST, cat("container \"", id, "\" already exists"));
  // The directory appears under its name with its lock file in it and locked (made
  // aside, then renamed): list and delete never see one without a lock.
  std::string tmp = path_join(path_join(root, ".tmp"), id);
  auto lock = TRY(make_locked_tmp(tmp, id));
  crash_point("create:tmp-dir");
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    int err = errno;
    (void)remove_tree(tmp);
    if (err == EEXIST || err == ENOTEMPTY) return Error(EEXIST, cat("container \"", id, "\" already exists"));
    return Error::from_errno(err, cat("rename ", tmp, " to ", path));
  }
  ::rmdir(path_join(root, ".tmp").c_str());  // when no other create uses it
  return ContainerDir(path, std::move(lock));
}

Status ContainerDir::remove_stale(const std::string& root, const std::string& id) {
  TRY(validate_id(id));
  std::string tmp = path_join(path_join(root, ".tmp"), id);
  if (!path_exists(tmp)) return ok();
  auto fd = open_file(tmp + "/.lock", O_RDWR | O_CREAT, 0600);
  if (!fd) return fd.error().code() == ENOENT ? ok() : Status(std::move(fd).error());
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) < 0) return ok();  // a create in progress
  TRY(remove_tree(tmp));
  ::rmdir(path_join(root, ".tmp").c_str());
  return ok();
}

namespace {

Error not_found(const std::string& id) { return Error(ENOENT, cat("container \"", id, "\" does not exist")); }

// A container directory: a directory holding state.json or the lock file.
bool is_container_dir(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) return false;
  return path_exists(path + "/state.json") || path_exists(path + "/.lock");
}

// The same file: the lock we hold is still the directory's (not one a concurrent delete unlinked).
bool same_file(int fd, const std::string& path) {
  struct stat a{}, b{};
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

Result<ContainerDir> ContainerDir::open(const std::string& root, const std::string& id) {
  TRY(validate_id(id));
  std::string path = path_join(root, id);
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (!is_container_dir(path)) return not_found(id);
    auto fd = open_file(path + "/.lock", O_RDWR | O_CREAT, 0600);
    if (!fd) {
      if (fd.error().code() == ENOENT) return not_found(id);  // removed meanwhile
      return std::move(fd).error();
    }
    while (::flock(fd->get(), LOCK_EX) < 0) {
      if (errno != EINTR) return Error::from_errno(cat("lock ", path));
    }
    // A concurrent delete may have removed it (and a create made it again) while we waited.
    if (same_file(fd->get(), path + "/.lock")) return ContainerDir(path, std::move(*fd));
  }
  return Error(EAGAIN, cat("container \"", id, "\": its directory keeps changing"));
}

Result<State> ContainerDir::peek(const std::string& root, const std::string& id, bool* busy) {
  TRY(validate_id(id));
  std::string path = path_join(root, id);
  if (!is_container_dir(path)) return not_found(id);
  *busy = false;
  if (auto fd = open_file(path + "/.lock", O_RDONLY)) {
    if (::flock(fd->get(), LOCK_SH | LOCK_NB) < 0) *busy = errno == EWOULDBLOCK;
  }
  ContainerDir view(path, UniqueFd());
  return view.load();
}

Result<State> ContainerDir::load() const {
  std::string file = path_ + "/state.json";
  if (!path_exists(file)) {
    State s;
    s.id = path_.substr(path_.rfind('/') + 1);
    s.root = path_.substr(0, path_.rfind('/'));
    s.creating = true;
    return s;
  }
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
  s.root = TRY(o.opt_string("root")).value_or("");
  s.creating = TRY(o.boolean("creating", false));
  s.host_mount_id = TRY(o.opt_u64("hostMountId")).value_or(0);
  return s;
}

Status ContainerDir::save(const State& s) const {
  Json j = {{"ociVersion", s.oci_version}, {"id", s.id},         {"pid", s.pid},
            {"pidStartTime", s.pid_start_time}, {"bundle", s.bundle}, {"rootfs", s.rootfs},
            {"created", s.created},        {"owner", s.owner},   {"annotations", s.annotations},
            {"cgroup", s.cgroup},          {"ownPidNamespace", s.own_pid_ns}, {"systemdCgroup", s.systemd_cgroup},
            {"root", s.root}};
  if (s.creating) j["creating"] = true;
  if (s.host_mount_id) j["hostMountId"] = s.host_mount_id;
  return write_file_atomic(path_ + "/state.json", j.dump());
}

Status ContainerDir::remove() {
  // Everything but state.json and the lock first, so that a delete killed half-way
  // leaves a container that list still shows and the next delete finishes.
  if (!path_exists(path_)) return ok();
  TRY(empty_but_lock(path_, /*keep_state=*/true));
  crash_point("delete:state-emptied");
  if (::unlink((path_ + "/state.json").c_str()) < 0 && errno != ENOENT) return Error::from_errno(cat("remove ", path_, "/state.json"));
  crash_point("delete:state-json-removed");
  if (::unlink((path_ + "/.lock").c_str()) < 0 && errno != ENOENT) return Error::from_errno(cat("remove ", path_, "/.lock"));
  // Killed here, the directory is left empty: no container (list does not show it),
  // and the next delete or create of the ID removes or replaces it.
  crash_point("delete:lock-removed");
  return remove_tree(path_);
}

std::vector<std::string> list_ids(const std::string& root) {
  std::vector<std::string> ids;
  DIR* d = ::opendir(root.c_str());
  if (!d) return ids;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (n == "." || n == ".." || n == ".seccomp-cache" || !validate_id(n)) continue;
    if (is_container_dir(path_join(root, n))) ids.push_back(n);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

ContainerStatus live_status(const State& s, const std::string& dir, bool frozen, bool creator_alive) {
  if (s.creating) return creator_alive ? ContainerStatus::kCreating : ContainerStatus::kStopped;
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
