// device_filter_program(): the generated eBPF runs in a small interpreter of the
// instructions it emits, against tables of (device, access) -> verdict.
#include "cgroups/device_filter.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cgroups/controllers.h"

namespace vessel::cgroups {
namespace {

using oci::LinuxDeviceCgroup;

// Static checks the kernel verifier would make on such a program: known opcodes, jumps
// forward and inside the program, every instruction reachable, every path ending in exit.
// Returns "" or what is wrong.
std::string check_program(const std::vector<bpf_insn>& p) {
  if (p.empty()) return "empty program";
  if (p.size() > 4096) return "longer than BPF_MAXINSNS";
  std::set<size_t> seen;
  std::vector<size_t> todo = {0};
  while (!todo.empty()) {
    size_t pc = todo.back();
    todo.pop_back();
    if (pc >= p.size()) return "falls off the end at " + std::to_string(pc);
    if (!seen.insert(pc).second) continue;
    const bpf_insn& i = p[pc];
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
      case BPF_ALU | BPF_AND | BPF_K:
      case BPF_ALU | BPF_RSH | BPF_K:
      case BPF_ALU | BPF_MOV | BPF_X:
      case BPF_ALU64 | BPF_MOV | BPF_K:
        todo.push_back(pc + 1);
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (i.off < 0) return "backward jump at " + std::to_string(pc);
        todo.push_back(pc + 1);
        todo.push_back(pc + 1 + i.off);
        break;
      case BPF_JMP | BPF_EXIT:
        break;
      default:
        return "unexpected opcode " + std::to_string(i.code) + " at " + std::to_string(pc);
    }
  }
  if (seen.size() != p.size()) return "unreachable instructions";
  return "";
}

// Runs the program on one access as the kernel would: r1 points to a
// bpf_cgroup_dev_ctx. Returns r0 at exit, or nullopt (with `err` set) on anything
// the kernel would refuse at run or load time.
std::optional<uint64_t> run(const std::vector<bpf_insn>& p, const bpf_cgroup_dev_ctx& ctx, std::string* err) {
  uint64_t r[11] = {};
  bool init[11] = {};
  bool is_ctx[11] = {};
  is_ctx[BPF_REG_1] = init[BPF_REG_1] = true;
  auto fail = [&](std::string what, size_t pc) {
    *err = what + " at " + std::to_string(pc);
    return std::nullopt;
  };
  for (size_t pc = 0, steps = 0; steps < 10000; ++steps) {
    if (pc >= p.size()) return fail("pc out of range", pc);
    const bpf_insn& i = p[pc];
    uint8_t d = i.dst_reg, s = i.src_reg;
    if (d > 10 || s > 10) return fail("bad register", pc);
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W: {
        if (!is_ctx[s]) return fail("load through a non-context register", pc);
        if (i.off == offsetof(bpf_cgroup_dev_ctx, access_type)) r[d] = ctx.access_type;
        else if (i.off == offsetof(bpf_cgroup_dev_ctx, major)) r[d] = ctx.major;
        else if (i.off == offsetof(bpf_cgroup_dev_ctx, minor)) r[d] = ctx.minor;
        else return fail("context offset " + std::to_string(i.off), pc);
        init[d] = true;
        is_ctx[d] = false;
        break;
      }
      case BPF_ALU | BPF_AND | BPF_K:
      case BPF_ALU | BPF_RSH | BPF_K:
        if (!init[d] || is_ctx[d]) return fail("ALU on an unset or pointer register", pc);
        if (BPF_OP(i.code) == BPF_AND) r[d] = static_cast<uint32_t>(r[d]) & static_cast<uint32_t>(i.imm);
        else r[d] = static_cast<uint32_t>(r[d]) >> (i.imm & 31);
        break;
      case BPF_ALU | BPF_MOV | BPF_X:
        if (!init[s] || is_ctx[s]) return fail("mov of an unset or pointer register", pc);
        r[d] = static_cast<uint32_t>(r[s]);
        init[d] = true;
        is_ctx[d] = false;
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        r[d] = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
        init[d] = true;
        is_ctx[d] = false;
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (!init[d] || is_ctx[d]) return fail("compare of an unset or pointer register", pc);
        if (r[d] != static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (!init[d] || is_ctx[d]) return fail("compare of an unset or pointer register", pc);
        if (r[d] == static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT:
        if (!init[0]) return fail("exit with r0 unset", pc);
        return r[0];
      default:
        return fail("unexpected opcode " + std::to_string(i.code), pc);
    }
    ++pc;
  }
  *err = "no exit within 10000 steps";
  return std::nullopt;
}

LinuxDeviceCgroup rule(bool allow, const char* type, int64_t major, int64_t minor, const char* access) {
  LinuxDeviceCgroup r;
  r.allow = allow;
  if (type) r.type = type;
  if (major != -1) r.major = major;
  if (minor != -1) r.minor = minor;
  if (access) r.access = access;
  return r;
}
LinuxDeviceCgroup deny_all() { return rule(false, "a", -1, -1, "rwm"); }
LinuxDeviceCgroup allow_all() { return rule(true, nullptr, -1, -1, nullptr); }

struct Case {
  char type;           // 'c' or 'b'
  uint32_t major, minor;
  const char* access;  // what the process asks for: "r", "w", "rw" (O_RDWR), "m"
  bool allowed;
};

// Runs every case through the program of `rules`.
void expect_verdicts(const std::vector<LinuxDeviceCgroup>& rules, const std::vector<Case>& cases) {
  auto p = device_filter_program(rules);
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(check_program(*p), "");
  for (const auto& c : cases) {
    uint32_t access = 0;
    for (const char* a = c.access; *a; ++a)
      access |= *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
    bpf_cgroup_dev_ctx ctx{};
    ctx.access_type = (access << 16) | (c.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
    ctx.major = c.major;
    ctx.minor = c.minor;
    std::string err;
    auto v = run(*p, ctx, &err);
    ASSERT_TRUE(v) << err;
    EXPECT_EQ(*v, c.allowed ? 1u : 0u) << c.type << " " << c.major << ":" << c.minor << " " << c.access;
  }
}

TEST(DeviceFilter, RuncDefaultAllowList) {
  auto rules = default_device_rules();
  rules.insert(rules.begin(), deny_all());
  expect_verdicts(rules, {
                             {'c', 1, 3, "rw", true},     // null
                             {'c', 1, 3, "m", true},
                             {'c', 1, 5, "r", true},      // zero
                             {'c', 1, 7, "w", true},      // full
                             {'c', 1, 9, "rw", true},     // urandom
                             {'c', 5, 0, "rw", true},     // tty
                             {'c', 5, 2, "rw", true},     // ptmx
                             {'c', 136, 0, "rw", true},   // pts/0
                             {'c', 136, 4095, "r", true},
                             {'c', 10, 200, "rw", true},  // net/tun
                             {'c', 1, 1, "r", false},     // mem
                             {'c', 1, 4, "rw", false},    // port
                             {'c', 10, 229, "rw", false}, // fuse
                             {'c', 10, 229, "m", true},   // mknod of anything
                             {'b', 8, 0, "r", false},
                             {'b', 8, 0, "m", true},
                             {'b', 1, 3, "r", false},     // block 1:3 is not char null
                             {'c', 4, 0, "w", false},
                             {'c', 60, 0, "r", false},
                         });
}

TEST(DeviceFilter, AccessMustBeASubset) {
  expect_verdicts({deny_all(), rule(true, "c", 1, 3, "r")}, {
                                                                  {'c', 1, 3, "r", true},
                                                                  {'c', 1, 3, "w", false},
                                                                  {'c', 1, 3, "rw", false},
                                                                  {'c', 1, 3, "m", false},
                                                                  {'b', 1, 3, "r", false},
                                                                  {'c', 1, 4, "r", false},
                                                              });
  expect_verdicts({deny_all(), rule(true, "c", 1, 3, "rw")}, {
                                                                   {'c', 1, 3, "rw", true},
                                                                   {'c', 1, 3, "m", false},
                                                               });
}

TEST(DeviceFilter, LastMatchWins) {
  // A deny after an allow-all: deny-list mode.
  expect_verdicts({allow_all(), rule(false, "b", 8, -1, "w")}, {
                                                                     {'b', 8, 0, "w", false},
                                                                     {'b', 8, 16, "rw", false},
                                                                     {'b', 8, 0, "r", true},
                                                                     {'c', 8, 0, "w", true},
                                                                     {'b', 9, 0, "w", true},
                                                                 });
  // The same two rules in both orders.
  auto one = rule(true, "c", 10, 229, "rwm");
  auto all10 = rule(false, "c", 10, -1, "rwm");
  expect_verdicts({deny_all(), one, all10}, {{'c', 10, 229, "rw", false}, {'c', 10, 200, "r", false}});
  expect_verdicts({deny_all(), all10, one}, {{'c', 10, 229, "rw", true}, {'c', 10, 200, "r", false}});
  // A later deny-all overrides everything before it, a later allow-all too.
  expect_verdicts({rule(true, "c", 1, 3, "rwm"), deny_all()}, {{'c', 1, 3, "r", false}});
  expect_verdicts({deny_all(), rule(false, "c", 1, 3, "rwm"), allow_all()},
                  {{'c', 1, 3, "r", true}, {'b', 8, 0, "rw", true}});
}

TEST(DeviceFilter, DenyMatchesOnAnySharedAccess) {
  // As the v1 controller: an allow needs all the bits asked for, a deny any of them.
  expect_verdicts({deny_all(), rule(true, "c", 1, 3, "rwm"), rule(false, "c", 1, 3, "w")},
                  {
                      {'c', 1, 3, "r", true},
                      {'c', 1, 3, "m", true},
                      {'c', 1, 3, "w", false},
                      {'c', 1, 3, "rw", false},  // O_RDWR
                  });
  expect_verdicts({deny_all(), rule(true, "c", 1, 3, "r"), rule(true, "c", 1, 3, "w")},
                  {{'c', 1, 3, "r", true}, {'c', 1, 3, "w", true}, {'c', 1, 3, "rw", false}});
}

TEST(DeviceFilter, WildcardsAndTypeA) {
  expect_verdicts({deny_all(), rule(true, "c", -1, 7, "r"), rule(true, "a", 99, 99, "m")},
                  {
                      {'c', 1, 7, "r", true},
                      {'c', 200, 7, "r", true},
                      {'c', 1, 8, "r", false},
                      {'b', 1, 7, "r", false},
                      {'b', 3, 3, "m", true},  // "a" ignores the numbers, as the v1 controller does
                      {'c', 1, 1, "m", true},
                      {'c', 1, 1, "rw", false},
                  });
}

TEST(DeviceFilter, DefaultIsDeny) {
  // No rule matches: denied, whether or not the list starts with a deny-all.
  expect_verdicts({}, {{'c', 1, 3, "r", false}});
  expect_verdicts({rule(true, "c", 1, 3, "rwm")}, {{'c', 1, 3, "rw", true}, {'c', 1, 5, "r", false}});
  expect_verdicts({deny_all()}, {{'c', 1, 3, "r", false}, {'b', 8, 0, "m", false}});
  expect_verdicts({allow_all()}, {{'c', 1, 3, "r", true}, {'b', 8, 0, "rwm", true}});
}

TEST(DeviceFilter, AllowAllNeedsNoRuleBlocks) {
  auto p = device_filter_program({rule(true, "c", 1, 3, "r"), allow_all()});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->size(), 8u);  // the 6 loads, r0 = 1, exit
  EXPECT_EQ(check_program(*p), "");
}

TEST(DeviceFilter, MalformedRulesAreErrors) {
  auto expect_error = [](LinuxDeviceCgroup r, const char* text) {
    auto p = device_filter_program({deny_all(), r});
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message().find(text), std::string::npos) << p.error().message();
  };
  expect_error(rule(true, "u", 1, 3, "r"), "rule 1: type \"u\"");
  expect_error(rule(true, "c", 1, 3, "rx"), "access \"rx\"");
  expect_error(rule(true, "c", int64_t{1} << 40, 3, "r"), "major 1099511627776: out of range");
  expect_error(rule(true, "b", 1, -5, "r"), "minor -5: out of range");
}

TEST(DeviceFilter, ManyRulesStayVerifiable) {
  std::vector<LinuxDeviceCgroup> rules = {deny_all()};
  for (int i = 0; i < 500; ++i) rules.push_back(rule(i % 2 == 0, "c", 100 + i, i, "rw"));
  expect_verdicts(rules, {{'c', 100, 0, "rw", true}, {'c', 101, 1, "r", false}, {'c', 598, 498, "w", true},
                          {'c', 599, 499, "w", false}, {'c', 100, 0, "m", false}});
}

}  // namespace
}  // namespace vessel::cgroups
