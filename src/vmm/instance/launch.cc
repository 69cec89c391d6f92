#include "vmm/instance/launch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "vmm/api/client.h"

namespace vessel::vmm {

using nlohmann::json;

namespace {
void write_all_fd(int fd, const std::string& s) { (void)write_all(fd, s); }

// The VMM process body: never returns.
[[noreturn]] void vmm_main(VmmOptions o, int ready_fd, const VmPaths& paths) {
  ::setsid();
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int logfd = ::open((paths.dir + "/vmm.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(logfd >= 0 ? logfd : null, STDERR_FILENO);
  }
  bool start = o.start;
  std::optional<SnapshotLoad> restore = o.restore;
  auto fail = [&](const Error& e) {
    write_all_fd(ready_fd, "E" + e.message());
    ::_exit(1);
  };
  auto vmm = Vmm::create(std::move(o));
  if (!vmm) {
    (void)remove_tree(paths.dir);
    fail(vmm.error());
  }
  if (restore) {
    if (auto s = (*vmm)->snapshot_load(*restore); !s) {
      vmm->reset();
      (void)remove_tree(paths.dir);
      fail(s.error());
    }
  }
  if (start) {
    if (auto s = (*vmm)->start_vm(); !s) {
      vmm->reset();  // closes and unlinks the sockets
      (void)remove_tree(paths.dir);
      fail(s.error());
    }
  }
  write_all_fd(ready_fd, "K");
  ::close(ready_fd);
  VmExit e = (*vmm)->run();
  vmm->reset();
  ::_exit(e.reason == "error" ? 1 : 0);
}
}  // namespace

Result<pid_t> launch_detached(VmmOptions o) {
  TRY(check_vm_id(o.id));
  TRY(check_detached_serial(o.serial));
  if (!o.state_id.empty()) TRY(check_vm_id(o.state_id));
  VmPaths paths = vm_paths(o.root, o.state_id.empty() ? o.id : o.state_id);
  TRYC(mkdir_p(vm_root(o.root), 0700), cat("create ", vm_root(o.root)));
  if (::mkdir(paths.dir.c_str(), 0700) < 0) {
    if (errno == EEXIST) return Error(EEXIST, cat("VM '", o.state_id.empty() ? o.id : o.state_id, "' already exists"));
    return Error::from_errno(cat("create ", paths.dir));
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) {
    auto e = Error::from_errno("pipe");
    (void)remove_tree(paths.dir);
    return e;
  }
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) {
    auto e = Error::from_errno("fork");
    (void)remove_tree(paths.dir);
    return e;
  }
  if (pid == 0) {
    rd.reset();
    vmm_main(std::move(o), wr.release(), paths);
  }
  wr.reset();
  std::string msg;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
    if (msg.size() > 65536) break;
  }
  if (!msg.empty() && msg[0] == 'K') return pid;
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  (void)remove_tree(paths.dir);  // the VMM removed it already unless it died
  if (msg.size() > 1 && msg[0] == 'E') return Error(EINVAL, msg.substr(1));
  return Error(EIO, "the VMM process exited before it was ready");
}

Result<VmHandle> find_vm(const std::string& root, const std::string& id) {
  TRY(check_vm_id(id));
  VmHandle h;
  h.paths = vm_paths(root, id);
  struct stat st {};
  if (::stat(h.paths.dir.c_str(), &st) < 0) return Error(ENOENT, cat("VM '", id, "' does not exist"));
  auto rec = read_record(h.paths);
  if (!rec) return Error(ENOENT, cat("VM '", id, "': no VMM record (being created, or its VMM failed)"));
  h.record = *rec;
  h.alive = vmm_alive(h.record);
  return h;
}

Result<json> vm_state(const VmHandle& h, bool stats) {
  if (h.alive) {
    auto r = api::call_ok(h.record.api_sock, "GET", stats ? "/vessel/state?stats" : "/vessel/state", "", 5000);
    if (r) {
      auto j = json::parse(r->body, nullptr, false);
      if (j.is_object()) return j;
    }
    if (vmm_alive(h.record)) return Error(EIO, cat("VM '", h.record.id, "': its API does not answer: ", r ? "bad JSON" : r.error().message()));
  }
  json j{{"id", h.record.id}, {"pid", 0}, {"status", "stopped"}, {"created", h.record.created}};
  if (auto e = read_exit(h.paths)) {
    j["exit_reason"] = e->reason;
    if (!e->detail.empty()) j["exit_detail"] = e->detail;
    j["stopped_at"] = e->at;
  } else {
    j["exit_reason"] = "killed";  // the VMM died without a word (SIGKILL)
  }
  return j;
}

bool wait_vmm_exit(const VmHandle& h, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (vmm_alive(h.record)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

Status remove_vm(const VmHandle& h) {
  if (vmm_alive(h.record)) return Error(EBUSY, cat("VM '", h.record.id, "' is running (stop it, or delete --force)"));
  // A socket left behind by a VMM that was killed: only if it is a socket nobody listens on.
  struct stat st {};
  if (!h.record.api_sock.empty() && ::lstat(h.record.api_sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    auto probe = api::call(h.record.api_sock, "GET", "/", "", 1000);
    if (!probe) ::unlink(h.record.api_sock.c_str());
  }
  return remove_tree(h.paths.dir).context(cat("delete VM '", h.record.id, "'"));
}

}  // namespace vessel::vmm
