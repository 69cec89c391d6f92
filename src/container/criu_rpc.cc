#include "container/criu_rpc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::container::criu {
namespace {

// ---- protobuf wire format (proto2): varints and length-delimited fields ----

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, int field, int wire) { put_varint(out, (static_cast<uint64_t>(field) << 3) | wire); }

// int32 is sign-extended to 64 bits on the wire (a negative takes 10 bytes).
void put_int(std::string& out, int field, int64_t v) {
  put_tag(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));
}
void put_bool(std::string& out, int field, bool v) { put_int(out, field, v ? 1 : 0); }
void put_bytes(std::string& out, int field, std::string_view v) {
  put_tag(out, field, 2);
  put_varint(out, v.size());
  out.append(v);
}

template <typename T>
void put_opt(std::string& out, int field, const std::optional<T>& v) {
  if (!v) return;
  if constexpr (std::is_same_v<T, bool>) put_bool(out, field, *v);
  else put_int(out, field, static_cast<int64_t>(*v));
}
void put_str(std::string& out, int field, const std::string& v) {
  if (!v.empty()) put_bytes(out, field, v);
}

std::string encode_opts(const Opts& o) {
  std::string out;
  put_int(out, 1, o.images_dir_fd);
  put_opt(out, 2, o.pid);
  put_opt(out, 3, o.leave_running);
  put_opt(out, 4, o.ext_unix_sk);
  put_opt(out, 5, o.tcp_established);
  put_opt(out, 6, o.evasive_devices);
  put_opt(out, 7, o.shell_job);
  put_opt(out, 8, o.file_locks);
  put_opt(out, 9, o.log_level);
  put_str(out, 10, o.log_file);
  put_opt(out, 12, o.notify_scripts);
  put_str(out, 13, o.root);
  put_str(out, 14, o.parent_img);
  put_opt(out, 15, o.track_mem);
  put_opt(out, 16, o.auto_dedup);
  put_opt(out, 17, o.work_dir_fd);
  for (const auto& [k, v] : o.ext_mnt) {
    std::string m;
    put_bytes(m, 1, k);
    put_bytes(m, 2, v);
    put_bytes(out, 23, m);
  }
  put_opt(out, 24, o.manage_cgroups);
  for (const auto& [ctrl, path] : o.cg_root) {
    std::string m;
    if (!ctrl.empty()) put_bytes(m, 1, ctrl);
    put_bytes(m, 2, path);
    put_bytes(out, 25, m);
  }
  put_opt(out, 26, o.rst_sibling);
  for (const auto& [key, fd] : o.inherit_fd) {
    std::string m;
    put_bytes(m, 1, key);
    put_int(m, 2, fd);
    put_bytes(out, 27, m);
  }
  if (o.manage_cgroups_mode) put_int(out, 34, static_cast<int64_t>(*o.manage_cgroups_mode));
  for (const auto& e : o.external) put_bytes(out, 37, e);
  put_opt(out, 38, o.empty_ns);
  for (const auto& j : o.join_ns) {
    std::string m;
    put_bytes(m, 1, j.ns);
    put_bytes(m, 2, j.ns_file);
    put_bytes(out, 39, m);
  }
  put_str(out, 44, o.freeze_cgroup);
  put_opt(out, 48, o.lazy_pages);
  put_opt(out, 49, o.status_fd);
  put_opt(out, 50, o.orphan_pts_master);
  put_str(out, 51, o.config_file);
  if (o.network_lock) put_int(out, 64, static_cast<int64_t>(*o.network_lock));
  put_opt(out, 65, o.mntns_compat_mode);
  return out;
}

// A cursor over one message's bytes.
struct Reader {
  std::string_view d;
  size_t pos = 0;

  bool done() const { return pos >= d.size(); }
  Result<uint64_t> varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= d.size()) return Error(EPROTO, "criu rpc: truncated varint");
      auto b = static_cast<uint8_t>(d[pos++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Error(EPROTO, "criu rpc: varint too long");
  }
  Result<std::string_view> bytes() {
    uint64_t n = TRY(varint());
    if (n > d.size() - pos) return Error(EPROTO, "criu rpc: truncated field");
    auto v = d.substr(pos, n);
    pos += n;
    return v;
  }
  // Skips a field of wire type `wire` (unknown fields are allowed).
  Status skip(int wire) {
    switch (wire) {
      case 0: TRY(varint()); return ok();
      case 1: if (d.size() - pos < 8) break; pos += 8; return ok();
      case 2: TRY(bytes()); return ok();
      case 5: if (d.size() - pos < 4) break; pos += 4; return ok();
      default: return Error(EPROTO, cat("criu rpc: unsupported wire type ", wire));
    }
    return Error(EPROTO, "criu rpc: truncated field");
  }
};

