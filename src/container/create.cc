// `create`: the parent's side of setting a container up.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "cgroups/controllers.h"
#include "cgroups/manager.h"
#include "common/crash_point.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "container/console.h"
#include "container/hooks.h"
#include "container/init.h"
#include "container/seccomp.h"
#include "container/lifecycle.h"
#include "container/lsm.h"
#include "container/new_container.h"
#include "container/process_setup.h"
#include "container/rootfs_path.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

std::string mapping_text(const std::vector<oci::IdMapping>& ms) {
  std::string out;
  for (const auto& m : ms) out += cat(m.container_id, " ", m.host_id, " ", m.size, "\n");
  return out;
}

Status write_id_maps(pid_t pid, const oci::Linux& lx) {
  TRYC(write_file(cat("/proc/", pid, "/uid_map"), mapping_text(lx.uid_mappings), 0, 0), "linux.uidMappings");
  TRYC(write_file(cat("/proc/", pid, "/gid_map"), mapping_text(lx.gid_mappings), 0, 0), "linux.gidMappings");
  return ok();
}

Status write_time_offsets(const oci::Linux& lx) {
  std::string text;
  for (const auto& [clock, off] : lx.time_offsets) text += cat(clock, " ", off.secs, " ", off.nanosecs, "\n");
  if (text.empty()) return ok();
  return write_file("/proc/self/timens_offsets", text, 0, 0).context("linux.timeOffsets");
}

// Sends the seccomp notify fd to the listener with the container process state (runtime-spec).
Status send_seccomp_listener(const oci::Seccomp& sc, int fd, const State& state) {
  auto sock = TRYC(connect_console_socket(sc.listener_path, "the seccomp agent at"), "failed to connect with the seccomp agent");
  oci::Json st = oci::Json::parse(state_json(state, ContainerStatus::kCreating, false));
  oci::Json msg = {{"ociVersion", state.oci_version}, {"fds", {"seccompFd"}}, {"pid", state.pid},
                   {"metadata", sc.listener_metadata}, {"state", st}};
  return sys::send_fd(sock.get(), fd, msg.dump());
}

// How many fds systemd's socket activation passed to this process: LISTEN_FDS when
// LISTEN_PID is our pid (as go-systemd's activation.Files, which runc uses), else 0.
int socket_activation_fds() {
  const char* fds = std::getenv("LISTEN_FDS");
  const char* pid = std::getenv("LISTEN_PID");
  if (!fds || !pid) return 0;
  auto n = parse_u64(fds);
  auto p = parse_u64(pid);
  if (!n || !p || *p != static_cast<uint64_t>(::getpid()) || *n > 65536) return 0;
  for (uint64_t fd = 3; fd < 3 + *n; ++fd)
    if (::fcntl(static_cast<int>(fd), F_GETFD) < 0) return 0;  // not really passed
  return static_cast<int>(*n);
}

// A container without a mount namespace shares the runtime's (runtime-spec). When its
// config mounts anything, the mounts are made there, as runc makes them, but all under one
// bind of the rootfs that delete detaches (host_rootfs_tree()): runc leaves them on the
// host. With nothing to mount the rootfs is only a chroot. Where is the field that asks.
std::string host_mounts_wanted_by(const oci::Spec& spec) {
  if (spec.linux_.has_namespace(oci::NamespaceType::kMount)) return "";
  if (!spec.mounts.empty()) return cat("mounts (", spec.mounts.size(), " entries)");
  if (!spec.linux_.masked_paths.empty()) return "linux.maskedPaths";
  if (!spec.linux_.readonly_paths.empty()) return "linux.readonlyPaths";
  if (spec.root_readonly) return "root.readonly";
  if (!spec.linux_.rootfs_propagation.empty()) return "linux.rootfsPropagation";
  if (!spec.linux_.devices.empty()) return "linux.devices";
  return "";
}

