// File helpers over plain paths and directory fds, returning Result.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include <string>
#include <string_view>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel {

Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode = 0);
Result<UniqueFd> open_at(int dirfd, const std::string& path, int flags, mode_t mode = 0);

Result<std::string> read_file(const std::string& path);
Result<std::string> read_fd(int fd);

// Size limits of files that come from outside (a bundle, a flag, an image layout).
inline constexpr size_t kMaxConfigBytes = 64u << 20;  // config.json, process.json, resources, index.json, manifests

// Opens an outside file for reading without ever blocking: O_NONBLOCK, then fstat must say a regular file,
// so a FIFO, socket or device (/dev/zero) is refused at once with "<path>: not a regular file".
Result<UniqueFd> open_regular_file(const std::string& path);
// Same, at `dirfd` with openat2 `resolve` flags (RESOLVE_*; 0 for plain openat).
Result<UniqueFd> open_regular_at(int dirfd, const std::string& path, uint64_t resolve);
// Reads a regular file of at most `limit` bytes; a larger one is an error naming the path and the limit.
Result<std::string> read_regular_file(const std::string& path, size_t limit = kMaxConfigBytes);
// A regular file, or a pipe this process was given as an fd and named by /dev/fd/N or
// /proc/self/fd/N (a shell's `--process <(...)`, as runc takes), of at most `limit` bytes;
// the pipe is read to its end. Named FIFOs, devices and sockets are refused at once, as
// read_regular_file() refuses them.
Result<std::string> read_file_or_pipe(const std::string& path, size_t limit = kMaxConfigBytes);
// Reads at most `limit` bytes from fd; more is an error ("larger than LIMIT bytes").
Result<std::string> read_fd_bounded(int fd, size_t limit);
// Writes `data` to an existing or new file (O_TRUNC); errors name the path.
Status write_file(const std::string& path, std::string_view data, int extra_flags = 0, mode_t mode = 0644);
Status write_file_at(int dirfd, const std::string& name, std::string_view data);
// Writes via a temporary file in the same directory and rename(): readers see old or new, never half.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0600);
Status write_all(int fd, std::string_view data);

// mkdir -p; existing directories are fine.
Status mkdir_p(const std::string& path, mode_t mode = 0755);
// rm -rf of a directory tree that does not cross mount points.
Status remove_tree(const std::string& path);

bool path_exists(const std::string& path);
std::string path_join(std::string_view a, std::string_view b);
// Makes `path` absolute against the current directory and removes "." and duplicate "/".
std::string absolute_path(std::string_view path);

}  // namespace vessel
