// Every file in the config fuzzing corpus (seeds and past crashes) parses to a Spec or an Error.
#include <dirent.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "oci/spec.h"

namespace vessel::oci {
namespace {

TEST(ConfigCorpus, EveryInputParsesOrFailsCleanly) {
  std::string dir = std::string(VESSEL_SOURCE_DIR) + "/tests/fuzz/corpus/config";
  DIR* d = ::opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  int files = 0, parsed = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    ++files;
    if (parse_spec(ss.str())) ++parsed;
  }
  ::closedir(d);
  EXPECT_GE(files, 3);
  EXPECT_GE(parsed, 3) << "the seeds are valid configs";
}

}  // namespace
}  // namespace vessel::oci
