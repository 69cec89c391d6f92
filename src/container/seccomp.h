// linux.seccomp compiled with libseccomp into a BPF program, loaded with the
// seccomp(2) syscall ourselves so that every filter flag the kernel has is
// available (LOG, SPEC_ALLOW, NEW_LISTENER, WAIT_KILLABLE_RECV, TSYNC).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "oci/seccomp.h"

namespace vessel::container {

struct SeccompProgram {
  std::vector<sock_filter> bpf;
  unsigned flags = 0;  // SECCOMP_FILTER_FLAG_*
  bool notify = false;
};

// Compiles the profile. Unknown syscall names are skipped (as runc does); an
// unknown architecture is an error naming it.
Result<SeccompProgram> compile_seccomp(const oci::Seccomp& profile);

// compile_seccomp with a cache of compiled filters in `cache_dir` (one file per
// profile, keyed by a hash of its JSON and checked against the whole JSON): the
// default profile costs libseccomp ~10 ms of CPU to compile, a cached one nothing.
// A cache that cannot be read or written is only a slower path.
Result<SeccompProgram> compile_seccomp_cached(const oci::Seccomp& profile, const std::string& cache_dir);

// True when the profile gets runc's -ENOSYS prefix: its default refuses (not allow, log or
// trace) with something other than ENOSYS already.
bool needs_enosys_stub(const oci::Seccomp& profile);

// The prefix compile_seccomp() puts before libseccomp's program (as runc's patchbpf): a
// syscall numbered above every one the profile names for its architecture (`arches`:
// libseccomp SCMP_ARCH_* tokens) is newer than the profile and fails with ENOSYS, so that
// a C library falls back to an older call, instead of the profile's default (EPERM).
// Empty when needs_enosys_stub() is false.
Result<std::vector<sock_filter>> enosys_stub(const oci::Seccomp& profile, const std::vector<uint32_t>& arches);

// Installs the filter on the calling thread. With a notify action returns the
// listener fd; otherwise an invalid UniqueFd.
Result<UniqueFd> load_seccomp(const SeccompProgram& program);

}  // namespace vessel::container
