#include "container/process_setup.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/fs.h"
#include "common/strings.h"
#include "container/lsm.h"
#include "oci/capabilities.h"
#include "sys/syscalls.h"

namespace vessel::container {

Status check_preserve_fds(int n) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  uint64_t max = rl.rlim_cur > 3 ? rl.rlim_cur - 3 : 0;
  if (n < 0 || static_cast<uint64_t>(n) > max)
    return Error::invalid(cat("--preserve-fds ", n, ": must be between 0 and ", max, " (RLIMIT_NOFILE is ", rl.rlim_cur, ")"));
  return ok();
}

Status apply_rlimits(const std::vector<oci::Rlimit>& rlimits) {
  for (const auto& r : rlimits) {
    rlimit rl{r.soft, r.hard};
    if (::setrlimit(r.resource, &rl) < 0) return Error::from_errno(cat("setrlimit ", r.type));
  }
  return ok();
}

// As runc: a terminal on the process's stdio is handed to the process's user (uid only:
// the group stays the devpts mount's, tty's 5 with runc's gid=5). Unlike runc, pipes and
// files on stdio are left alone: they belong to whoever passed them. A pty whose owner is
// not mapped, or on a read-only /dev, is left as it is (runc too).
static Status give_tty_to_user(uint32_t uid) {
  for (int fd = 0; fd < 3; ++fd) {
    struct stat st{};
    if (!::isatty(fd) || ::fstat(fd, &st) < 0 || st.st_uid == uid) continue;
    if (::fchown(fd, uid, static_cast<gid_t>(-1)) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
      return Error::from_errno(cat("chown the terminal to uid ", uid));
  }
  return ok();
}

Status set_user_and_capabilities(const oci::Process& p) {
  if (p.terminal) TRY(give_tty_to_user(p.user.uid));
  oci::CapabilitySets caps = p.capabilities.value_or(oci::CapabilitySets{});
  int last = sys::cap_last_cap();
  for (int c = 0; c <= last; ++c) {
    if (c < 64 && (caps.bounding & (1ULL << c))) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return Error::from_errno(cat("drop capability ", c, " from the bounding set"));
  }
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return Error::from_errno("prctl(PR_SET_KEEPCAPS)");
  std::vector<gid_t> groups(p.user.additional_gids.begin(), p.user.additional_gids.end());
  if (::setgroups(groups.size(), groups.data()) < 0 && !(errno == EPERM && groups.empty()))
    return Error::from_errno("setgroups (process.user.additionalGids)");
  if (::setresgid(p.user.gid, p.user.gid, p.user.gid) < 0)
    return Error::from_errno(cat("setgid ", p.user.gid, " (process.user.gid)"));
  if (::setresuid(p.user.uid, p.user.uid, p.user.uid) < 0)
    return Error::from_errno(cat("setuid ", p.user.uid, " (process.user.uid)"));
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return Error::from_errno("prctl(PR_SET_KEEPCAPS)");
  uint64_t known = last >= 63 ? ~0ULL : ((1ULL << (last + 1)) - 1);
  sys::CapState s{caps.effective & known, caps.permitted & known, caps.inheritable & known};
  TRYC(sys::capset(s), "set capabilities (process.capabilities)");
  // As runc: an ambient capability the process may not hold (not in both permitted and
  // inheritable) is ignored, so a `runc spec` config (ambient, no inheritable) works.
  uint64_t ambient = caps.ambient & caps.permitted & caps.inheritable;
  for (int c = 0; c <= last && c < 64; ++c) {
    if (!(ambient & (1ULL << c))) continue;
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
      return Error::from_errno(cat("raise ambient capability ", c, " (process.capabilities.ambient)"));
  }
  return ok();
}

Status check_capabilities(const oci::Process& p) {
  oci::CapabilitySets caps = p.capabilities.value_or(oci::CapabilitySets{});
  int last = sys::cap_last_cap();
  uint64_t known = last >= 63 ? ~0ULL : ((1ULL << (last + 1)) - 1);
  auto cur = TRYC(sys::capget(), "capget");
  auto first = [](uint64_t bits) {
    for (int c = 0; c < 64; ++c)
      if (bits & (1ULL << c)) return oci::capability_name(c);
    return std::string();
  };
  auto need = [&](uint64_t set, uint64_t within, const char* field, const char* why) -> Status {
    uint64_t extra = set & known & ~within;
    if (extra) return Error(EPERM, cat("process.capabilities.", field, ": ", first(extra), " ", why));
    return ok();
  };
  TRY(need(caps.effective, caps.permitted, "effective", "is not in permitted"));
  TRY(need(caps.permitted, cur.permitted, "permitted", "is not held by the runtime"));
  TRY(need(caps.inheritable, caps.bounding | cur.inheritable, "inheritable", "is not in bounding"));
  return ok();
}

// strerror's text in lower case ("no such file or directory"), the way runc
// (Go) words errno: engines match these words to pick an exit status (Docker:
// 127 for a missing command, 126 for "permission denied").
static std::string errno_words(int err) {
  std::string s = std::strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

// 0 when `path` is a file we may execute, else why not (ENOENT, EISDIR, EACCES...):
// the checks of Go's exec.LookPath, so that errors read like runc's.
static int executable_error(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) < 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  // With the effective ids and capabilities (AT_EACCESS), as execve will judge it: access()
  // uses the real uid and drops capabilities for a user that is not root, so a user with
  // CAP_DAC_OVERRIDE would be refused a file only its owner may execute (runc 3715).
  if (::faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) < 0) return errno;
  return 0;
}