// Calls `f(field, wire, reader)` for each field of `data`; `f` consumes the value or returns false to skip it.
template <typename F>
Status for_each_field(std::string_view data, F&& f) {
  Reader r{data};
  while (!r.done()) {
    uint64_t tag = TRY(r.varint());
    int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    bool used = TRY(f(field, wire, r));
    if (!used) TRY(r.skip(wire));
  }
  return ok();
}

// Reads a varint field's value as int32 (sign-extended on the wire).
Result<int> as_int(int wire, Reader& r) {
  if (wire != 0) return Error(EPROTO, "criu rpc: expected a varint");
  return static_cast<int>(static_cast<int64_t>(TRY(r.varint())));
}

Result<std::string> as_string(int wire, Reader& r) {
  if (wire != 2) return Error(EPROTO, "criu rpc: expected a string");
  return std::string(TRY(r.bytes()));
}

}  // namespace

Result<CgMode> parse_cg_mode(std::string_view text) {
  if (text.empty()) return CgMode::kDefault;
  if (text == "soft") return CgMode::kSoft;
  if (text == "full") return CgMode::kFull;
  if (text == "strict") return CgMode::kStrict;
  if (text == "ignore") return CgMode::kIgnore;
  return Error::invalid(cat("--manage-cgroups-mode \"", text, "\": must be soft, full, strict or ignore"));
}

std::string encode(const Request& r) {
  std::string out;
  put_int(out, 1, static_cast<int64_t>(r.type));
  if (r.opts) put_bytes(out, 2, encode_opts(*r.opts));
  put_opt(out, 3, r.notify_success);
  if (r.want_mem_track || r.want_lazy_pages) {
    std::string f;
    put_opt(f, 1, r.want_mem_track);
    put_opt(f, 2, r.want_lazy_pages);
    put_bytes(out, 5, f);
  }
  return out;
}

Result<Response> decode_response(std::string_view data) {
  Response resp;
  bool have_type = false, have_success = false;
  TRY(for_each_field(data, [&](int field, int wire, Reader& r) -> Result<bool> {
    switch (field) {
      case 1: resp.type = static_cast<ReqType>(TRY(as_int(wire, r))); have_type = true; return true;
      case 2: resp.success = TRY(as_int(wire, r)) != 0; have_success = true; return true;
      case 4: {  // criu_restore_resp
        auto sub = TRY(as_string(wire, r));
        TRY(for_each_field(sub, [&](int f, int w, Reader& rr) -> Result<bool> {
          if (f != 1) return false;
          resp.restored_pid = TRY(as_int(w, rr));
          return true;
        }));
        return true;
      }
      case 5: {  // criu_notify
        auto sub = TRY(as_string(wire, r));
        TRY(for_each_field(sub, [&](int f, int w, Reader& rr) -> Result<bool> {
          if (f == 1) resp.notify_script = TRY(as_string(w, rr));
          else if (f == 2) resp.notify_pid = TRY(as_int(w, rr));
          else return false;
          return true;
        }));
        return true;
      }
      case 7: resp.cr_errno = TRY(as_int(wire, r)); return true;
      case 8: {  // criu_features
        auto sub = TRY(as_string(wire, r));
        TRY(for_each_field(sub, [&](int f, int w, Reader& rr) -> Result<bool> {
          if (f == 1) resp.mem_track = TRY(as_int(w, rr)) != 0;
          else if (f == 2) resp.lazy_pages = TRY(as_int(w, rr)) != 0;
          else return false;
          return true;
        }));
        return true;
      }
      case 9: resp.cr_errmsg = TRY(as_string(wire, r)); return true;
      case 10: {  // criu_version
        auto sub = TRY(as_string(wire, r));
        TRY(for_each_field(sub, [&](int f, int w, Reader& rr) -> Result<bool> {
          if (f == 1) resp.version_major = TRY(as_int(w, rr));
          else if (f == 2) resp.version_minor = TRY(as_int(w, rr));
          else if (f == 4) resp.version_sublevel = TRY(as_int(w, rr));
          else return false;
          return true;
        }));
        return true;
      }
      default: return false;
    }
  }));
  if (!have_type || !have_success) return Error(EPROTO, "criu rpc: response without type or success");
  return resp;
}

