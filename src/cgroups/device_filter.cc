// device_filter_program(): hand-assembled eBPF (a dozen opcodes do; no libbpf needed).
//
// Layout of the program (registers: r1 = struct bpf_cgroup_dev_ctx *):
//   r2 = ctx->access_type & 0xffff   device type (BPF_DEVCG_DEV_BLOCK / _CHAR)
//   r3 = ctx->access_type >> 16      access asked for (BPF_DEVCG_ACC_MKNOD|READ|WRITE)
//   r4 = ctx->major, r5 = ctx->minor
//   one block per rule, LAST rule first: each condition that fails jumps to the next
//   block; a block whose conditions hold sets r0 to the rule's verdict and exits;
//   a rule for every device and access ends the program (earlier rules cannot matter);
//   otherwise the program ends with r0 = 0 (deny).
#include "cgroups/device_filter.h"

#include <climits>
#include <cstddef>

#include "common/strings.h"

namespace vessel::cgroups {
namespace {

using oci::LinuxDeviceCgroup;

constexpr uint8_t kCtx = BPF_REG_1, kType = BPF_REG_2, kAccess = BPF_REG_3, kMajor = BPF_REG_4,
                  kMinor = BPF_REG_5, kScratch = BPF_REG_1;  // ctx is not needed after the loads
constexpr int32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}
// dst = *(u32 *)(src + off)
bpf_insn load_u32(uint8_t dst, uint8_t src, int16_t off) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0); }
// 32-bit dst op= imm (the upper half is zeroed)
bpf_insn alu32_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
// 32-bit dst = src
bpf_insn mov32_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
// 64-bit dst = imm
bpf_insn mov64_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
// if dst != imm goto pc + 1 + off (off patched once the block's end is known)
bpf_insn jne_imm(uint8_t dst, int32_t imm) { return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm); }
// if dst == imm goto pc + 1 + off (patched likewise)
bpf_insn jeq_imm(uint8_t dst, int32_t imm) { return insn(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, 0, imm); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// The rule's access as BPF_DEVCG_ACC_* bits.
Result<int32_t> access_bits(const LinuxDeviceCgroup& r) {
  if (!r.access || r.access->empty()) return kAllAccess;
  int32_t bits = 0;
  for (char c : *r.access) {
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    else if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    else if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    else return Error::invalid(cat("access \"", *r.access, "\": not a combination of r, w and m"));
  }
  return bits;
}

// A major or minor: -1 (any) or a number the program can compare with one immediate.
Result<int64_t> device_number(const std::optional<int64_t>& v, const char* what) {
  if (!v || *v == -1) return int64_t{-1};
  if (*v < 0 || *v > INT32_MAX) return Error::invalid(cat(what, " ", *v, ": out of range"));
  return *v;
}

// Appends the block for one rule that is not "everything": its conditions jump past it.
Status append_rule(std::vector<bpf_insn>& p, const LinuxDeviceCgroup& r, char type, int32_t access) {
  std::vector<size_t> jumps;
  if (type != 'a') {
    jumps.push_back(p.size());
    p.push_back(jne_imm(kType, type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
  }
  if (access != kAllAccess) {
    p.push_back(mov32_reg(kScratch, kAccess));
    if (r.allow) {
      // An allow rule matches when the access asked for has no bit outside the rule's.
      p.push_back(alu32_imm(BPF_AND, kScratch, ~access));
      jumps.push_back(p.size());
      p.push_back(jne_imm(kScratch, 0));
    } else {
      // A deny rule matches when they share a bit: "deny w" refuses an O_RDWR open too.
      p.push_back(alu32_imm(BPF_AND, kScratch, access));
      jumps.push_back(p.size());
      p.push_back(jeq_imm(kScratch, 0));
    }
  }
  if (type != 'a') {  // the v1 controller ignores the numbers of an "a" rule too
    int64_t major = TRY(device_number(r.major, "major"));
    int64_t minor = TRY(device_number(r.minor, "minor"));
    if (major != -1) {
      jumps.push_back(p.size());
      p.push_back(jne_imm(kMajor, static_cast<int32_t>(major)));
    }
    if (minor != -1) {
      jumps.push_back(p.size());
      p.push_back(jne_imm(kMinor, static_cast<int32_t>(minor)));
    }
  }
  p.push_back(mov64_imm(BPF_REG_0, r.allow ? 1 : 0));
  p.push_back(exit_insn());
  for (size_t j : jumps) {
    size_t off = p.size() - (j + 1);
    if (off > INT16_MAX) return Error::invalid("too many device rules for one eBPF program");
    p[j].off = static_cast<int16_t>(off);
  }
  return ok();
}

}  // namespace

Result<std::vector<bpf_insn>> device_filter_program(const std::vector<LinuxDeviceCgroup>& rules) {
  std::vector<bpf_insn> p = {
      load_u32(kType, kCtx, offsetof(bpf_cgroup_dev_ctx, access_type)),
      alu32_imm(BPF_AND, kType, 0xffff),
      load_u32(kAccess, kCtx, offsetof(bpf_cgroup_dev_ctx, access_type)),
      alu32_imm(BPF_RSH, kAccess, 16),
      load_u32(kMajor, kCtx, offsetof(bpf_cgroup_dev_ctx, major)),
      load_u32(kMinor, kCtx, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (size_t i = rules.size(); i-- > 0;) {
    const auto& r = rules[i];
    auto where = cat("rule ", i);
    std::string type_name = r.type.value_or("a");
    if (type_name != "a" && type_name != "c" && type_name != "b")
      return Error::invalid(cat(where, ": type \"", type_name, "\": want a, c or b"));
    char type = type_name[0];
    int32_t access = TRYC(access_bits(r), where);
    if (type == 'a' && access == kAllAccess) {
      // Every device, every access: decides whatever the earlier rules say.
      p.push_back(mov64_imm(BPF_REG_0, r.allow ? 1 : 0));
      p.push_back(exit_insn());
      return p;
    }
    TRYC(append_rule(p, r, type, access), where);
  }
  p.push_back(mov64_imm(BPF_REG_0, 0));  // no rule matched: deny
  p.push_back(exit_insn());
  return p;
}

}  // namespace vessel::cgroups
