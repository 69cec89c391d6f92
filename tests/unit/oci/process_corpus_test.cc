// The `exec --process` / `update -r` fuzzing corpus and the hostile config seeds
// (issue 11): every input parses or fails cleanly, and each bad seed fails with
// an error that names its field.
#include <gtest/gtest.h>

#include "oci/json_reader.h"
#include "oci/resources.h"
#include "oci/spec.h"
#include "unit/corpus.h"

namespace vessel::oci {
namespace {

TEST(ProcessCorpus, EveryInputParsesOrFailsCleanly) {
  int files = 0, processes = 0, resources = 0;
  for (auto& [name, text] : vessel::testing::corpus_files("process")) {
    ++files;
    auto j = parse_json(text, name);
    if (!j) continue;
    processes += static_cast<bool>(parse_process(*j, "process"));
    resources += static_cast<bool>(parse_resources(*j, "--resources"));
  }
  EXPECT_GE(files, 10);
  EXPECT_GE(processes, 1) << "valid-process.json parses";
  EXPECT_GE(resources, 1) << "valid-resources.json parses";
}

// bad-<field>[-note].json must fail naming <field>.
TEST(ProcessCorpus, BadSeedsFailNamingTheirField) {
  int bad = 0;
  for (auto& [name, text] : vessel::testing::corpus_files("process")) {
    if (name.rfind("bad-", 0) != 0) continue;
    ++bad;
    std::string field = name.substr(4, name.size() - 4 - 5);  // without "bad-" and ".json"
    if (auto dash = field.find('-'); dash != std::string::npos) field.resize(dash);
    auto j = parse_json(text, name);
    ASSERT_TRUE(j) << name;
    auto p = parse_process(*j, "process");
    ASSERT_FALSE(p) << name << " was accepted";
    EXPECT_EQ(p.error().message().rfind(field + ":", 0), 0u) << name << ": " << p.error().message();
  }
  EXPECT_GE(bad, 8);
}

TEST(ConfigCorpus, HostileSeedsAreRefusedByField) {
  struct Want {
    const char* file;
    const char* message;
  };
  const Want wants[] = {
      {"hostile-sysctl-vm.json", "linux.sysctl[\"vm.swappiness\"]: not in a separate kernel namespace"},
      {"hostile-sysctl-printk.json", "linux.sysctl[\"kernel.printk_ratelimit\"]: not in a separate kernel namespace"},
      {"hostile-sysctl-net-hostns.json", "linux.sysctl[\"net.ipv4.ip_forward\"]: not allowed in the host's network namespace"},
      {"hostile-sysctl-hostname.json", "linux.sysctl[\"kernel.hostname\"]: not allowed: it conflicts"},
      {"hostile-uid-minus-one.json", "process.user.uid: 4294967295 is out of range"},
      {"hostile-env-no-equals.json", "process.env[1]: \"NOEQUALS\" has no \"=\""},
      {"hostile-args-nul.json", "process.args[0]: \"tr\\0ue\" contains a NUL byte"},
      {"hostile-hook-env-nul.json", "hooks.prestart[0].env[0]: \"A=\\0\" contains a NUL byte"},
  };
  auto files = vessel::testing::corpus_files("config");
  for (auto& w : wants) {
    auto it = std::find_if(files.begin(), files.end(), [&](auto& f) { return f.first == w.file; });
    ASSERT_NE(it, files.end()) << w.file;
    auto s = parse_spec(it->second);
    ASSERT_FALSE(s) << w.file << " was accepted";
    EXPECT_NE(s.error().message().find(w.message), std::string::npos) << w.file << ": " << s.error().message();
  }
  auto big = std::find_if(files.begin(), files.end(), [](auto& f) { return f.first == "hostile-annotations-2000.json"; });
  ASSERT_NE(big, files.end());
  auto s = parse_spec(big->second);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->annotations.size(), 2000u);
}

}  // namespace
}  // namespace vessel::oci
