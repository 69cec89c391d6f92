// Talking to CRIU (checkpoint/restore in userspace) the way runc and crun do: `criu swrk 3`
// on a SOCK_SEQPACKET socketpair, one protobuf message (criu's rpc.proto, proto2) per
// packet. The few messages vessel needs are encoded and decoded here by hand, so
// the only dependency is the criu binary itself, looked up at run time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::container::criu {

// criu_req_type.
enum class ReqType : uint32_t {
  kEmpty = 0, kDump = 1, kRestore = 2, kCheck = 3, kPreDump = 4, kNotify = 6,
  kFeatureCheck = 9, kVersion = 10,
};

// criu_cg_mode: how CRIU handles the cgroups of the tree (runc's --manage-cgroups-mode).
enum class CgMode : uint32_t { kIgnore = 0, kNone = 1, kProps = 2, kSoft = 3, kFull = 4, kStrict = 5, kDefault = 6 };

// criu_network_lock_method: how CRIU cuts a dumped network namespace off the network.
enum class NetworkLock : uint32_t { kIptables = 1, kNftables = 2 };

// Parses runc's --manage-cgroups-mode values: "" (CRIU's default), soft, full, strict, ignore.
Result<CgMode> parse_cg_mode(std::string_view text);

// The criu_opts fields vessel sets (field numbers from rpc.proto). Unset optionals are not sent.
struct Opts {
  int images_dir_fd = -1;
  std::optional<int> pid;
  std::optional<bool> leave_running, ext_unix_sk, tcp_established, evasive_devices, shell_job, file_locks;
  std::optional<int> log_level;
  std::string log_file;
  std::optional<bool> notify_scripts;
  std::string root;
  std::string parent_img;
  std::optional<bool> track_mem, auto_dedup;
  std::optional<int> work_dir_fd;
  std::vector<std::pair<std::string, std::string>> ext_mnt;  // key, val
  std::optional<bool> manage_cgroups;
  std::vector<std::pair<std::string, std::string>> cg_root;  // controller ("" = all), path
  std::optional<bool> rst_sibling;
  std::vector<std::pair<std::string, int>> inherit_fd;  // key, fd in criu's process
  std::optional<CgMode> manage_cgroups_mode;
  std::vector<std::string> external;
  std::optional<uint32_t> empty_ns;
  struct JoinNs {
    std::string ns, ns_file;
  };
  std::vector<JoinNs> join_ns;
  std::string freeze_cgroup;
  std::optional<bool> lazy_pages;
  std::optional<int> status_fd;
  std::optional<bool> orphan_pts_master;
  std::string config_file;
  std::optional<NetworkLock> network_lock;
  std::optional<bool> mntns_compat_mode;  // CRIU's older mount engine instead of mount-v2
};

// A criu_req.
struct Request {
  ReqType type = ReqType::kEmpty;
  std::optional<Opts> opts;
  std::optional<bool> notify_success;
  std::optional<bool> want_mem_track, want_lazy_pages;  // criu_features, for kFeatureCheck
};

// A criu_resp, with the fields vessel reads.
struct Response {
  ReqType type = ReqType::kEmpty;
  bool success = false;
  int restored_pid = 0;     // restore.pid
  std::string notify_script;  // notify.script
  int notify_pid = 0;       // notify.pid
  int cr_errno = 0;
  std::string cr_errmsg;
  std::optional<bool> mem_track, lazy_pages;  // features
  int version_major = 0, version_minor = 0, version_sublevel = 0;
};

// Protobuf wire encoding of a request (exposed for tests).
std::string encode(const Request& r);
// Decodes a response; an error for a malformed or truncated message.
Result<Response> decode_response(std::string_view data);
// Decodes a request (tests only: checks encode() against the schema).
Result<Request> decode_request(std::string_view data);

// The criu binary: $VESSEL_CRIU, else `criu` in PATH, /usr/sbin, /sbin, /usr/local/sbin.
// An error that says how to get it when there is none.
Result<std::string> find_criu();

// A `criu swrk` process serving one request (and its notifications).
class Swrk {
 public:
  // Called for each notification (script name, pid, an fd CRIU passed with it, e.g. the
  // pty master of "orphan-pts-master"). An error ends the request: CRIU is told it
  // failed and undoes what it did.
  using Notify = std::function<Status(const std::string& script, pid_t pid, UniqueFd fd)>;

  // Starts `criu swrk 3`; `fds` are passed to it as fds 4, 5, ... (for inherit_fd and
  // join_ns); its stdio is ours (restore: the restored process inherits pipes from it).
  static Result<Swrk> start(const std::string& criu, const std::vector<int>& fds);
  Swrk(Swrk&&) noexcept;
  Swrk& operator=(Swrk&&) = delete;
  // Kills and reaps CRIU if it still runs.
  ~Swrk();

  pid_t pid() const { return pid_; }
  // Sends `req`, answers notifications through `notify` until the final response, then
  // waits for CRIU to exit. An unsuccessful response is an error with CRIU's errno and
  // message.
  Result<Response> call(const Request& req, const Notify& notify);

 private:
  Swrk(pid_t pid, UniqueFd sock) : pid_(pid), sock_(std::move(sock)) {}
  pid_t pid_ = -1;
  UniqueFd sock_;
};

// The lines of a CRIU log (dump.log, restore.log) that say what failed: its distinct
// "Error" lines, the first `max_lines` - 2 and the last 2 (the cause comes first, the
// summary last); reads at most the last 256 KiB.
std::string log_errors(const std::string& path, size_t max_lines = 6);

// How CRIU should lock the network: iptables when iptables-restore is installed (CRIU's
// default), else nftables through the libnftables CRIU links.
NetworkLock network_lock_method();

}  // namespace vessel::container::criu
