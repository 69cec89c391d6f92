#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/fs.h"
#include "container/seccomp.h"
#include "oci/seccomp.h"

namespace vessel::container {
namespace {

TEST(SeccompCache, SecondCompileComesFromTheCacheAndMatches) {
  char tmpl[] = "/tmp/vessel-sccache-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto profile = oci::parse_seccomp(oci::default_seccomp_profile());
  ASSERT_TRUE(profile) << profile.error().message();
  auto direct = compile_seccomp(*profile);
  ASSERT_TRUE(direct);
  auto first = compile_seccomp_cached(*profile, dir + "/cache");
  ASSERT_TRUE(first);
  EXPECT_TRUE(path_exists(dir + "/cache"));
  auto second = compile_seccomp_cached(*profile, dir + "/cache");
  ASSERT_TRUE(second);
  ASSERT_EQ(second->bpf.size(), direct->bpf.size());
  EXPECT_EQ(0, std::memcmp(second->bpf.data(), direct->bpf.data(), direct->bpf.size() * sizeof(sock_filter)));
  EXPECT_EQ(second->flags, direct->flags);

  // A different profile does not get the first one's program.
  auto other_json = oci::default_seccomp_profile();
  other_json["defaultErrnoRet"] = 38;
  auto other = oci::parse_seccomp(other_json);
  auto other_prog = compile_seccomp_cached(*other, dir + "/cache");
  ASSERT_TRUE(other_prog);
  EXPECT_NE(0, std::memcmp(other_prog->bpf.data(), direct->bpf.data(),
                           std::min(other_prog->bpf.size(), direct->bpf.size()) * sizeof(sock_filter)));
  ASSERT_TRUE(remove_tree(dir));
}

TEST(SeccompCache, CorruptEntryIsRecompiled) {
  char tmpl[] = "/tmp/vessel-sccache-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto profile = oci::parse_seccomp(oci::Json{{"defaultAction", "SCMP_ACT_ALLOW"},
                                              {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}}});
  ASSERT_TRUE(profile);
  auto first = compile_seccomp_cached(*profile, dir);
  ASSERT_TRUE(first);
  // Truncate every cache file.
  ASSERT_EQ(0, ::system(("for f in " + dir + "/*.bpf; do head -c 20 \"$f\" > \"$f.x\" && mv \"$f.x\" \"$f\"; done").c_str()));
  auto again = compile_seccomp_cached(*profile, dir);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->bpf.size(), first->bpf.size());
  ASSERT_TRUE(remove_tree(dir));
}

}  // namespace
}  // namespace vessel::container
