// checkpoint and restore: what runc's libcontainer/criu_linux.go does, on vessel's state.
#include "container/checkpoint.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>

#include "cgroups/manager.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "container/console.h"
#include "container/criu_rpc.h"
#include "container/devices.h"
#include "container/foreground.h"
#include "container/hooks.h"
#include "container/lifecycle.h"
#include "container/new_container.h"
#include "container/rootfs_path.h"
#include "container/state.h"
#include "oci/json_reader.h"
#include "oci/spec.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

constexpr const char* kDescriptors = "descriptors.json";  // the init's stdio at dump time (runc's name)
constexpr size_t kMaxDescriptorsBytes = 64 * 1024;

// CRIU's name of a namespace type ("net", "mnt"...).
const char* criu_ns_name(oci::NamespaceType t) {
  switch (t) {
    case oci::NamespaceType::kPid: return "pid";
    case oci::NamespaceType::kNetwork: return "net";
    case oci::NamespaceType::kMount: return "mnt";
    case oci::NamespaceType::kIpc: return "ipc";
    case oci::NamespaceType::kUts: return "uts";
    case oci::NamespaceType::kUser: return "user";
    case oci::NamespaceType::kCgroup: return "cgroup";
    case oci::NamespaceType::kTime: return "time";
  }
  return "?";
}

// runc's key for an external namespace: extRootNetNS, extRootPidNS.
std::string ext_ns_key(oci::NamespaceType t) {
  return t == oci::NamespaceType::kNetwork ? "extRootNetNS" : "extRootPidNS";
}

// --empty-ns: runc accepts only "network".
Result<uint32_t> parse_empty_ns(const std::string& text) {
  if (text.empty()) return 0u;
  if (text == "network" || text == "net") return static_cast<uint32_t>(CLONE_NEWNET);
  return Error::invalid(cat("--empty-ns \"", text, "\": only \"network\" is supported"));
}

// Creates `path` (0700, as runc) if missing and opens it; the error names `flag`.
Result<UniqueFd> make_dir(const std::string& path, const char* flag) {
  if (::mkdir(path.c_str(), 0700) < 0 && errno != EEXIST) return Error::from_errno(cat(flag, " ", path));
  return open_file(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC).context(flag);
}

// The options both verbs share.
Result<criu::Opts> common_opts(const CriuFlags& f, int images_fd, const char* log_file) {
  criu::Opts o;
  o.images_dir_fd = images_fd;
  o.log_level = 4;
  o.log_file = log_file;
  o.manage_cgroups = true;
  o.manage_cgroups_mode = TRY(criu::parse_cg_mode(f.manage_cgroups_mode));
  o.notify_scripts = true;
  o.shell_job = f.shell_job;
  o.tcp_established = f.tcp_established;
  o.ext_unix_sk = f.ext_unix_sk;
  o.file_locks = f.file_locks;
  o.empty_ns = TRY(parse_empty_ns(f.empty_ns));
  o.orphan_pts_master = true;
  o.auto_dedup = f.auto_dedup;
  o.lazy_pages = f.lazy_pages;
  o.network_lock = criu::network_lock_method();
  return o;
}

// A mount's destination as CRIU sees it: absolute, without a trailing slash.
std::string mount_key(const std::string& destination) {
  std::string d = destination;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d.empty() || d[0] != '/' ? "/" + d : d;
}

// Bind mounts, devices and masked files come from outside the container's mount
// namespace: CRIU records them as external mounts, named by their destination.
// `pid` (dump only): masked paths are looked at in its root; a masked directory is a
// tmpfs of the container's own, only masked files are binds of /dev/null (as runc).
void add_external_mounts(const oci::Spec& spec, bool dump, const std::string& bundle, pid_t pid, criu::Opts& o) {
  for (const auto& m : spec.mounts) {
    if (!m.parsed.bind) continue;
    std::string src = m.source.empty() || m.source[0] == '/' ? m.source : path_join(bundle, m.source);
    o.ext_mnt.emplace_back(mount_key(m.destination), dump ? mount_key(m.destination) : src);
  }
  std::vector<oci::Device> devs = default_devices();
  devs.insert(devs.end(), spec.linux_.devices.begin(), spec.linux_.devices.end());
  for (const auto& d : devs) o.ext_mnt.emplace_back(mount_key(d.path), mount_key(d.path));
  if (!spec.linux_.masked_paths.empty()) {
    if (dump) {
      for (const auto& p : spec.linux_.masked_paths) {
        struct stat st{};
        if (::stat(cat("/proc/", pid, "/root", mount_key(p)).c_str(), &st) < 0 || S_ISDIR(st.st_mode)) continue;
        o.ext_mnt.emplace_back(mount_key(p), "/dev/null");
      }
    } else {
      o.ext_mnt.emplace_back("/dev/null", "/dev/null");
    }
  }
}

