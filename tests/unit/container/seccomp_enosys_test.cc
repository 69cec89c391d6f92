// The -ENOSYS prefix of compiled seccomp programs, run through a small cBPF interpreter.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "container/seccomp.h"
#include "oci/seccomp.h"

namespace vessel::container {
namespace {

using Json = nlohmann::json;

// Runs `prog` on one syscall as the kernel would; returns its SECCOMP_RET_* value.
// Fails the test on an instruction it does not know (0 then).
uint32_t run(const std::vector<sock_filter>& prog, uint32_t arch, uint32_t nr) {
  seccomp_data d{};
  d.nr = static_cast<int>(nr);
  d.arch = arch;
  uint32_t a = 0;
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& f = prog[pc];
    switch (f.code) {
      case BPF_LD | BPF_W | BPF_ABS: std::memcpy(&a, reinterpret_cast<const char*>(&d) + f.k, 4); break;
      case BPF_ALU | BPF_AND | BPF_K: a &= f.k; break;
      case BPF_JMP | BPF_JA: pc += f.k; break;
      case BPF_JMP | BPF_JEQ | BPF_K: pc += a == f.k ? f.jt : f.jf; break;
      case BPF_JMP | BPF_JGT | BPF_K: pc += a > f.k ? f.jt : f.jf; break;
      case BPF_JMP | BPF_JGE | BPF_K: pc += a >= f.k ? f.jt : f.jf; break;
      case BPF_JMP | BPF_JSET | BPF_K: pc += (a & f.k) ? f.jt : f.jf; break;
      case BPF_RET | BPF_K: return f.k;
      case BPF_RET | BPF_A: return a;
      default: ADD_FAILURE() << "opcode " << f.code << " at " << pc; return 0;
    }
  }
  ADD_FAILURE() << "ran off the end";
  return 0;
}

// Allows read (0) to rseq (334) on the given architectures, except getppid (110); EPERM otherwise.
SeccompProgram compile(const Json& arches, const char* def = "SCMP_ACT_ERRNO") {
  Json names = Json::array();
  for (int nr = 0; nr <= 334; ++nr) {
    if (nr == 110) continue;
    char* n = ::seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
    if (n) names.push_back(n);
    ::free(n);
  }
  Json j = {{"defaultAction", def}, {"architectures", arches}, {"syscalls", {{{"names", names}, {"action", "SCMP_ACT_ALLOW"}}}}};
  auto p = oci::parse_seccomp(j);
  EXPECT_TRUE(p) << p.error().message();
  auto prog = compile_seccomp(*p);
  EXPECT_TRUE(prog) << prog.error().message();
  return *prog;
}

constexpr uint32_t kEnosys = SECCOMP_RET_ERRNO | ENOSYS, kEperm = SECCOMP_RET_ERRNO | EPERM;

TEST(SeccompEnosys, NewerSyscallsGetEnosysOthersTheDefault) {
  auto p = compile({"SCMP_ARCH_X86_64"});
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 0), SECCOMP_RET_ALLOW);
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 334), SECCOMP_RET_ALLOW);
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 110), kEperm);  // known to the profile, refused
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 335), kEnosys);
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 439), kEnosys);
  // x32 calls are not x86_64's: without x32 in the profile they go to libseccomp's filter.
  EXPECT_NE(run(p.bpf, AUDIT_ARCH_X86_64, 0x40000000 | 439), kEnosys);
}

TEST(SeccompEnosys, EachArchitectureHasItsOwnLargest) {
  auto p = compile({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"});
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 439), kEnosys);
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 0), SECCOMP_RET_ALLOW);
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 0x40000000 | 600), kEnosys);  // x32 numbers go up to 547
  // i386 numbers differ: read is 3 there, rseq 386, and the largest named is msgctl (402).
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_I386, 3), SECCOMP_RET_ALLOW);
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_I386, 386), SECCOMP_RET_ALLOW);
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_I386, 439), kEnosys);
}

TEST(SeccompEnosys, PermissiveDefaultsGetNoPrefix) {
  auto p = compile({"SCMP_ARCH_X86_64"}, "SCMP_ACT_LOG");
  EXPECT_EQ(run(p.bpf, AUDIT_ARCH_X86_64, 439), SECCOMP_RET_LOG);
  oci::Seccomp s;
  s.default_action = oci::SeccompAction::kErrno;
  s.default_errno_ret = ENOSYS;
  EXPECT_FALSE(needs_enosys_stub(s));
  s.default_errno_ret = EPERM;
  EXPECT_TRUE(needs_enosys_stub(s));
}

}  // namespace
}  // namespace vessel::container
