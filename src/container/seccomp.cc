#include "container/seccomp.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <set>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"

namespace vessel::container {
namespace {

uint32_t action_of(oci::SeccompAction a, std::optional<uint32_t> errno_ret) {
  switch (a) {
    case oci::SeccompAction::kKill: return SCMP_ACT_KILL;
    case oci::SeccompAction::kKillProcess: return SCMP_ACT_KILL_PROCESS;
    case oci::SeccompAction::kKillThread: return SCMP_ACT_KILL_THREAD;
    case oci::SeccompAction::kTrap: return SCMP_ACT_TRAP;
    case oci::SeccompAction::kErrno: return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
    case oci::SeccompAction::kTrace: return SCMP_ACT_TRACE(errno_ret.value_or(EPERM));
    case oci::SeccompAction::kAllow: return SCMP_ACT_ALLOW;
    case oci::SeccompAction::kLog: return SCMP_ACT_LOG;
    case oci::SeccompAction::kNotify: return SCMP_ACT_NOTIFY;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare op_of(oci::SeccompOp op) {
  switch (op) {
    case oci::SeccompOp::kNotEqual: return SCMP_CMP_NE;
    case oci::SeccompOp::kLessThan: return SCMP_CMP_LT;
    case oci::SeccompOp::kLessEqual: return SCMP_CMP_LE;
    case oci::SeccompOp::kEqual: return SCMP_CMP_EQ;
    case oci::SeccompOp::kGreaterEqual: return SCMP_CMP_GE;
    case oci::SeccompOp::kGreaterThan: return SCMP_CMP_GT;
    case oci::SeccompOp::kMaskedEqual: return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

Status add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const std::vector<oci::SeccompArg>& args,
                const std::string& field) {
  auto cmp = [](const oci::SeccompArg& a) {
    scmp_arg_cmp c{};
    c.arg = a.index;
    c.op = op_of(a.op);
    c.datum_a = a.value;
    c.datum_b = a.value_two;
    return c;
  };
  std::set<uint32_t> indices;
  for (const auto& a : args) indices.insert(a.index);
  std::vector<std::vector<scmp_arg_cmp>> rules;
  if (indices.size() == args.size()) {
    // Conditions on distinct arguments: all must hold (one rule).
    std::vector<scmp_arg_cmp> all;
    for (const auto& a : args) all.push_back(cmp(a));
    rules.push_back(all);
  } else {
    // Several conditions on one argument: any may hold (a rule each), as runc does.
    for (const auto& a : args) rules.push_back({cmp(a)});
  }
  for (auto& r : rules) {
    int rc = ::seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(r.size()), r.empty() ? nullptr : r.data());
    if (rc < 0) return Error(-rc, cat(field, ": seccomp_rule_add: ", std::strerror(-rc)));
  }
  return ok();
}

}  // namespace

Result<SeccompProgram> compile_seccomp(const oci::Seccomp& p) {
  uint32_t def = action_of(p.default_action, p.default_errno_ret);
  scmp_filter_ctx ctx = ::seccomp_init(def);
  if (!ctx) return Error(ENOMEM, "seccomp_init");
  ScopeExit release([&] { ::seccomp_release(ctx); });
  ::seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  std::vector<uint32_t> arches;
  if (p.architectures.empty()) arches.push_back(::seccomp_arch_native());
  for (size_t i = 0; i < p.architectures.size(); ++i) {
    std::string name = p.architectures[i];
    if (starts_with(name, "SCMP_ARCH_")) name = name.substr(10);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    uint32_t arch = ::seccomp_arch_resolve_name(name.c_str());
    if (arch == 0)
      return Error::invalid(cat("linux.seccomp.architectures[", i, "]: unknown architecture \"", p.architectures[i], "\""));
    int rc = ::seccomp_arch_add(ctx, arch);
    if (rc < 0 && rc != -EEXIST) return Error(-rc, cat("linux.seccomp.architectures[", i, "]: ", std::strerror(-rc)));
    arches.push_back(arch);
  }
  // seccomp_arch_add() keeps the native architecture: it is in the filter either way.
  if (!p.architectures.empty()) arches.push_back(::seccomp_arch_native());
  for (size_t i = 0; i < p.syscalls.size(); ++i) {
    const auto& r = p.syscalls[i];
    uint32_t action = action_of(r.action, r.errno_ret);
    if (action == def) continue;  // libseccomp refuses rules that repeat the default
    for (const auto& name : r.names) {
      int nr = ::seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // unknown to this kernel/libseccomp: skipped as runc does
      TRY(add_rule(ctx, action, nr, r.args, cat("linux.seccomp.syscalls[", i, "] ", name)));
    }
  }
  // Export the BPF through a pipe-like memfd and read it back.
  UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, "vessel-seccomp", 1u /*MFD_CLOEXEC*/)));
  if (!mem) return Error::from_errno("memfd_create");
  int rc = ::seccomp_export_bpf(ctx, mem.get());
  if (rc < 0) return Error(-rc, cat("seccomp_export_bpf: ", std::strerror(-rc)));
  ::lseek(mem.get(), 0, SEEK_SET);
  auto bytes = TRY(read_fd(mem.get()));
  SeccompProgram prog;
  prog.bpf = TRY(enosys_stub(p, arches));
  size_t stub = prog.bpf.size();
  prog.bpf.resize(stub + bytes.size() / sizeof(sock_filter));
  std::memcpy(prog.bpf.data() + stub, bytes.data(), (prog.bpf.size() - stub) * sizeof(sock_filter));
  // Refused here, at create, rather than by seccomp(2) in the init after create reported success.
  if (prog.bpf.size() > BPF_MAXINSNS)
    return Error(E2BIG, cat("the filter compiles to ", prog.bpf.size(), " BPF instructions, the kernel's limit is ",
                            BPF_MAXINSNS));
  prog.notify = p.uses_notify();
  for (const auto& f : p.flags) {
    if (f == "SECCOMP_FILTER_FLAG_TSYNC") prog.flags |= SECCOMP_FILTER_FLAG_TSYNC;
    if (f == "SECCOMP_FILTER_FLAG_LOG") prog.flags |= SECCOMP_FILTER_FLAG_LOG;
    if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") prog.flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    // Only meaningful with a listener; the kernel rejects it otherwise.
    if (f == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" && prog.notify) prog.flags |= (1U << 5);
  }
  if (prog.notify) prog.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  return prog;
}

Result<UniqueFd> load_seccomp(const SeccompProgram& program) {
  if (program.bpf.size() > BPF_MAXINSNS) return Error(E2BIG, cat("load seccomp filter: ", program.bpf.size(), " instructions"));
  sock_fprog fprog{};
  fprog.len = static_cast<unsigned short>(program.bpf.size());
  fprog.filter = const_cast<sock_filter*>(program.bpf.data());
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, program.flags, &fprog);
  if (rc < 0) return Error::from_errno("load seccomp filter");
  if (program.notify) return UniqueFd(static_cast<int>(rc));
  return UniqueFd();
}

}  // namespace vessel::container