// The cgroup mount. With a cgroup namespace of its own the container mounts cgroupfs
// itself, which CRIU recreates. Without one, vessel bind-mounts the container's cgroup
// directory (v2: one bind at the destination; v1 and hybrid: one per hierarchy under a
// tmpfs), whose root is not a hierarchy's root, so CRIU cannot make it ("doesn't have a
// proper root mount"): it is external, named by its destination at dump (as runc's
// getCgroupMounts binds), and on restore bound from the new container's cgroup.
void add_cgroup_mounts(const oci::Spec& spec, const std::vector<cgroups::Manager::Mount>& hierarchies, bool dump,
                       criu::Opts& o) {
  const auto* cgns = spec.linux_.find_namespace(oci::NamespaceType::kCgroup);
  if ((cgns && cgns->path.empty()) || hierarchies.empty()) return;
  bool v2_only = hierarchies.size() == 1 && hierarchies[0].fstype == "cgroup2";
  for (const auto& m : spec.mounts) {
    if (m.parsed.bind || (m.type != "cgroup" && m.type != "cgroup2")) continue;
    std::string dest = mount_key(m.destination);
    for (const auto& h : hierarchies) {
      std::string key = v2_only ? dest : path_join(dest, split_parent(h.mountpoint).second);
      o.ext_mnt.emplace_back(key, dump ? key : path_join(h.mountpoint, h.path));
    }
  }
}

// Where the container's files were at dump time: readlink of the init's fds 0-2.
std::string descriptors_json(pid_t pid) {
  oci::Json fds = oci::Json::array();
  for (int fd = 0; fd < 3; ++fd) {
    char buf[4096];
    ssize_t n = ::readlink(cat("/proc/", pid, "/fd/", fd).c_str(), buf, sizeof buf - 1);
    fds.push_back(n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string());
  }
  return fds.dump();
}

// The CRIU error, with the lines of its log that say why. When CRIU failed to probe the
// kernel before doing anything (kerndat: e.g. CRIU 3.17 on a kernel newer than it knows,
// "vdso: Unexpected rt vDSO area bounds"), the error says that CRIU cannot run on this
// kernel: no checkpoint or restore can work here, whatever the container.
Error criu_error(const Error& e, const std::string& log) {
  std::string why = criu::log_errors(log);
  if (why.find("kerndat") != std::string::npos) {
    utsname u{};
    std::string release = ::uname(&u) == 0 ? u.release : "?";
    return Error(ENOTSUP, cat("CRIU cannot run on this kernel (Linux ", release, "): its kernel probe failed: ", why,
                              " (log: ", log, ")"));
  }
  return Error(e.code(), cat(e.message(), why.empty() ? "" : ": ", why, " (log: ", log, ")"));
}

bool is_frozen(cgroups::Manager* cg) {
  if (!cg) return false;
  auto f = cg->frozen();
  return f && *f;
}

}  // namespace