// Opens every bind source of the config in the mount namespace of the init `pid` (still the
// host's mounts, before pivot_root) with our credentials, not the container root's, and sends
// each to the init in config order, as runc 1.1 does: a source under a directory the
// container's root may not search is still bound. A child does it: setns(CLONE_NEWNS) would
// also move our own root and cwd. A failure goes to the init as an error, which it reports.
Status send_mount_sources(const oci::Spec& spec, const std::string& bundle, pid_t pid, SyncSocket& sock) {
  auto ns = TRYC(open_file(cat("/proc/", pid, "/ns/mnt"), O_RDONLY), "open the container's mount namespace");
  pid_t helper = ::fork();
  if (helper < 0) return Error::from_errno("fork");
  if (helper == 0) {
    if (::setns(ns.get(), CLONE_NEWNS) < 0) {
      (void)sock.send_error(Error::from_errno("join the container's mount namespace to open bind sources"));
      ::_exit(1);
    }
    for (size_t i = 0; i < spec.mounts.size(); ++i) {
      const oci::Mount& m = spec.mounts[i];
      if (!m.parsed.bind) continue;
      std::string source = m.source.empty() || m.source[0] == '/' ? m.source : path_join(bundle, m.source);
      int fd = ::open(source.c_str(), O_PATH | O_CLOEXEC);
      if (fd < 0) {
        (void)sock.send_error(Error::from_errno(cat("mounts[", i, "] ", m.destination, ": bind source ", source)));
        ::_exit(1);
      }
      if (!sock.send_fd(SyncMsg::kMountSourceFd, fd)) ::_exit(1);
      ::close(fd);
    }
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
  }
  return ok();
}

// The host id that container id 0 maps to (0 without a mapping).
uint32_t host_id_of_root(const std::vector<oci::IdMapping>& ms) {
  for (const auto& m : ms)
    if (m.container_id == 0) return m.host_id;
  return 0;
}

}  // namespace

// The config's limits; the device rules are linux.resources.devices in order, then the
// defaults every container needs (null, zero, tty, pts…), as runc does. linux.devices only
// creates nodes: it grants no access (a node the rules deny stays unusable).
oci::LinuxResources cgroup_resources(const oci::Spec& spec) {
  oci::LinuxResources r = spec.linux_.resources;
  if (r.devices.empty()) return r;
  for (auto& rule : cgroups::default_device_rules()) r.devices.push_back(rule);
  return r;
}

