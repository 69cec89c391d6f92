// Every file in the config fuzzing corpus (seeds and past crashes) parses to a Spec or an Error.
#include <gtest/gtest.h>

#include "oci/spec.h"
#include "unit/corpus.h"

namespace vessel::oci {
namespace {

TEST(ConfigCorpus, EveryInputParsesOrFailsCleanly) {
  int files = 0, parsed = 0;
  for (auto& [name, text] : vessel::testing::corpus_files("config")) {
    ++files;
    if (parse_spec(text)) ++parsed;
  }
  EXPECT_GE(files, 3);
  EXPECT_GE(parsed, 3) << "the seeds are valid configs";
}

}  // namespace
}  // namespace vessel::oci
