#include "oci/spec.h"

#include <sched.h>
#include <sys/resource.h>

#include <set>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "oci/capabilities.h"
#include "oci/validate.h"

namespace vessel::oci {
namespace {

struct NsName {
  const char* name;
  NamespaceType type;
  int flag;
};
constexpr NsName kNamespaces[] = {
    {"pid", NamespaceType::kPid, CLONE_NEWPID},       {"network", NamespaceType::kNetwork, CLONE_NEWNET},
    {"mount", NamespaceType::kMount, CLONE_NEWNS},    {"ipc", NamespaceType::kIpc, CLONE_NEWIPC},
    {"uts", NamespaceType::kUts, CLONE_NEWUTS},       {"user", NamespaceType::kUser, CLONE_NEWUSER},
    {"cgroup", NamespaceType::kCgroup, CLONE_NEWCGROUP}, {"time", NamespaceType::kTime, 0x80 /*CLONE_NEWTIME*/},
};

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_STACK", RLIMIT_STACK},     {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},   {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},     {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

Result<uint64_t> cap_set(const JsonObject& caps, const std::string& key) {
  uint64_t mask = 0;
  auto names = TRY(caps.strings(key));
  for (size_t i = 0; i < names.size(); ++i) {
    auto n = capability_from_name(names[i]);
    if (!n) {
      // As runc and crun: a capability this build does not know (a newer kernel's, a typo)
      // is ignored with a warning, so that one config serves several kernels.
      static std::set<std::string> warned;  // once per name: a config is read several times
      if (warned.insert(names[i]).second)
        log::warn("config", cat("ignoring unknown capability \"", names[i], "\" (", caps.field(key), "[", i, "])"));
      continue;
    }
    mask |= 1ULL << *n;
  }
  return mask;
}

Result<std::vector<IdMapping>> parse_mappings(const JsonObject& o, const std::string& key) {
  std::vector<IdMapping> out;
  auto arr = TRY(o.array(key));
  for (size_t i = 0; i < arr.size(); ++i) {
    auto m = TRY(JsonObject::at(*arr[i], cat(o.field(key), "[", i, "]")));
    IdMapping im;
    auto c = TRY(m.opt_u32("containerID"));
    auto h = TRY(m.opt_u32("hostID"));
    auto s = TRY(m.opt_u32("size"));
    if (!c || !h || !s) return Error::invalid(cat(m.path(), ": containerID, hostID and size are required"));
    if (*s == 0) return Error::invalid(cat(m.path(), ".size: must be greater than 0"));
    im.container_id = *c;
    im.host_id = *h;
    im.size = *s;
    out.push_back(im);
  }
  return out;
}

Result<Hook> parse_hook(const Json& j, const std::string& path) {
  auto o = TRY(JsonObject::at(j, path));
  Hook h;
  h.path = TRY(o.string("path"));
  if (h.path.empty() || h.path[0] != '/') return Error::invalid(cat(o.field("path"), ": must be an absolute path"));
  h.args = TRY(o.strings("args"));
  h.env = TRY(o.strings("env"));
  TRY(check_exec_strings(h.args, h.env, path));
  auto t = TRY(o.opt_i64("timeout"));
  if (t) {
    if (*t <= 0) return Error::invalid(cat(o.field("timeout"), ": must be greater than 0"));
    h.timeout = static_cast<int>(*t);
  }
  return h;
}

Status parse_hooks(const JsonObject& root, Hooks& hooks) {
  auto ho = TRY(root.object("hooks"));
  if (!ho) return ok();
  auto list = [&](const char* key, std::vector<Hook>& out) -> Status {
    auto arr = TRY(ho->array(key));
    for (size_t i = 0; i < arr.size(); ++i) out.push_back(TRY(parse_hook(*arr[i], cat(ho->field(key), "[", i, "]"))));
    return ok();
  };
  TRY(list("prestart", hooks.prestart));
  TRY(list("createRuntime", hooks.create_runtime));
  TRY(list("createContainer", hooks.create_container));
  TRY(list("startContainer", hooks.start_container));
  TRY(list("poststart", hooks.poststart));
  TRY(list("poststop", hooks.poststop));
  return ok();
}

Result<Mount> parse_mount(const Json& j, const std::string& path) {
  auto o = TRY(JsonObject::at(j, path));
  Mount m;
  m.destination = TRY(o.string("destination"));
  if (m.destination.empty() || m.destination[0] != '/')
    return Error::invalid(cat(o.field("destination"), ": must be an absolute path, got \"", m.destination, "\""));
  m.type = TRY(o.string("type"));
  m.source = TRY(o.string("source"));
  m.options = TRY(o.strings("options"));
  if (o.has("uidMappings") || o.has("gidMappings"))
    return Error::invalid(cat(path, ": idmapped mounts (uidMappings/gidMappings) are not supported"));
  m.parsed = TRY(parse_mount_options(m.options, o.field("options")));
  if (m.type == "bind") m.parsed.bind = true;
  if (m.type.empty() && !m.parsed.bind) return Error::invalid(cat(o.field("type"), ": required for a non-bind mount"));
  return m;
}

Result<Device> parse_device(const Json& j, const std::string& path) {
  auto o = TRY(JsonObject::at(j, path));
  Device d;
  auto type = TRY(o.string("type"));
  if (type.size() != 1 || std::string("cbup").find(type[0]) == std::string::npos)
    return Error::invalid(cat(o.field("type"), ": must be one of c, b, u, p, got \"", type, "\""));
  d.type = type[0];
  d.path = TRY(o.string("path"));
  if (d.path.empty() || d.path[0] != '/') return Error::invalid(cat(o.field("path"), ": must be an absolute path"));
  if (d.type != 'p') {
    auto ma = TRY(o.opt_i64("major"));
    auto mi = TRY(o.opt_i64("minor"));
    if (!ma || !mi) return Error::invalid(cat(path, ": major and minor are required for device type ", type));
    d.major = *ma;
    d.minor = *mi;
  }
  d.file_mode = TRY(o.opt_u32("fileMode"));
  d.uid = TRY(o.opt_u32("uid"));
  d.gid = TRY(o.opt_u32("gid"));
  return d;
}

Status parse_linux(const JsonObject& root, Linux& lx) {
  auto lo = TRY(root.object("linux"));
  if (!lo) return ok();
  std::set<NamespaceType> seen;
  auto nss = TRY(lo->array("namespaces"));
  for (size_t i = 0; i < nss.size(); ++i) {
    std::string p = cat(lo->field("namespaces"), "[", i, "]");
    auto o = TRY(JsonObject::at(*nss[i], p));
    auto type = TRY(o.string("type"));
    const NsName* found = nullptr;
    for (auto& n : kNamespaces)
      if (type == n.name) found = &n;
    if (!found) return Error::invalid(cat(o.field("type"), ": unknown namespace type \"", type, "\""));
    if (!seen.insert(found->type).second) return Error::invalid(cat(o.field("type"), ": duplicate namespace \"", type, "\""));
    Namespace ns{found->type, TRY(o.string("path"))};
    if (!ns.path.empty() && ns.path[0] != '/') return Error::invalid(cat(o.field("path"), ": must be an absolute path"));
    lx.namespaces.push_back(ns);
  }
  lx.uid_mappings = TRY(parse_mappings(*lo, "uidMappings"));
  lx.gid_mappings = TRY(parse_mappings(*lo, "gidMappings"));
  const Namespace* userns = lx.find_namespace(NamespaceType::kUser);
  if ((!lx.uid_mappings.empty() || !lx.gid_mappings.empty()) && (!userns || !userns->path.empty()))
    return Error::invalid(cat(lo->field("uidMappings"), ": mappings need a new user namespace in linux.namespaces"));
  if (userns && userns->path.empty() && (lx.uid_mappings.empty() || lx.gid_mappings.empty()))
    return Error::invalid(cat(lo->field("uidMappings"), ": a new user namespace needs uidMappings and gidMappings"));
  auto devs = TRY(lo->array("devices"));
  for (size_t i = 0; i < devs.size(); ++i) lx.devices.push_back(TRY(parse_device(*devs[i], cat(lo->field("devices"), "[", i, "]"))));
  lx.cgroups_path = TRY(lo->string("cgroupsPath"));
  if (const Json* r = lo->raw("resources")) lx.resources = TRY(parse_resources(*r, lo->field("resources")));
  lx.rootfs_propagation = TRY(lo->string("rootfsPropagation"));
  if (!lx.rootfs_propagation.empty() && propagation_from_name(lx.rootfs_propagation) == 0)
    return Error::invalid(cat(lo->field("rootfsPropagation"), ": unknown propagation \"", lx.rootfs_propagation, "\""));
  lx.masked_paths = TRY(lo->strings("maskedPaths"));
  lx.readonly_paths = TRY(lo->strings("readonlyPaths"));
  lx.sysctl = TRY(lo->string_map("sysctl"));
  TRY(validate_sysctl(lx));
  if (const Json* s = lo->raw("seccomp")) lx.seccomp = TRY(parse_seccomp(*s, lo->field("seccomp")));
  if (auto to = TRY(lo->object("timeOffsets"))) {
    if (!lx.has_namespace(NamespaceType::kTime))
      return Error::invalid(cat(to->path(), ": time offsets need a time namespace in linux.namespaces"));
    for (const char* clock : {"monotonic", "boottime"}) {
      if (auto c = TRY(to->object(clock))) {
        TimeOffset off;
        off.secs = TRY(c->opt_i64("secs")).value_or(0);
        off.nanosecs = TRY(c->opt_u32("nanosecs")).value_or(0);
        lx.time_offsets[clock] = off;
      }
    }
  }
  lx.mount_label = TRY(lo->string("mountLabel"));
  for (const char* unsupported : {"intelRdt", "personality"}) {
    if (lo->has(unsupported)) return Error::invalid(cat(lo->field(unsupported), ": not supported by vessel"));
  }
  return ok();
}

}  // namespace

bool Linux::has_namespace(NamespaceType t) const { return find_namespace(t) != nullptr; }

const Namespace* Linux::find_namespace(NamespaceType t) const {
  for (auto& n : namespaces)
    if (n.type == t) return &n;
  return nullptr;
}

const char* namespace_type_name(NamespaceType t) {
  for (auto& n : kNamespaces)
    if (n.type == t) return n.name;
  return "?";
}

int namespace_clone_flag(NamespaceType t) {
  for (auto& n : kNamespaces)
    if (n.type == t) return n.flag;
  return 0;
}

Result<Process> parse_process(const Json& j, const std::string& path) {
  auto o = TRY(JsonObject::at(j, path));
  Process p;
  p.terminal = TRY(o.boolean("terminal"));
  if (auto cs = TRY(o.object("consoleSize"))) {
    p.console_height = TRY(cs->opt_u32("height")).value_or(0);
    p.console_width = TRY(cs->opt_u32("width")).value_or(0);
  }
  if (auto u = TRY(o.object("user"))) {
    p.user.uid = TRY(u->opt_u32("uid")).value_or(0);
    p.user.gid = TRY(u->opt_u32("gid")).value_or(0);
    p.user.umask = TRY(u->opt_u32("umask"));
    auto gids = TRY(u->array("additionalGids"));
    for (size_t i = 0; i < gids.size(); ++i) {
      if (!gids[i]->is_number_unsigned() && !(gids[i]->is_number_integer() && gids[i]->get<int64_t>() >= 0))
        return Error::invalid(cat(u->field("additionalGids"), "[", i, "]: expected an unsigned integer"));
      p.user.additional_gids.push_back(gids[i]->get<uint32_t>());
    }
    if (u->has("username")) return Error::invalid(cat(u->field("username"), ": is for Windows containers"));
  }
  p.args = TRY(o.strings("args"));
  if (p.args.empty()) return Error::invalid(cat(o.field("args"), ": must be a non-empty array"));
  p.env = TRY(o.strings("env"));
  p.cwd = TRY(o.string("cwd", "/"));
  if (p.cwd.empty() || p.cwd[0] != '/') return Error::invalid(cat(o.field("cwd"), ": must be an absolute path, got \"", p.cwd, "\""));
  if (auto caps = TRY(o.object("capabilities"))) {
    CapabilitySets s;
    s.bounding = TRY(cap_set(*caps, "bounding"));
    s.effective = TRY(cap_set(*caps, "effective"));
    s.inheritable = TRY(cap_set(*caps, "inheritable"));
    s.permitted = TRY(cap_set(*caps, "permitted"));
    s.ambient = TRY(cap_set(*caps, "ambient"));
    p.capabilities = s;
  }
  auto rls = TRY(o.array("rlimits"));
  std::set<int> seen;
  for (size_t i = 0; i < rls.size(); ++i) {
    auto r = TRY(JsonObject::at(*rls[i], cat(o.field("rlimits"), "[", i, "]")));
    Rlimit rl;
    rl.type = TRY(r.string("type"));
    const RlimitName* found = nullptr;
    for (auto& n : kRlimits)
      if (rl.type == n.name) found = &n;
    if (!found) return Error::invalid(cat(r.field("type"), ": unknown rlimit \"", rl.type, "\""));
    if (!seen.insert(found->resource).second) return Error::invalid(cat(r.field("type"), ": duplicate rlimit ", rl.type));
    rl.resource = found->resource;
    rl.hard = TRY(r.opt_u64("hard")).value_or(0);
    rl.soft = TRY(r.opt_u64("soft")).value_or(0);
    if (rl.soft > rl.hard) return Error::invalid(cat(r.path(), ": soft limit is above the hard limit"));
    p.rlimits.push_back(rl);
  }
  p.no_new_privileges = TRY(o.boolean("noNewPrivileges"));
  if (auto v = TRY(o.opt_i64("oomScoreAdj"))) {
    if (*v < -1000 || *v > 1000) return Error::invalid(cat(o.field("oomScoreAdj"), ": must be between -1000 and 1000"));
    p.oom_score_adj = static_cast<int>(*v);
  }
  p.apparmor_profile = TRY(o.string("apparmorProfile"));
  p.selinux_label = TRY(o.string("selinuxLabel"));
  for (const char* key : {"scheduler", "ioPriority", "execCPUAffinity"}) {
    if (o.has(key)) return Error::invalid(cat(o.field(key), ": not supported by vessel"));
  }
  TRY(validate_process(p, path));
  return p;
}

Result<Spec> parse_spec(const std::string& text) {
  Json j = TRY(parse_json(text, "config.json"));
  auto root = TRY(JsonObject::at(j, ""));
  Spec s;
  s.oci_version = TRY(root.string("ociVersion"));
  if (s.oci_version.empty()) return Error::invalid("ociVersion: required");
  if (!starts_with(s.oci_version, "1.")) return Error::invalid(cat("ociVersion: unsupported version \"", s.oci_version, "\" (vessel runs 1.x)"));
  auto ro = TRY(root.object("root"));
  if (!ro) return Error::invalid("root: required");
  s.root_path = TRY(ro->string("path"));
  if (s.root_path.empty()) return Error::invalid("root.path: required");
  s.root_readonly = TRY(ro->boolean("readonly"));
  if (const Json* p = root.raw("process")) s.process = TRY(parse_process(*p, "process"));
  s.hostname = TRY(root.string("hostname"));
  s.domainname = TRY(root.string("domainname"));
  auto mounts = TRY(root.array("mounts"));
  for (size_t i = 0; i < mounts.size(); ++i) s.mounts.push_back(TRY(parse_mount(*mounts[i], cat("mounts[", i, "]"))));
  TRY(parse_hooks(root, s.hooks));
  s.annotations = TRY(root.string_map("annotations"));
  TRY(parse_linux(root, s.linux_));
  if ((!s.hostname.empty() || !s.domainname.empty()) && !s.linux_.has_namespace(NamespaceType::kUts))
    return Error::invalid("hostname: setting a hostname needs a uts namespace in linux.namespaces");
  return s;
}

Result<Spec> load_spec(const std::string& bundle) {
  std::string path = path_join(bundle, "config.json");
  auto text = read_regular_file(path);
  if (!text) return std::move(text).error();
  return parse_spec(*text).context(path);
}

}  // namespace vessel::oci
