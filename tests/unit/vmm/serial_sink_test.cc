// SerialSink's log mode: the log and its rotation stay in the state directory
// the sink was opened in, also after that directory is renamed (vm upgrade
// renames the new VMM's <id>.upgrade to <id> while it runs).
#include "vmm/instance/serial_sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "common/fs.h"
#include "common/unique_fd.h"
#include "vmm/instance/state_dir.h"

namespace vessel::vmm {
namespace {

off_t size_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

std::string read_all(const std::string& path) {
  auto r = read_regular_file(path);
  return r ? *r : std::string("<") + r.error().message() + ">";
}

class SerialSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-serial-sink-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    first_ = root_ + "/vm.upgrade";
    ASSERT_EQ(::mkdir(first_.c_str(), 0700), 0);
  }
  void TearDown() override { (void)remove_tree(root_); }
  std::string root_, first_;
};

TEST_F(SerialSinkTest, LogFollowsItsRenamedDirectoryAndRotatesThere) {
  UniqueFd dir(::open(first_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir);
  auto sink = SerialSink::open("log", dir.get(), "serial.log");
  ASSERT_TRUE(sink) << sink.error().message();
  dir.reset();  // the sink holds its own copy of the fd
  for (char c : std::string("before\n")) (*sink)->put(static_cast<uint8_t>(c));
  EXPECT_EQ(read_all(first_ + "/serial.log"), "before\n");

  // vm upgrade: <id>.upgrade becomes <id>, and a later upgrade makes a new <id>.upgrade.
  std::string renamed = root_ + "/vm";
  ASSERT_EQ(::rename(first_.c_str(), renamed.c_str()), 0);
  ASSERT_EQ(::mkdir(first_.c_str(), 0700), 0);
  for (char c : std::string("after\n")) (*sink)->put(static_cast<uint8_t>(c));
  EXPECT_EQ(read_all(renamed + "/serial.log"), "before\nafter\n");

  // Past kSerialLogMax bytes the log rotates, in the renamed directory.
  uint64_t total = 13;  // written so far
  while (total < kSerialLogMax) {
    (*sink)->put('x');
    ++total;
  }
  (*sink)->put('y');
  EXPECT_EQ(size_of(renamed + "/serial.log.1"), static_cast<off_t>(kSerialLogMax));
  EXPECT_EQ(read_all(renamed + "/serial.log"), "y");
  EXPECT_EQ(size_of(first_ + "/serial.log"), -1) << "nothing may appear in the directory's old name";
  EXPECT_EQ(size_of(first_ + "/serial.log.1"), -1);
  EXPECT_EQ((*sink)->bytes(), kSerialLogMax + 1);
}

TEST_F(SerialSinkTest, OtherModesNeedNoDirectory) {
  auto none = SerialSink::open("none", -1, "serial.log");
  ASSERT_TRUE(none) << none.error().message();
  (*none)->put('a');
  EXPECT_EQ((*none)->bytes(), 1u);
  std::string file = root_ + "/out.txt";
  auto f = SerialSink::open("file:" + file, -1, "serial.log");
  ASSERT_TRUE(f) << f.error().message();
  (*f)->put('b');
  EXPECT_EQ(read_all(file), "b");
  EXPECT_FALSE(SerialSink::open("stdio", -1, "serial.log"));
  EXPECT_FALSE(SerialSink::open("log", -1, "serial.log")) << "the log mode needs the directory";
}

}  // namespace
}  // namespace vessel::vmm
