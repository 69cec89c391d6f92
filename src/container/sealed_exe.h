// CVE-2019-5736: a container process that execs /proc/self/exe while it still
// is vessel (between clone and execve, or via a "#!/proc/self/exe" entrypoint)
// could reopen the host's vessel binary for writing. Before any container
// process exists, vessel re-executes itself from a read-only, detached bind
// mount of its own binary (no copy, nothing visible on the host); where that
// is not allowed (no CAP_SYS_ADMIN) it falls back to a sealed memfd copy.
#pragma once

#include "common/error.h"

namespace vessel::container {

// Returns once the running binary cannot be written through /proc/self/exe;
// otherwise re-executes `argv` and does not return. An error means neither
// protection could be had.
Status ensure_sealed_exe(char** argv);

// True when /proc/self/exe cannot be opened for writing (read-only mount or sealed memfd).
bool exe_is_sealed();

}  // namespace vessel::container
