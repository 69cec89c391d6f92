// enosys_stub(): the -ENOSYS prefix runc puts before every filter
// (libcontainer/seccomp/patchbpf). A profile lists the syscalls its authors knew; one
// numbered above all of them is newer than the profile, and refusing it with EPERM (the
// usual default) breaks the C libraries that probe a new syscall and fall back on ENOSYS
// only (clone3, faccessat2, close_range…). The prefix, per architecture of the profile:
//
//   ld [arch]; jeq ARCH_1 -> S1; jeq ARCH_2 -> S2; …; ja FILTER
//   S1: ld [nr]; jgt LARGEST_1 -> ENOSYS; ja FILTER
//   …
//   ENOSYS: ret ERRNO(ENOSYS)
//   FILTER: libseccomp's program, unchanged (its jumps are relative).
//
// x86_64 carries x32 syscalls too (nr with bit 30 set): they are compared with the x32
// table's largest, or go to the filter untouched when the profile has no x32.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include <cerrno>
#include <cstddef>
#include <map>
#include <optional>

#include "common/strings.h"
#include "container/seccomp.h"

namespace vessel::container {
namespace {

constexpr uint32_t kX32Bit = 0x40000000;
constexpr int kToEnosys = -2, kToFilter = -3;

// One instruction whose jump targets are still labels: an index into the stub, kToEnosys or kToFilter.
struct Insn {
  sock_filter f;
  int jt = 0, jf = 0;       // for conditional jumps (ignored otherwise)
  bool relative = true;     // jt/jf are already relative offsets
};

Insn stmt(uint16_t code, uint32_t k) { return {BPF_STMT(code, k), 0, 0, true}; }
Insn jump_to(uint16_t code, uint32_t k, int jt, int jf) { return {BPF_JUMP(code, k, 0, 0), jt, jf, false}; }

// The largest syscall number the profile names for `arch`; nullopt when it names none.
std::optional<uint32_t> largest_syscall(const oci::Seccomp& p, uint32_t arch) {
  std::optional<uint32_t> best;
  for (const auto& rule : p.syscalls) {
    for (const auto& name : rule.names) {
      int nr = ::seccomp_syscall_resolve_name_arch(arch, name.c_str());
      if (nr < 0) continue;  // unknown here, or a pseudo-syscall of a multiplexer
      if (!best || static_cast<uint32_t>(nr) > *best) best = static_cast<uint32_t>(nr);
    }
  }
  return best;
}

struct Section {
  std::optional<uint32_t> main;  // largest native syscall
  std::optional<uint32_t> x32;   // largest x32 syscall (bit 30 included), x86_64 only
};

}  // namespace

bool needs_enosys_stub(const oci::Seccomp& p) {
  // A permissive default lets new syscalls through already (a tracer is expected to cope).
  if (p.default_action == oci::SeccompAction::kAllow || p.default_action == oci::SeccompAction::kLog ||
      p.default_action == oci::SeccompAction::kTrace)
    return false;
  return !(p.default_action == oci::SeccompAction::kErrno && p.default_errno_ret.value_or(EPERM) == ENOSYS);
}

Result<std::vector<sock_filter>> enosys_stub(const oci::Seccomp& p, const std::vector<uint32_t>& arches) {
  if (!needs_enosys_stub(p)) return std::vector<sock_filter>{};
  std::map<uint32_t, Section> sections;  // by AUDIT_ARCH_* value, as the kernel reports it
  for (uint32_t arch : arches) {
    auto largest = largest_syscall(p, arch);
    if (!largest) continue;
    if (arch == SCMP_ARCH_X32) {
      sections[AUDIT_ARCH_X86_64].x32 = *largest | kX32Bit;
    } else {
      sections[arch].main = *largest;
    }
  }
  if (sections.empty()) return std::vector<sock_filter>{};

  std::vector<Insn> prog;
  prog.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  std::vector<size_t> dispatch;  // the jeq of each section, patched with its start
  for (const auto& [audit, s] : sections) {
    dispatch.push_back(prog.size());
    prog.push_back(jump_to(BPF_JMP | BPF_JEQ | BPF_K, audit, 0, 0));
    prog.back().jf = static_cast<int>(prog.size());  // next dispatch line
  }
  prog.push_back(jump_to(BPF_JMP | BPF_JA, 0, kToFilter, kToFilter));
  size_t d = 0;
  for (const auto& [audit, s] : sections) {
    prog[dispatch[d++]].jt = static_cast<int>(prog.size());
    prog.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
    if (audit == AUDIT_ARCH_X86_64) {
      // x32 syscalls (bit 30) against the x32 table, or straight to the filter.
      size_t jset = prog.size();
      prog.push_back(jump_to(BPF_JMP | BPF_JSET | BPF_K, kX32Bit, kToFilter, 0));
      prog.back().jf = static_cast<int>(prog.size());
      if (s.main) {
        prog.push_back(jump_to(BPF_JMP | BPF_JGT | BPF_K, *s.main, kToEnosys, kToFilter));
      } else {
        prog.push_back(jump_to(BPF_JMP | BPF_JA, 0, kToFilter, kToFilter));
      }
      if (s.x32) {
        prog[jset].jt = static_cast<int>(prog.size());
        prog.push_back(jump_to(BPF_JMP | BPF_JGT | BPF_K, *s.x32, kToEnosys, kToFilter));
      }
    } else {
      prog.push_back(jump_to(BPF_JMP | BPF_JGT | BPF_K, *s.main, kToEnosys, kToFilter));
    }
  }
  const int enosys = static_cast<int>(prog.size());
  prog.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  const int filter = static_cast<int>(prog.size());

  std::vector<sock_filter> out;
  for (size_t i = 0; i < prog.size(); ++i) {
    sock_filter f = prog[i].f;
    if (!prog[i].relative) {
      auto resolve = [&](int label) -> Result<int> {
        int target = label == kToEnosys ? enosys : label == kToFilter ? filter : label;
        int off = target - static_cast<int>(i) - 1;
        if (off < 0 || (BPF_OP(f.code) != BPF_JA && off > 255))
          return Error(EINVAL, cat("seccomp ENOSYS stub: jump out of range at ", i));
        return off;
      };
      if (BPF_OP(f.code) == BPF_JA) {
        f.k = static_cast<uint32_t>(TRY(resolve(prog[i].jt)));
      } else {
        f.jt = static_cast<uint8_t>(TRY(resolve(prog[i].jt)));
        f.jf = static_cast<uint8_t>(TRY(resolve(prog[i].jf)));
      }
    }
    out.push_back(f);
  }
  return out;
}

}  // namespace vessel::container