Result<std::string> find_executable(const oci::Process& p) {
  const std::string& name = p.args[0];
  if (name.find('/') != std::string::npos) {
    std::string path = name[0] == '/' ? name : p.cwd + "/" + name;
    if (int err = executable_error(path)) {
      // runc: exec: "/nosuch": stat /nosuch: no such file or directory / exec: "/etc/passwd": permission denied
      std::string why = err == ENOENT || err == ENOTDIR ? cat("stat ", name, ": ", errno_words(err)) : errno_words(err);
      return Error(err, cat("exec: \"", name, "\": ", why));
    }
    return name;
  }
  std::string path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : p.env)  // the last PATH= counts, as in process_env()
    if (starts_with(e, "PATH=")) path_env = e.substr(5);
  // A candidate we may not execute is skipped, as by Go: the name is then "not found".
  for (const auto& dir : split(path_env, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (executable_error(candidate) == 0) return candidate;
  }
  return Error(ENOENT, cat("exec: \"", name, "\": executable file not found in $PATH"));
}

Status enter_cwd(const std::string& cwd) {
  if (::chdir(cwd.c_str()) < 0) return Error::from_errno(cat("chdir to process.cwd ", cwd));
  char buf[PATH_MAX];
  // getcwd fails with ENOENT or returns "(unreachable)..." when the cwd is outside our root.
  if (!::getcwd(buf, sizeof buf) || buf[0] != '/')
    return Error(EPERM, cat("process.cwd ", cwd, ": resolves outside the container root"));
  return ok();
}

Status become_process(const oci::Process& p, const std::optional<SeccompProgram>& seccomp, int preserve_fds) {
  // Before the filter (a profile may deny close_range); from here on only the process's fds
  // (stdio, --preserve-fds) survive an execve, a hook's included.
  sys::cloexec_from(3 + preserve_fds);
  TRY(set_security_labels(p));
  if (seccomp && !p.no_new_privileges) TRYC(load_seccomp(*seccomp), "linux.seccomp");
  TRY(set_user_and_capabilities(p));
  if (p.no_new_privileges) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return Error::from_errno("prctl(PR_SET_NO_NEW_PRIVS)");
    if (seccomp) TRYC(load_seccomp(*seccomp), "linux.seccomp");
  }
  return ok();
}

Error finish_process(const std::string& path, const oci::Process& p, const std::optional<SeccompProgram>& seccomp,
                     int preserve_fds) {
  if (auto st = become_process(p, seccomp, preserve_fds); !st) return std::move(st).error();
  return exec_process(path, p, preserve_fds);
}

// The home directory of `uid` in /etc/passwd (the container's, once in its root); "/" when none.
std::string home_of(uint32_t uid) {
  auto text = read_regular_file("/etc/passwd", 1 << 20);
  if (!text) return "/";
  for (const auto& line : split(*text, '\n')) {
    auto f = split(line, ':');  // name:password:uid:gid:gecos:home:shell
    if (f.size() < 6) continue;
    if (auto u = parse_u64(f[2]); u && *u == uid && !f[5].empty()) return f[5];
  }
  return "/";
}

std::vector<std::string> process_env(const std::vector<std::string>& env, const std::function<std::string()>& home) {
  // As runc (1.2 on): one entry per name, the last one's value, in the order of the last
  // ones (Docker's links and -e overrides rely on it).
  std::vector<std::string> out;
  std::vector<std::string_view> seen;
  for (auto it = env.rbegin(); it != env.rend(); ++it) {
    std::string_view name = std::string_view(*it).substr(0, it->find('='));
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
    seen.push_back(name);
    out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  // HOME missing or empty: the user's, as runc sets it.
  auto h = std::find_if(out.begin(), out.end(), [](const std::string& e) { return starts_with(e, "HOME="); });
  if (h == out.end()) out.push_back("HOME=" + home());
  else if (*h == "HOME=") *h = "HOME=" + home();
  return out;
}

Error exec_process(const std::string& path, const oci::Process& p, int preserve_fds) {
  std::vector<char*> argv, envp;
  for (const auto& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // HOME from the user's entry in the container's /etc/passwd, else "/" (runc).
  std::vector<std::string> env = process_env(p.env, [&] { return home_of(p.user.uid); });
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  sys::cloexec_from(3 + preserve_fds);
  ::execve(path.c_str(), argv.data(), envp.data());
  int err = errno;
  return Error(err, cat("exec ", path, ": ", errno_words(err)));
}

}  // namespace vessel::container