Result<Request> decode_request(std::string_view data) {
  Request req;
  TRY(for_each_field(data, [&](int field, int wire, Reader& r) -> Result<bool> {
    if (field == 1) {
      req.type = static_cast<ReqType>(TRY(as_int(wire, r)));
    } else if (field == 3) {
      req.notify_success = TRY(as_int(wire, r)) != 0;
    } else if (field == 2) {
      auto sub = TRY(as_string(wire, r));
      Opts o;
      TRY(for_each_field(sub, [&](int f, int w, Reader& rr) -> Result<bool> {
        auto pair = [&](auto& vec, bool int_val) -> Status {
          auto m = TRY(as_string(w, rr));
          std::string k, v;
          int fdv = -1;
          TRY(for_each_field(m, [&](int ff, int ww, Reader& r3) -> Result<bool> {
            if (ff == 1) k = TRY(as_string(ww, r3));
            else if (ff == 2 && int_val) fdv = TRY(as_int(ww, r3));
            else if (ff == 2) v = TRY(as_string(ww, r3));
            else return false;
            return true;
          }));
          if constexpr (std::is_same_v<std::decay_t<decltype(vec)>, std::vector<std::pair<std::string, int>>>)
            vec.emplace_back(k, fdv);
          else
            vec.emplace_back(k, v);
          return ok();
        };
        switch (f) {
          case 1: o.images_dir_fd = TRY(as_int(w, rr)); return true;
          case 2: o.pid = TRY(as_int(w, rr)); return true;
          case 3: o.leave_running = TRY(as_int(w, rr)) != 0; return true;
          case 5: o.tcp_established = TRY(as_int(w, rr)) != 0; return true;
          case 10: o.log_file = TRY(as_string(w, rr)); return true;
          case 13: o.root = TRY(as_string(w, rr)); return true;
          case 14: o.parent_img = TRY(as_string(w, rr)); return true;
          case 23: TRY(pair(o.ext_mnt, false)); return true;
          case 25: TRY(pair(o.cg_root, false)); return true;
          case 27: TRY(pair(o.inherit_fd, true)); return true;
          case 34: o.manage_cgroups_mode = static_cast<CgMode>(TRY(as_int(w, rr))); return true;
          case 37: o.external.push_back(TRY(as_string(w, rr))); return true;
          case 44: o.freeze_cgroup = TRY(as_string(w, rr)); return true;
          default: return false;
        }
      }));
      req.opts = std::move(o);
    } else {
      return false;
    }
    return true;
  }));
  return req;
}

Result<std::string> find_criu() {
  if (const char* env = std::getenv("VESSEL_CRIU"); env && *env) {
    if (::access(env, X_OK) == 0) return std::string(env);
    return Error::from_errno(cat("VESSEL_CRIU=", env));
  }
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) dirs = split(path, ':');
  for (const char* d : {"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"}) dirs.emplace_back(d);
  for (const auto& d : dirs) {
    if (d.empty()) continue;
    std::string p = path_join(d, "criu");
    struct stat st{};
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0) return p;
  }
  return Error(ENOENT,
               "CRIU is not installed: checkpoint and restore need the criu binary (Debian: apt-get install criu; "
               "or set VESSEL_CRIU to its path)");
}

