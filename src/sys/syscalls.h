// Thin wrappers over the raw syscalls the container runtime uses: each reads
// like the syscall it wraps and returns a Result whose error names the call.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::sys {

Status mount(const std::string& source, const std::string& target, const std::string& fstype, unsigned long flags,
             const std::string& data = "");
Status umount2(const std::string& target, int flags);
Status pivot_root(const std::string& new_root, const std::string& put_old);

// openat2(2) with a resolve mask (RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, …).
Result<UniqueFd> openat2(int dirfd, const std::string& path, uint64_t flags, uint64_t mode, uint64_t resolve);
// Opens a namespace file (/proc/PID/ns/*, a bind mount of one) without blocking on a FIFO
// or device; anything that is not on nsfs is refused with "<path>: not a namespace file".
Result<UniqueFd> open_namespace(const std::string& path);

// The path through which a mount call reaches exactly the object behind fd.
std::string fd_path(int fd);

// fork-like clone(2) with namespace flags: returns 0 in the child, the pid in the parent, -1 on error.
pid_t clone_fork(unsigned long flags);

Result<UniqueFd> pidfd_open(pid_t pid);
Status pidfd_send_signal(int pidfd, int sig);

// Capability sets through capget/capset (version 3, 64-bit masks).
struct CapState {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};
Result<CapState> capget();
Status capset(const CapState& caps);
// The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap).
int cap_last_cap();

// Sends `data` as one message, with `fd` attached by SCM_RIGHTS when >= 0.
Status send_message(int sock, std::string_view data, int fd = -1);
// Receives one message into buf; an attached fd goes to *fd (closed when fd is null).
Result<size_t> recv_message(int sock, char* buf, size_t size, UniqueFd* fd);

// Sends fd over a unix socket with SCM_RIGHTS, with `payload` as the data.
Status send_fd(int sock, int fd, const std::string& payload);
// Receives one fd (and its payload) sent with send_fd.
Result<UniqueFd> recv_fd(int sock, std::string* payload = nullptr);

// Sets FD_CLOEXEC on every fd >= first (close_range where available).
void cloexec_from(int first);
// Closes every fd >= first but those in `keep` (close_range where available).
void close_from_except(int first, std::span<const int> keep);

}  // namespace vessel::sys
