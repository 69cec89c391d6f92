#include "oci/validate.h"

#include <sys/stat.h>

#include <string_view>

#include "common/strings.h"
#include "oci/spec.h"

namespace vessel::oci {
namespace {

// A string for an error message: NULs shown as \0, long values cut.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    if (c == '\0') out += "\\0";
    else out += c;
  }
  if (s.size() > 80) out += "...";
  return out;
}

// runc's list of sysctls in the IPC namespace (plus fs.mqueue.*).
bool is_ipc_sysctl(std::string_view s) {
  static constexpr std::string_view kIpc[] = {
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",          "kernel.sem",         "kernel.shmall",
      "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", "kernel.msg_next_id", "kernel.sem_next_id",
      "kernel.shm_next_id"};
  for (auto k : kIpc)
    if (s == k) return true;
  return starts_with(s, "fs.mqueue.");
}

// Whether the namespace file `path` is the network namespace we run in ("host" means "current", as in runc).
// A path that cannot be read is not (create fails on it later; a saved config stays loadable).
bool is_current_netns(const std::string& path) {
  struct stat theirs{}, ours{};
  if (::stat(path.c_str(), &theirs) < 0 || ::stat("/proc/self/ns/net", &ours) < 0) return false;
  return theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino;
}

}  // namespace

Status check_id(uint64_t value, const std::string& field) {
  if (value > kMaxId)
    return Error::invalid(cat(field, ": ", value, " is out of range 0..", kMaxId,
                              value == 4294967295ULL ? " (it is (uid_t)-1, which set*id reads as \"unchanged\")" : ""));
  return ok();
}

Status check_exec_strings(const std::vector<std::string>& args, const std::vector<std::string>& env,
                          const std::string& path) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].find('\0') != std::string::npos)
      return Error::invalid(cat(path, ".args[", i, "]: \"", printable(args[i]), "\" contains a NUL byte"));
  }
  for (size_t i = 0; i < env.size(); ++i) {
    const std::string& e = env[i];
    std::string field = cat(path, ".env[", i, "]");
    if (e.find('\0') != std::string::npos)
      return Error::invalid(cat(field, ": \"", printable(e), "\" contains a NUL byte"));
    auto eq = e.find('=');
    if (eq == std::string::npos) return Error::invalid(cat(field, ": \"", printable(e), "\" has no \"=\" (expected KEY=VALUE)"));
    if (eq == 0) return Error::invalid(cat(field, ": \"", printable(e), "\" has an empty name (expected KEY=VALUE)"));
  }
  return ok();
}

Status validate_process(const Process& p, const std::string& path) {
  TRY(check_id(p.user.uid, path + ".user.uid"));
  TRY(check_id(p.user.gid, path + ".user.gid"));
  for (size_t i = 0; i < p.user.additional_gids.size(); ++i)
    TRY(check_id(p.user.additional_gids[i], cat(path, ".user.additionalGids[", i, "]")));
  TRY(check_exec_strings(p.args, p.env, path));
  if (p.cwd.find('\0') != std::string::npos) return Error::invalid(cat(path, ".cwd: contains a NUL byte"));
  return ok();
}

Status validate_sysctl(const Linux& lx) {
  for (const auto& [key, value] : lx.sysctl) {
    std::string field = cat("linux.sysctl[\"", printable(key), "\"]");
    if (key.find('\0') != std::string::npos || value.find('\0') != std::string::npos)
      return Error::invalid(cat(field, ": contains a NUL byte"));
    if (is_ipc_sysctl(key)) {
      const Namespace* ipc = lx.find_namespace(NamespaceType::kIpc);
      if (!ipc) return Error::invalid(cat(field, ": not allowed in the host's ipc namespace (add an ipc namespace)"));
      continue;
    }
    if (starts_with(key, "net.")) {
      const Namespace* net = lx.find_namespace(NamespaceType::kNetwork);
      if (!net) return Error::invalid(cat(field, ": not allowed in the host's network namespace (add a network namespace)"));
      if (!net->path.empty() && is_current_netns(net->path))
        return Error::invalid(cat(field, ": not allowed: the network namespace ", net->path, " is the host's"));
      continue;
    }
    if (lx.has_namespace(NamespaceType::kUts)) {
      if (key == "kernel.domainname") continue;
      if (key == "kernel.hostname")
        return Error::invalid(cat(field, ": not allowed: it conflicts with the \"hostname\" field"));
    }
    return Error::invalid(cat(field, ": not in a separate kernel namespace (it would change the host)"));
  }
  return ok();
}

}  // namespace vessel::oci