Result<Swrk> Swrk::start(const std::string& criu, const std::vector<int>& fds) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Error::from_errno("socketpair for criu");
  UniqueFd ours(sv[0]), theirs(sv[1]);
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork criu");
  if (pid == 0) {
    // Move every fd out of the way first (3 and up may be taken by the ones we place).
    std::vector<int> src{theirs.get()};
    src.insert(src.end(), fds.begin(), fds.end());
    std::vector<int> high;
    for (int fd : src) high.push_back(::fcntl(fd, F_DUPFD_CLOEXEC, 100));
    for (size_t i = 0; i < high.size(); ++i) {
      if (high[i] < 0 || ::dup2(high[i], static_cast<int>(3 + i)) < 0) ::_exit(127);
    }
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execl(criu.c_str(), "criu", "swrk", "3", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return Swrk(pid, std::move(ours));
}

Swrk::Swrk(Swrk&& o) noexcept : pid_(std::exchange(o.pid_, -1)), sock_(std::move(o.sock_)) {}

Swrk::~Swrk() {
  sock_.reset();
  if (pid_ > 0) {
    // Closing the socket ends a swrk waiting for a request; one still working is killed.
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      ::usleep(5000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

Result<Response> Swrk::call(const Request& req, const Notify& notify) {
  auto send = [&](const Request& r) -> Status {
    std::string data = encode(r);
    if (::send(sock_.get(), data.data(), data.size(), MSG_NOSIGNAL) < 0) return Error::from_errno("send request to criu");
    return ok();
  };
  TRY(send(req));
  std::string buf(64 * 1024, '\0');
  while (true) {
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(sock_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("receive from criu");
    UniqueFd passed;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (!passed) passed.reset(fd);
        else ::close(fd);
      }
    }
    if (n == 0) {
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) pid_ = -1;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return Error(ENOEXEC, "criu could not be started (exit 127)");
      std::string how = pid_ >= 0                ? "still running"
                        : WIFSIGNALED(status)     ? cat("killed by signal ", WTERMSIG(status))
                                                  : cat("exit status ", WEXITSTATUS(status));
      return Error(EPROTO, cat("criu failed: it exited without answering (", how, ")"));
    }
    if (static_cast<size_t>(n) == buf.size() || (msg.msg_flags & MSG_TRUNC)) return Error(EMSGSIZE, "criu rpc: response too large");
    auto resp = TRY(decode_response(std::string_view(buf.data(), static_cast<size_t>(n))));
    if (!resp.success) {
      std::string what = resp.cr_errmsg.empty() ? "" : cat(": ", resp.cr_errmsg);
      if (resp.cr_errno) what += cat(" (", ::strerror(resp.cr_errno), ")");
      return Error(resp.cr_errno ? resp.cr_errno : EIO, cat("criu failed", what));
    }
    if (resp.type == ReqType::kNotify) {
      Status st = notify ? notify(resp.notify_script, resp.notify_pid, std::move(passed)) : ok();
      Request ack;
      ack.type = ReqType::kNotify;
      ack.notify_success = st.ok();
      TRY(send(ack));
      if (!st) return std::move(st).error().context(cat("criu notification ", resp.notify_script));
      continue;
    }
    if (resp.type != req.type) return Error(EPROTO, cat("criu rpc: answer of type ", static_cast<int>(resp.type)));
    ::shutdown(sock_.get(), SHUT_WR);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (req.type != ReqType::kPreDump && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
      return Error(EIO, cat("criu exited with status ", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
    return resp;
  }
}

std::string log_errors(const std::string& path, size_t max_lines) {
  auto fd = open_file(path, O_RDONLY);
  if (!fd) return "";
  struct stat st{};
  if (::fstat(fd->get(), &st) < 0) return "";
  constexpr off_t kTail = 256 * 1024;
  if (st.st_size > kTail) ::lseek(fd->get(), st.st_size - kTail, SEEK_SET);
  auto text = read_fd_bounded(fd->get(), kTail);
  if (!text) return "";
  std::vector<std::string> errors;
  for (const auto& raw : split(*text, '\n')) {
    std::string_view line = trim(raw);
    // "(00.012345) Error (criu/mount.c:123): what" -> "Error (criu/mount.c:123): what"
    auto p = line.find("Error (");
    if (p == std::string_view::npos) continue;
    std::string e(line.substr(p));
    bool seen = false;
    for (const auto& x : errors) seen = seen || x == e;
    if (!seen) errors.push_back(std::move(e));
  }
  std::vector<std::string> shown;
  size_t head = max_lines > 2 ? max_lines - 2 : max_lines;
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i < head || i + 2 >= errors.size()) shown.push_back(errors[i]);
    else if (shown.empty() || shown.back() != "...") shown.push_back("...");
  }
  std::string out;
  for (const auto& l : shown) out += (out.empty() ? "" : "; ") + l;
  return out;
}

NetworkLock network_lock_method() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) dirs = split(path, ':');
  for (const char* d : {"/usr/sbin", "/sbin"}) dirs.emplace_back(d);
  for (const auto& d : dirs)
    if (!d.empty() && ::access(path_join(d, "iptables-restore").c_str(), X_OK) == 0) return NetworkLock::kIptables;
  return NetworkLock::kNftables;
}

}  // namespace vessel::container::criu
