// The state directory of a detached VM: <root>/vm/<id>/ holding
//   vmm.json      id, pid and its start time (so a reused pid is not taken
//                 for the VMM), API socket path, creation time
//   api.sock      the API (unless --api-sock put it elsewhere)
//   console.sock  COM1 for `vm console`
//   serial.log    COM1 output, rotated to serial.log.1 past kSerialLogMax
//   exit.json     why the VM stopped (written by the VMM as it exits)
// Clients (`vm list/state/...`) read these; only the VMM writes them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace vessel::vmm {

inline constexpr uint64_t kSerialLogMax = 1 << 20;

// Paths of one VM's state.
struct VmPaths {
  std::string dir;
  std::string vmm_json() const { return dir + "/vmm.json"; }
  std::string default_api_sock() const { return dir + "/api.sock"; }
  std::string console_sock() const { return dir + "/console.sock"; }
  std::string serial_log() const { return dir + "/serial.log"; }
  std::string exit_json() const { return dir + "/exit.json"; }
};

// <root>/vm
std::string vm_root(const std::string& root);
// Checks `id` (letters, digits, '_', '-', '.'; 1 to 64 bytes; not . or ..).
Status check_vm_id(const std::string& id);
VmPaths vm_paths(const std::string& root, const std::string& id);
// The ids under <root>/vm, sorted.
Result<std::vector<std::string>> list_vm_ids(const std::string& root);

// What vmm.json holds.
struct VmmRecord {
  std::string id;
  pid_t pid = 0;
  uint64_t pid_start = 0;  // /proc/<pid>/stat field 22
  std::string api_sock;
  int64_t created = 0;  // unix seconds
};
Status write_record(const VmPaths& p, const VmmRecord& r);
Result<VmmRecord> read_record(const VmPaths& p);

// Why a VM stopped (exit.json).
struct VmExit {
  std::string reason;  // poweroff | reset | stopped | error | killed
  std::string detail;
  int64_t at = 0;
};
Status write_exit(const VmPaths& p, const VmExit& e);
std::optional<VmExit> read_exit(const VmPaths& p);

// The start time of process `pid` (0 when it does not exist).
uint64_t process_start_time(pid_t pid);
// Whether the VMM of `r` still runs (same pid and start time).
bool vmm_alive(const VmmRecord& r);

// Reads at most `max` bytes of a file (for files outside vessel's control).
Result<std::string> read_bounded(const std::string& path, size_t max);

}  // namespace vessel::vmm
