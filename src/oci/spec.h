// The runtime-spec config.json, parsed and validated into typed values.
// Only fields vessel acts on are kept; a field we cannot honour is an error,
// never silently dropped.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "oci/json_reader.h"
#include "oci/mount_options.h"
#include "oci/resources.h"
#include "oci/seccomp.h"

namespace vessel::oci {

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t hard = 0;
  uint64_t soft = 0;
};

// Capability sets as bit masks (bit n = capability n).
struct CapabilitySets {
  uint64_t bounding = 0, effective = 0, inheritable = 0, permitted = 0, ambient = 0;
};

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
};

struct Process {
  bool terminal = false;
  uint32_t console_height = 0, console_width = 0;
  User user;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::optional<CapabilitySets> capabilities;  // absent: no capabilities at all
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string selinux_label;     // SELinux context the process runs in (empty: the runtime's)
  std::string apparmor_profile;  // AppArmor profile the process runs under (empty: none asked)
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
  MountOptions parsed;
};

enum class NamespaceType { kPid, kNetwork, kMount, kIpc, kUts, kUser, kCgroup, kTime };

struct Namespace {
  NamespaceType type;
  std::string path;  // join this namespace instead of creating one
};

struct Device {
  char type = 'c';  // c, b, u, p
  std::string path;
  int64_t major = 0, minor = 0;
  std::optional<uint32_t> file_mode;
  std::optional<uint32_t> uid, gid;
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart, poststop;
};

struct TimeOffset {
  int64_t secs = 0;
  uint32_t nanosecs = 0;
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<Device> devices;
  std::string cgroups_path;
  LinuxResources resources;
  std::string rootfs_propagation;
  std::vector<std::string> masked_paths, readonly_paths;
  std::map<std::string, std::string> sysctl;
  std::optional<Seccomp> seccomp;
  std::map<std::string, TimeOffset> time_offsets;
  std::string mount_label;  // SELinux context of the container's mounts (context= option)

  bool has_namespace(NamespaceType t) const;
  const Namespace* find_namespace(NamespaceType t) const;
};

struct Spec {
  std::string oci_version;
  std::string root_path;  // as written (relative to the bundle or absolute)
  bool root_readonly = false;
  std::optional<Process> process;
  std::string hostname, domainname;
  std::vector<Mount> mounts;
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  Linux linux_;
};

// Parses and validates config.json text. Errors name the field.
Result<Spec> parse_spec(const std::string& text);
// Reads <bundle>/config.json and parses it.
Result<Spec> load_spec(const std::string& bundle);
// Parses a process object (config.json's "process", or `exec --process` file).
Result<Process> parse_process(const Json& j, const std::string& path);

const char* namespace_type_name(NamespaceType t);
int namespace_clone_flag(NamespaceType t);

}  // namespace vessel::oci