Status checkpoint(const CheckpointOptions& o) {
  std::string criu_bin = TRY(criu::find_criu());
  std::string image_path = absolute_path(o.criu.image_path.empty() ? "checkpoint" : o.criu.image_path);
  criu::Request req;
  req.type = o.pre_dump ? criu::ReqType::kPreDump : criu::ReqType::kDump;
  std::string log_dir;
  {
    auto dir = TRY(ContainerDir::open(o.root, o.id));
    State s = TRY(dir.load());
    std::unique_ptr<cgroups::Manager> cg;
    if (!s.cgroup.empty() && !s.creating) cg = TRY(cgroups::Manager::load(s.cgroup));
    ContainerStatus st = live_status(s, dir.path(), is_frozen(cg.get()));
    if (st != ContainerStatus::kRunning && st != ContainerStatus::kPaused)
      return Error(ESRCH, cat("container not running (it is ", status_name(st), ")"));
    auto spec = TRYC(oci::load_spec(dir.path()), "the container's saved config");

    auto images = TRY(make_dir(image_path, "--image-path"));
    log_dir = image_path;
    UniqueFd work;
    if (!o.criu.work_path.empty()) {
      log_dir = absolute_path(o.criu.work_path);
      work = TRY(make_dir(log_dir, "--work-path"));
    }
    criu::Opts opts = TRY(common_opts(o.criu, images.get(), "dump.log"));
    if (work) opts.work_dir_fd = work.get();
    opts.pid = s.pid;
    opts.root = s.rootfs;
    opts.leave_running = o.leave_running;
    if (auto label = spec.annotations.find("org.criu.config"); label != spec.annotations.end())
      opts.config_file = label->second;
    for (auto t : {oci::NamespaceType::kNetwork, oci::NamespaceType::kPid}) {
      const auto* ns = spec.linux_.find_namespace(t);
      if (!ns || ns->path.empty()) continue;
      if (t == oci::NamespaceType::kNetwork && (*opts.empty_ns & CLONE_NEWNET)) continue;
      struct stat nst{};
      if (::stat(ns->path.c_str(), &nst) < 0)
        return Error::from_errno(cat("linux.namespaces ", criu_ns_name(t), " path ", ns->path));
      opts.external.push_back(cat(criu_ns_name(t), "[", nst.st_ino, "]:", ext_ns_key(t)));
    }
    if (cg) {
      std::string freezer = cg->dir_for("freezer");
      opts.freeze_cgroup = freezer.empty() ? cg->dir_for("") : freezer;
    }
    if (!o.parent_path.empty()) {
      opts.parent_img = o.parent_path;
      opts.track_mem = true;
    }
    if (!o.pre_dump) {
      add_external_mounts(spec, true, s.bundle, s.pid, opts);
      if (cg) add_cgroup_mounts(spec, cg->mounts(), true, opts);
      TRY(write_file_atomic(path_join(image_path, kDescriptors), descriptors_json(s.pid), 0600));
    }
    if (o.pre_dump || o.criu.lazy_pages) {
      // As runc: ask CRIU first whether the kernel can track dirty memory / serve lazy pages.
      criu::Request fq;
      fq.type = criu::ReqType::kFeatureCheck;
      if (o.pre_dump) fq.want_mem_track = true;
      if (o.criu.lazy_pages) fq.want_lazy_pages = true;
      auto sw = TRY(criu::Swrk::start(criu_bin, {}));
      auto fr = TRYC(sw.call(fq, {}), "CRIU feature check");
      if (o.pre_dump && fr.mem_track && !*fr.mem_track)
        return Error(ENOTSUP, "--pre-dump: CRIU cannot track memory changes on this kernel (mem_dirty_track)");
      if (o.criu.lazy_pages && fr.lazy_pages && !*fr.lazy_pages)
        return Error(ENOTSUP, "--lazy-pages: CRIU cannot serve lazy pages on this kernel (userfaultfd)");
    }
    req.opts = std::move(opts);

    auto sw = TRY(criu::Swrk::start(criu_bin, {}));
    int status_fd = o.criu.status_fd;
    auto r = sw.call(req, [&](const std::string& script, pid_t, UniqueFd) -> Status {
      if (script == "status-ready" && status_fd >= 0) {
        char zero = 0;
        if (::write(status_fd, &zero, 1) != 1) log::warn("checkpoint", "cannot write to --status-fd");
        ::close(status_fd);
        status_fd = -1;
      }
      return ok();
    });
    if (!r) {
      if (!o.pre_dump) ::unlink(path_join(image_path, kDescriptors).c_str());  // no image: only the log stays
      return criu_error(r.error(), path_join(log_dir, "dump.log"));
    }
  }
  // As runc: a full dump that did not leave the container running ends it.
  if (!o.leave_running && !o.pre_dump) TRYC(remove(o.root, o.id, true), "remove the checkpointed container");
  return ok();
}

