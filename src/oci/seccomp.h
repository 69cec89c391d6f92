// linux.seccomp of the runtime-spec, parsed and validated (libseccomp is not
// needed to read it: names of actions, operators and flags are checked here).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "oci/json_reader.h"

namespace vessel::oci {

enum class SeccompAction { kKill, kKillProcess, kKillThread, kTrap, kErrno, kTrace, kAllow, kLog, kNotify };
enum class SeccompOp { kNotEqual, kLessThan, kLessEqual, kEqual, kGreaterEqual, kGreaterThan, kMaskedEqual };

struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  SeccompOp op = SeccompOp::kEqual;
};

struct SeccompRule {
  std::vector<std::string> names;
  SeccompAction action = SeccompAction::kAllow;
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  SeccompAction default_action = SeccompAction::kAllow;
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // "SCMP_ARCH_X86_64", …
  std::vector<std::string> flags;          // "SECCOMP_FILTER_FLAG_LOG", …
  std::string listener_path;
  std::string listener_metadata;
  std::vector<SeccompRule> syscalls;
  std::string source;  // the object as given (compact JSON): the key of the compiled-filter cache

  bool uses_notify() const;
};

// Parses linux.seccomp; an unknown action, operator or flag is an error naming the field.
Result<Seccomp> parse_seccomp(const Json& j, const std::string& where = "linux.seccomp");

// The default profile `vessel spec` writes: an allow-list with the coverage of the
// well-known container runtimes' defaults; EPERM for the rest (ENOSYS for unknown calls).
Json default_seccomp_profile();

}  // namespace vessel::oci
