#include "oci/seccomp.h"

#include <map>

#include "common/strings.h"

namespace vessel::oci {
namespace {

Result<SeccompAction> parse_action(const std::string& s, const std::string& field) {
  static const std::map<std::string, SeccompAction> m = {
      {"SCMP_ACT_KILL", SeccompAction::kKill},       {"SCMP_ACT_KILL_PROCESS", SeccompAction::kKillProcess},
      {"SCMP_ACT_KILL_THREAD", SeccompAction::kKillThread}, {"SCMP_ACT_TRAP", SeccompAction::kTrap},
      {"SCMP_ACT_ERRNO", SeccompAction::kErrno},     {"SCMP_ACT_TRACE", SeccompAction::kTrace},
      {"SCMP_ACT_ALLOW", SeccompAction::kAllow},     {"SCMP_ACT_LOG", SeccompAction::kLog},
      {"SCMP_ACT_NOTIFY", SeccompAction::kNotify}};
  auto it = m.find(s);
  if (it == m.end()) return Error::invalid(cat(field, ": unknown seccomp action \"", s, "\""));
  return it->second;
}

Result<SeccompOp> parse_op(const std::string& s, const std::string& field) {
  static const std::map<std::string, SeccompOp> m = {
      {"SCMP_CMP_NE", SeccompOp::kNotEqual},   {"SCMP_CMP_LT", SeccompOp::kLessThan},
      {"SCMP_CMP_LE", SeccompOp::kLessEqual},  {"SCMP_CMP_EQ", SeccompOp::kEqual},
      {"SCMP_CMP_GE", SeccompOp::kGreaterEqual}, {"SCMP_CMP_GT", SeccompOp::kGreaterThan},
      {"SCMP_CMP_MASKED_EQ", SeccompOp::kMaskedEqual}};
  auto it = m.find(s);
  if (it == m.end()) return Error::invalid(cat(field, ": unknown seccomp operator \"", s, "\""));
  return it->second;
}

}  // namespace

bool Seccomp::uses_notify() const {
  if (default_action == SeccompAction::kNotify) return true;
  for (const auto& r : syscalls)
    if (r.action == SeccompAction::kNotify) return true;
  return false;
}

Result<Seccomp> parse_seccomp(const Json& j, const std::string& where) {
  auto o = TRY(JsonObject::at(j, where));
  Seccomp s;
  s.source = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  auto def = TRY(o.string("defaultAction"));
  if (def.empty()) return Error::invalid(cat(o.field("defaultAction"), ": required"));
  s.default_action = TRY(parse_action(def, o.field("defaultAction")));
  s.default_errno_ret = TRY(o.opt_u32("defaultErrnoRet"));
  if (s.default_action == SeccompAction::kNotify)
    return Error::invalid(cat(o.field("defaultAction"), ": SCMP_ACT_NOTIFY cannot be the default action (it would take write too)"));
  s.architectures = TRY(o.strings("architectures"));
  s.flags = TRY(o.strings("flags"));
  for (size_t i = 0; i < s.flags.size(); ++i) {
    const auto& f = s.flags[i];
    if (f != "SECCOMP_FILTER_FLAG_TSYNC" && f != "SECCOMP_FILTER_FLAG_LOG" && f != "SECCOMP_FILTER_FLAG_SPEC_ALLOW" &&
        f != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
      return Error::invalid(cat(o.field("flags"), "[", i, "]: unknown seccomp flag \"", f, "\""));
  }
  s.listener_path = TRY(o.string("listenerPath"));
  s.listener_metadata = TRY(o.string("listenerMetadata"));
  auto rules = TRY(o.array("syscalls"));
  for (size_t i = 0; i < rules.size(); ++i) {
    auto r = TRY(JsonObject::at(*rules[i], cat(o.field("syscalls"), "[", i, "]")));
    SeccompRule rule;
    rule.names = TRY(r.strings("names"));
    if (rule.names.empty()) return Error::invalid(cat(r.field("names"), ": must name at least one syscall"));
    auto action = TRY(r.string("action"));
    rule.action = TRY(parse_action(action, r.field("action")));
    rule.errno_ret = TRY(r.opt_u32("errnoRet"));
    // The runtime's own write of the listener fd would wait for the agent that fd is for (as runc refuses it).
    if (rule.action == SeccompAction::kNotify)
      for (const auto& name : rule.names)
        if (name == "write")
          return Error::invalid(cat(r.field("names"), ": SCMP_ACT_NOTIFY cannot be used for the write syscall"));
    auto args = TRY(r.array("args"));
    for (size_t k = 0; k < args.size(); ++k) {
      auto a = TRY(JsonObject::at(*args[k], cat(r.field("args"), "[", k, "]")));
      SeccompArg arg;
      arg.index = TRY(a.opt_u32("index")).value_or(0);
      if (arg.index > 5) return Error::invalid(cat(a.field("index"), ": must be 0 to 5"));
      arg.value = TRY(a.opt_u64("value")).value_or(0);
      arg.value_two = TRY(a.opt_u64("valueTwo")).value_or(0);
      arg.op = TRY(parse_op(TRY(a.string("op")), a.field("op")));
      rule.args.push_back(arg);
    }
    s.syscalls.push_back(std::move(rule));
  }
  if (s.uses_notify() && s.listener_path.empty())
    return Error::invalid(cat(o.field("listenerPath"), ": required when an action is SCMP_ACT_NOTIFY"));
  return s;
}

}  // namespace vessel::oci