namespace {

// Mount points CRIU needs in the rootfs (a new bundle, or files a create made and a
// cleanup removed): every mount that is not on a tmpfs the container mounts itself.
Status make_restore_mountpoints(const oci::Spec& spec, const std::string& rootfs, const std::string& bundle) {
  auto root = TRY(open_file(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC));
  auto on_tmpfs = [&](const std::string& dest) {
    for (const auto& m : spec.mounts)
      if (m.type == "tmpfs" && starts_with(dest, mount_key(m.destination) + "/")) return true;
    return false;
  };
  for (const auto& m : spec.mounts) {
    if (m.type == "cgroup" || m.type == "cgroup2" || on_tmpfs(mount_key(m.destination))) continue;
    bool file = false;
    if (m.parsed.bind) {
      std::string src = m.source.empty() || m.source[0] == '/' ? m.source : path_join(bundle, m.source);
      struct stat st{};
      file = ::stat(src.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
    }
    auto made = file ? mkfile_in_root(root.get(), m.destination) : mkdir_in_root(root.get(), m.destination);
    if (!made) return std::move(made).error().context(cat("mount point ", m.destination));
  }
  return ok();
}

// "hierarchy:controllers:path" lines of /proc/<pid>/cgroup as CRIU's cgroup roots: the
// restored tasks go where CRIU itself was put (the container's new cgroup).
Result<std::vector<std::pair<std::string, std::string>>> cgroup_roots(pid_t pid) {
  auto text = TRY(read_regular_file(cat("/proc/", pid, "/cgroup"), 64 * 1024));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& line : split(text, '\n')) {
    auto a = line.find(':');
    auto b = a == std::string::npos ? std::string::npos : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (ctrls.empty() && path == "/") continue;  // an unused v2 mount on a v1 host
    out.emplace_back(ctrls, path);
  }
  return out;
}

Result<int> restore_in_own_mount_ns(const RestoreOptions& o, const std::string& criu_bin) {
  auto mode = TRY(criu::parse_cg_mode(o.criu.manage_cgroups_mode));
  (void)mode;
  std::string bundle = absolute_path(o.bundle.empty() ? "." : o.bundle);
  auto spec = TRY(oci::load_spec(bundle));
  if (!spec.process) return Error::invalid(cat(bundle, "/config.json: process: required to restore a container"));
  if (!spec.linux_.has_namespace(oci::NamespaceType::kMount))
    return Error::invalid("linux.namespaces: a mount namespace is required");
  if (spec.process->terminal && o.console_socket.empty())
    return Error::invalid("process.terminal is true: pass --console-socket (or set it to false)");
  std::string rootfs = TRY(resolve_root_path(bundle, spec.root_path));
  std::string image_path = absolute_path(o.criu.image_path.empty() ? "checkpoint" : o.criu.image_path);
  auto images = TRYC(open_file(image_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "--image-path");
  if (::faccessat(images.get(), "inventory.img", F_OK, 0) < 0)
    return Error(ENOENT, cat("--image-path ", image_path, ": no checkpoint there (inventory.img is missing)"));
  oci::Json descriptors = oci::Json::array();
  if (path_exists(path_join(image_path, kDescriptors))) {
    auto text = TRY(read_regular_file(path_join(image_path, kDescriptors), kMaxDescriptorsBytes));
    descriptors = TRYC(oci::parse_json(text, kDescriptors), image_path);
    if (!descriptors.is_array()) return Error::invalid(cat(image_path, "/", kDescriptors, ": not a JSON array"));
  }
  std::string log_dir = image_path;
  UniqueFd work;
  if (!o.criu.work_path.empty()) {
    log_dir = absolute_path(o.criu.work_path);
    work = TRY(make_dir(log_dir, "--work-path"));
  }
  criu::Opts opts = TRY(common_opts(o.criu, images.get(), "restore.log"));
  if (work) opts.work_dir_fd = work.get();
  opts.evasive_devices = true;
  opts.rst_sibling = true;
  if (auto label = spec.annotations.find("org.criu.config"); label != spec.annotations.end())
    opts.config_file = label->second;

  // Namespaces the config joins: net and pid are handed to CRIU as fds (runc's
  // extRootNetNS/extRootPidNS), the others joined by path.
  std::vector<UniqueFd> ns_fds;
  std::vector<int> pass_fds;
  for (const auto& ns : spec.linux_.namespaces) {
    if (ns.path.empty()) continue;
    if (ns.type == oci::NamespaceType::kNetwork || ns.type == oci::NamespaceType::kPid) {
      if (ns.type == oci::NamespaceType::kNetwork && (*opts.empty_ns & CLONE_NEWNET)) continue;
      auto fd = sys::open_namespace(ns.path);
      if (!fd) return std::move(fd).error().context(cat("linux.namespaces ", criu_ns_name(ns.type), " path"));
      opts.inherit_fd.emplace_back(ext_ns_key(ns.type), 4 + static_cast<int>(pass_fds.size()));
      pass_fds.push_back(fd->get());
      ns_fds.push_back(std::move(*fd));
    } else if (ns.type == oci::NamespaceType::kCgroup) {
      return Error::invalid("linux.namespaces: restoring into a joined cgroup namespace is not supported");
    } else {
      opts.join_ns.push_back({criu_ns_name(ns.type), ns.path});
    }
  }
  add_external_mounts(spec, false, bundle, 0, opts);
  // The init's stdio pipes at dump time are replaced by ours (the engine's new pipes).
  for (size_t i = 0; i < descriptors.size() && i < 3; ++i) {
    if (descriptors[i].is_string() && starts_with(descriptors[i].get<std::string>(), "pipe:"))
      opts.inherit_fd.emplace_back(descriptors[i].get<std::string>(), static_cast<int>(i));
  }
  std::string root = absolute_path(o.root);
  auto dir = TRY(ContainerDir::create(root, o.id));
  bool committed = false;
  ScopeExit remove_dir([&] {
    if (!committed) (void)dir.remove();
  });
  State state = initial_state(spec, {o.id, bundle, rootfs, root, o.systemd_cgroup});
  TRY(dir.save(state));
  PendingContainer setup;  // the restored init (once CRIU has reported it) and the cgroup
  setup.cgroup = TRY(make_cgroup(spec, dir, state));
  add_cgroup_mounts(spec, setup.cgroup->mounts(), false, opts);

  TRY(make_restore_mountpoints(spec, rootfs, bundle));
  // CRIU pivots into a mount of the rootfs; it lives in our own mount namespace only.
  std::string criu_root = path_join(dir.path(), "criu-root");
  if (::mkdir(criu_root.c_str(), 0755) < 0) return Error::from_errno(cat("mkdir ", criu_root));
  TRY(sys::mount(rootfs, criu_root, "", MS_BIND | MS_REC));
  ScopeExit unmount_root([&] {
    (void)sys::umount2(criu_root, MNT_DETACH);
    ::rmdir(criu_root.c_str());
  });
  opts.root = criu_root;
  TRY(write_file_atomic(dir.path() + "/config.json", TRY(read_regular_file(bundle + "/config.json"))));

  std::optional<SignalForwarder> forwarder;
  if (!o.detach) forwarder.emplace();
  auto sw = TRY(criu::Swrk::start(criu_bin, pass_fds));
  ns_fds.clear();
  // CRIU is put in the new cgroup, with the config's limits; the restored tasks follow it.
  TRYC(setup.cgroup->apply(cgroup_resources(spec)), "cgroups");
  TRYC(setup.cgroup->add_process(sw.pid()), "move criu into the container's cgroup");
  opts.cg_root = TRY(cgroup_roots(sw.pid()));
  criu::Request req;
  req.type = criu::ReqType::kRestore;
  req.opts = std::move(opts);
  auto notify = [&](const std::string& script, pid_t pid, UniqueFd fd) -> Status {
    if (script == "setup-namespaces") {
      State hs = state;
      hs.pid = pid;
      std::string st = state_json(hs, ContainerStatus::kCreating, false);
      TRY(run_hooks(spec.hooks.prestart, st, "prestart"));
      TRY(run_hooks(spec.hooks.create_runtime, st, "createRuntime"));
    } else if (script == "post-restore") {
      setup.pid = pid;
      state.pid = pid;
      state.pid_start_time = process_start_time(pid);
      TRY(dir.save(state));
    } else if (script == "orphan-pts-master") {
      if (!fd) return Error(EPROTO, "criu sent no pty master");
      auto sock = TRY(connect_console_socket(o.console_socket));
      TRYC(sys::send_fd(sock.get(), fd.get(), "console"), "send the pty master to --console-socket");
    } else if (script == "status-ready" && o.criu.status_fd >= 0) {
      char zero = 0;
      if (::write(o.criu.status_fd, &zero, 1) != 1) log::warn("restore", "cannot write to --status-fd");
    }
    return ok();
  };
  auto resp = sw.call(req, notify);
  if (!resp) return criu_error(resp.error(), path_join(log_dir, "restore.log"));
  pid_t pid = resp->restored_pid > 0 ? resp->restored_pid : setup.pid;
  if (pid <= 0) return Error(EPROTO, "criu restored no process");
  setup.pid = pid;
  state.pid = pid;
  state.pid_start_time = process_start_time(pid);
  state.creating = false;
  TRY(dir.save(state));
  if (!o.pid_file.empty()) TRYC(write_file_atomic(absolute_path(o.pid_file), std::to_string(pid), 0644), "--pid-file");
  committed = true;
  setup.release();
  unmount_root.dismiss();
  (void)sys::umount2(criu_root, MNT_DETACH);
  ::rmdir(criu_root.c_str());
  if (o.detach) return 0;

  { ContainerDir unlocked = std::move(dir); }  // remove() takes the lock
  auto status = forwarder->wait(pid, -1);
  (void)remove(o.root, o.id, true);
  return status;
}

// True when "/" is the initramfs (rootfs): the one mount pivot_root cannot leave.
bool root_is_rootfs() {
  auto text = read_regular_file("/proc/self/mountinfo", 4 << 20);
  if (!text) return false;
  for (const auto& line : split(*text, '\n')) {
    auto f = split(line, ' ');
    auto dash = line.find(" - ");
    if (f.size() > 4 && f[4] == "/" && dash != std::string::npos)
      return starts_with(std::string_view(line).substr(dash + 3), "rootfs ");
  }
  return false;
}

// CRIU's restore pivot_roots out of "/", which the initramfs refuses (EINVAL): in our
// own mount namespace, "/" becomes a bind mount of itself, moved over it and chrooted
// into (what switch_root does). Same files, same paths.
Status leave_rootfs() {
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) return Error::from_errno("getcwd");
  char tmpl[] = "/tmp/vessel-restore-root.XXXXXX";
  if (!::mkdtemp(tmpl)) return Error::from_errno("mkdtemp /tmp/vessel-restore-root");
  std::string d = tmpl;
  ScopeExit rm([&] { ::rmdir(d.c_str()); });
  TRY(sys::mount("/", d, "", MS_BIND | MS_REC));
  if (::chdir(d.c_str()) < 0) return Error::from_errno(cat("chdir ", d));
  TRY(sys::mount(d, "/", "", MS_MOVE));
  if (::chroot(".") < 0) return Error::from_errno("chroot");
  if (::chdir(cwd) < 0) return Error::from_errno(cat("chdir ", cwd));  // relative paths keep their meaning
  return ok();
}

}  // namespace

Result<int> restore(const RestoreOptions& o) {
  TRY(validate_id(o.id));
  std::string criu_bin = TRY(criu::find_criu());
  TRY(criu::parse_cg_mode(o.criu.manage_cgroups_mode));
  TRY(parse_empty_ns(o.criu.empty_ns));
  // A mount namespace of our own (mounts propagate in from the host, never out): the
  // rootfs mount CRIU needs vanishes with us, even if we are killed.
  if (::unshare(CLONE_NEWNS) < 0) return Error::from_errno("unshare the mount namespace");
  TRYC(sys::mount("", "/", "", MS_SLAVE | MS_REC), "make / a slave mount");
  if (root_is_rootfs()) TRYC(leave_rootfs(), "leave the initramfs root for CRIU");
  return restore_in_own_mount_ns(o, criu_bin);
}

}  // namespace vessel::container
