// The environment a container process gets (process_env): as runc 1.2 builds it.
#include <gtest/gtest.h>

#include "container/process_setup.h"

namespace vessel::container {
namespace process_env_test {

using Env = std::vector<std::string>;

std::string home() { return "/root"; }

TEST(ProcessEnv, TheLastValueOfANameWinsInTheOrderOfTheLastOnes) {
  EXPECT_EQ(process_env({"ONE=two", "ONE=three"}, home), (Env{"ONE=three", "HOME=/root"}));
  EXPECT_EQ(process_env({"ONE=two", "ONE=", "PATH=/usr/bin:/bin"}, home), (Env{"ONE=", "PATH=/usr/bin:/bin", "HOME=/root"}));
  EXPECT_EQ(process_env({"A=1", "B=2", "A=3"}, home), (Env{"B=2", "A=3", "HOME=/root"}));
  // A value holding '=' keeps it; a name is what precedes the first '='.
  EXPECT_EQ(process_env({"X=a=b", "X=c"}, home), (Env{"X=c", "HOME=/root"}));
}

TEST(ProcessEnv, HomeIsTheUsersWhenMissingOrEmptyAndSetOnce) {
  EXPECT_EQ(process_env({"HOME=/override"}, home), (Env{"HOME=/override"}));
  EXPECT_EQ(process_env({"HOME=", "PATH=/bin"}, home), (Env{"HOME=/root", "PATH=/bin"}));
  EXPECT_EQ(process_env({"HOME=/override", "HOME="}, home), (Env{"HOME=/root"}));
  EXPECT_EQ(process_env({}, home), (Env{"HOME=/root"}));
  int asked = 0;
  (void)process_env({"HOME=/set"}, [&] {
    ++asked;
    return std::string("/root");
  });
  EXPECT_EQ(asked, 0) << "the user's home is only looked up when needed";
}

}  // namespace process_env_test
}  // namespace vessel::container