Result<pid_t> create(const CreateOptions& o) {
  TRY(validate_id(o.id));
  TRY(check_preserve_fds(o.preserve_fds));
  std::string bundle = absolute_path(o.bundle.empty() ? "." : o.bundle);
  auto spec = TRY(oci::load_spec(bundle));
  if (!spec.process) return Error::invalid(cat(bundle, "/config.json: process: required to create a container"));
  const std::string host_mounts = host_mounts_wanted_by(spec);
  if (!host_mounts.empty() && spec.linux_.has_namespace(oci::NamespaceType::kUser))
    return Error::invalid(cat("linux.namespaces: without a mount namespace, ", host_mounts,
                              " would be mounted in the runtime's, which a user namespace may not do; add a mount namespace"));
  // systemd socket activation, as runc: the LISTEN_FDS fds from 3 that were passed to this
  // process go to the init, before the --preserve-fds ones, with LISTEN_FDS=N LISTEN_PID=1.
  int listen_fds = socket_activation_fds();
  if (listen_fds > 0) {
    auto& env = spec.process->env;
    std::erase_if(env, [](const std::string& e) { return starts_with(e, "LISTEN_FDS=") || starts_with(e, "LISTEN_PID="); });
    env.push_back(cat("LISTEN_FDS=", listen_fds));
    env.push_back("LISTEN_PID=1");
    TRYC(check_preserve_fds(listen_fds + o.preserve_fds), "LISTEN_FDS");
  }
  TRY(check_security_labels(spec));
  std::string rootfs = TRY(resolve_root_path(bundle, spec.root_path));
  if (spec.process->terminal && o.console_socket.empty() && o.console_fd < 0)
    return Error::invalid("process.terminal is true: pass --console-socket (or set it to false)");
  if (const auto* userns = spec.linux_.find_namespace(oci::NamespaceType::kUser);
      userns && !userns->path.empty() && spec.linux_.find_namespace(oci::NamespaceType::kPid) &&
      spec.linux_.find_namespace(oci::NamespaceType::kPid)->path.empty())
    return Error::invalid("linux.namespaces: joining a user namespace by path with a new pid namespace is not supported");

  // The state is saved (atomically) after every step that makes something, still
  // `creating`: a create killed anywhere leaves a container that list shows and
  // delete removes with all it made (see tests/integration/container/crash_test.cc).
  std::string root = absolute_path(o.root);
  auto dir = TRY(ContainerDir::create(root, o.id));
  std::optional<SeccompProgram> ctx_seccomp;
  bool committed = false;
  ScopeExit remove_dir([&] {
    if (!committed) (void)dir.remove();
  });
  State state = initial_state(spec, {o.id, bundle, rootfs, root, o.systemd_cgroup});
  TRY(dir.save(state));
  crash_point("create:state-saved");

  if (::mkfifo(dir.fifo_path().c_str(), 0622) < 0) return Error::from_errno(cat("mkfifo ", dir.fifo_path()));
  crash_point("create:fifo");
  // The init opens it as the container's root: in a user namespace that is a mapped id.
  if (::chmod(dir.fifo_path().c_str(), 0622) < 0 ||
      ::chown(dir.fifo_path().c_str(), host_id_of_root(spec.linux_.uid_mappings), host_id_of_root(spec.linux_.gid_mappings)) < 0)
    return Error::from_errno(cat("chown ", dir.fifo_path()));
  auto fifo = TRY(open_file(dir.fifo_path(), O_PATH));
  UniqueFd console;
  int console_fd = o.console_fd;
  if (!o.console_socket.empty()) {
    console = TRY(connect_console_socket(o.console_socket));
    console_fd = console.get();
  }

  if (spec.linux_.seccomp)
    ctx_seccomp = TRYC(compile_seccomp_cached(*spec.linux_.seccomp, path_join(o.root, ".seccomp-cache")), "linux.seccomp");

  PendingContainer setup;
  setup.cgroup = TRY(make_cgroup(spec, dir, state));
  if (!host_mounts.empty()) {
    auto tree = TRYC(host_rootfs_tree(rootfs), cat("without a mount namespace, for ", host_mounts));
    state.host_mount_id = tree.mount_id;
    TRY(dir.save(state));
    crash_point("create:host-mount-saved");
    TRYC(attach_host_rootfs_tree(tree, rootfs), cat("without a mount namespace, for ", host_mounts));
    setup.rootfs = rootfs;
    setup.host_mount_id = tree.mount_id;
    crash_point("create:host-mounted");
  }

  // Namespaces: new ones come from clone flags; joined ones are opened here.
  InitContext ctx;
  ctx.spec = &spec;
  ctx.no_pivot = o.no_pivot;
  ctx.no_new_keyring = o.no_new_keyring;
  ctx.console_socket = console_fd;
  ctx.fifo = fifo.get();
  ctx.preserve_fds = listen_fds + o.preserve_fds;
  ctx.close_fds.push_back(dir.lock_fd());
  ctx.seccomp = std::move(ctx_seccomp);
  ctx.rootfs.spec = &spec;
  ctx.rootfs.rootfs = rootfs;
  ctx.rootfs.bundle = bundle;
  ctx.rootfs.host_namespace = !host_mounts.empty();
  for (const auto& m : setup.cgroup->mounts()) ctx.rootfs.cgroups.push_back({m.mountpoint, m.fstype, m.options, m.path});

  std::vector<UniqueFd> ns_fds;
  int clone_flags = 0;
  bool new_userns = false, new_time = false;
  UniqueFd join_pid, join_time;
  for (const auto& ns : spec.linux_.namespaces) {
    int flag = oci::namespace_clone_flag(ns.type);
    if (ns.path.empty()) {
      if (ns.type == oci::NamespaceType::kCgroup) ctx.unshare_flags |= flag;  // after joining the cgroup
      else if (ns.type == oci::NamespaceType::kTime) new_time = true;
      else clone_flags |= flag;
      if (ns.type == oci::NamespaceType::kUser) new_userns = true;
      continue;
    }
    auto fd = sys::open_namespace(ns.path);  // a FIFO must not hang us
    if (!fd) return std::move(fd).error().context(cat("linux.namespaces ", oci::namespace_type_name(ns.type), " path"));
    if (ns.type == oci::NamespaceType::kPid) join_pid = std::move(*fd);
    else if (ns.type == oci::NamespaceType::kTime) join_time = std::move(*fd);
    else {
      if (ns.type == oci::NamespaceType::kUser) ctx.join_user_ns = true;
      ctx.join.emplace_back(ns.type, fd->get());
      ns_fds.push_back(std::move(*fd));
    }
  }
  if (ctx.join_user_ns) {
    // Namespaces must belong to the joined user namespace: the child creates them after setns.
    ctx.unshare_flags |= clone_flags;
    clone_flags = 0;
  }
  ctx.rootfs.in_userns = new_userns || ctx.join_user_ns;
  ctx.rootfs.new_cgroupns = ctx.unshare_flags & CLONE_NEWCGROUP;

  // pid and time namespaces apply to children: set them for our next child only.
  UniqueFd own_pid, own_time;
  if (join_pid) {
    own_pid = TRY(open_file("/proc/self/ns/pid", O_RDONLY));
    if (::setns(join_pid.get(), CLONE_NEWPID) < 0) return Error::from_errno("join pid namespace (linux.namespaces)");
  }
  if (join_time || new_time) {
    own_time = TRY(open_file("/proc/self/ns/time_for_children", O_RDONLY));
    if (join_time && ::setns(join_time.get(), CLONE_NEWTIME) < 0) return Error::from_errno("join time namespace");
    if (new_time) {
      if (::unshare(CLONE_NEWTIME) < 0) return Error::from_errno("create time namespace");
      TRY(write_time_offsets(spec.linux_));
    }
  }

  auto [parent_sock, child_sock] = TRY(SyncSocket::pair());
  ctx.sync = &child_sock;
  pid_t pid = sys::clone_fork(static_cast<unsigned long>(clone_flags));
  if (pid < 0) return Error::from_errno("clone container init");
  if (pid == 0) {
    parent_sock.close();
    container_init(ctx);
  }
  setup.pid = pid;
  child_sock.close();
  if (own_pid) ::setns(own_pid.get(), CLONE_NEWPID);
  if (own_time) ::setns(own_time.get(), CLONE_NEWTIME);
  // Killed before this save, the init is still ours alone: it dies with us (PDEATHSIG)
  // or on EOF of its sync socket.
  state.pid = pid;
  state.pid_start_time = process_start_time(pid);
  TRY(dir.save(state));
  crash_point("create:cloned");

  if (new_userns) TRY(write_id_maps(pid, spec.linux_));
  TRYC(setup.cgroup->apply(cgroup_resources(spec)), "cgroups");
  TRYC(setup.cgroup->add_process(pid), "join cgroup");
  crash_point("create:cgroup-joined");
  if (spec.process->oom_score_adj)
    TRYC(write_file(cat("/proc/", pid, "/oom_score_adj"), std::to_string(*spec.process->oom_score_adj), 0, 0),
         "process.oomScoreAdj");
  TRY(parent_sock.send(SyncMsg::kGo));
  crash_point("create:go");

  {
    auto msg = TRY(parent_sock.recv());
    if (msg.type == SyncMsg::kMountSources) {
      TRY(send_mount_sources(spec, bundle, pid, parent_sock));
      msg = TRY(parent_sock.recv());
    }
    if (msg.type == SyncMsg::kError) return Error(msg.code ? msg.code : EIO, msg.payload);
    if (msg.type != SyncMsg::kRunHooks) return Error(EPROTO, "sync: expected the init to ask for its hooks");
  }
  // A copy of the config, so that delete runs the poststop hooks that were configured at
  // create; from here on, as the first hooks may run.
  TRY(write_file_atomic(dir.path() + "/config.json", TRY(read_regular_file(bundle + "/config.json"))));
  crash_point("create:config-saved");
  std::string hook_state = state_json(state, ContainerStatus::kCreating, false);
  // In the bundle, as runc (which runs from it); the state says `creating`, as runc's.
  TRY(run_hooks(spec.hooks.prestart, hook_state, "prestart", bundle));
  TRY(run_hooks(spec.hooks.create_runtime, hook_state, "createRuntime", bundle));
  TRY(parent_sock.send(SyncMsg::kHooksDone, hook_state));
  crash_point("create:hooks-done");
  auto msg = TRY(parent_sock.recv());
  if (msg.type == SyncMsg::kSeccompFd) {
    TRYC(send_seccomp_listener(*spec.linux_.seccomp, msg.fd.get(), state), "linux.seccomp.listenerPath");
    msg = TRY(parent_sock.recv());
  }
  if (msg.type == SyncMsg::kError) return Error(msg.code ? msg.code : EIO, msg.payload);
  if (msg.type != SyncMsg::kReady) return Error(EPROTO, "sync: expected the init to be ready");

  crash_point("create:ready");
  state.creating = false;
  TRY(dir.save(state));
  crash_point("create:saved");
  if (!o.pid_file.empty()) TRYC(write_file_atomic(absolute_path(o.pid_file), std::to_string(pid), 0644), "--pid-file");
  committed = true;
  setup.release();  // the init and the cgroup stay; only our handles go
  return pid;
}

}  // namespace vessel::container
