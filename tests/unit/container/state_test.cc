#include "container/state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/fs.h"
#include "container/lifecycle.h"

namespace vessel::container {
namespace {

TEST(State, ValidateId) {
  EXPECT_TRUE(validate_id("abc-1.2_x+y"));
  EXPECT_FALSE(validate_id(""));
  EXPECT_FALSE(validate_id("a/b"));
  EXPECT_FALSE(validate_id(".."));
  EXPECT_FALSE(validate_id("a b"));
  EXPECT_FALSE(validate_id(std::string(1025, 'a')));
}

TEST(State, SaveLoadAndDuplicate) {
  char tmpl[] = "/tmp/vessel-state-XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  {
    auto dir = ContainerDir::create(root, "c1");
    ASSERT_TRUE(dir) << dir.error().message();
    State s;
    s.id = "c1";
    s.pid = ::getpid();
    s.pid_start_time = process_start_time(::getpid());
    s.bundle = "/b";
    s.annotations["k"] = "v";
    s.creating = false;  // as create saves it at its end
    ASSERT_TRUE(dir->save(s));
    auto dup = ContainerDir::create(root, "c1");
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().message(), "container \"c1\" already exists");
  }
  auto dir = ContainerDir::open(root, "c1");
  ASSERT_TRUE(dir) << dir.error().message();
  auto s = dir->load();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pid, ::getpid());
  EXPECT_EQ(s->annotations.at("k"), "v");
  EXPECT_EQ(live_status(*s, dir->path(), false), ContainerStatus::kRunning);
  EXPECT_EQ(live_status(*s, dir->path(), true), ContainerStatus::kPaused);
  State gone = *s;
  gone.pid_start_time += 1;  // a reused pid is not our process
  EXPECT_EQ(live_status(gone, dir->path(), false), ContainerStatus::kStopped);
  EXPECT_EQ(list_ids(root), std::vector<std::string>{"c1"});
  ASSERT_TRUE(dir->remove());
  EXPECT_TRUE(list_ids(root).empty());
  EXPECT_FALSE(ContainerDir::open(root, "c1"));
  ASSERT_TRUE(remove_tree(root));
}

// A create killed half-way: visible to list, `creating` while its creator holds the
// lock, `stopped` once it is gone; a directory left without state.json is listed too.
TEST(State, HalfCreatedContainersStayVisible) {
  char tmpl[] = "/tmp/vessel-state-XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  {
    auto dir = ContainerDir::create(root, "c2");
    ASSERT_TRUE(dir) << dir.error().message();
    State s;
    s.id = "c2";
    s.pid = ::getpid();  // alive, but create has not finished
    s.pid_start_time = process_start_time(::getpid());
    s.creating = true;
    ASSERT_TRUE(dir->save(s));
    EXPECT_EQ(list_ids(root), std::vector<std::string>{"c2"});
    EXPECT_FALSE(path_exists(root + "/.tmp")) << "the directory is made aside and renamed";
    bool busy = false;
    auto peeked = ContainerDir::peek(root, "c2", &busy);
    ASSERT_TRUE(peeked) << peeked.error().message();
    EXPECT_TRUE(busy) << "we hold the lock";
    EXPECT_EQ(live_status(*peeked, dir->path(), false, busy), ContainerStatus::kCreating);
  }
  bool busy = true;
  auto peeked = ContainerDir::peek(root, "c2", &busy);
  ASSERT_TRUE(peeked);
  EXPECT_FALSE(busy) << "flock is released when its holder goes";
  EXPECT_EQ(live_status(*peeked, root + "/c2", false, busy), ContainerStatus::kStopped);

  // Only the lock file left (delete killed after removing state.json).
  ASSERT_TRUE(mkdir_p(root + "/c3"));
  ASSERT_TRUE(write_file(root + "/c3/.lock", ""));
  EXPECT_EQ(list_ids(root), (std::vector<std::string>{"c2", "c3"}));
  auto dir = ContainerDir::open(root, "c3");
  ASSERT_TRUE(dir) << dir.error().message();
  auto s = dir->load();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->id, "c3");
  EXPECT_EQ(live_status(*s, dir->path(), false), ContainerStatus::kStopped);
  ASSERT_TRUE(dir->remove());
  EXPECT_EQ(list_ids(root), std::vector<std::string>{"c2"});
  ASSERT_TRUE(remove_tree(root));
}

// A create killed before its rename leaves <root>/.tmp/<id>: the next create of the
// ID takes it over, remove_stale() removes it, a create in progress keeps it.
TEST(State, LeftoversOfAKilledCreateDoNotBlockTheId) {
  char tmpl[] = "/tmp/vessel-state-XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  ASSERT_TRUE(mkdir_p(root + "/.tmp/c1"));
  ASSERT_TRUE(write_file(root + "/.tmp/c1/exec.fifo", ""));
  EXPECT_TRUE(list_ids(root).empty());
  {
    auto dir = ContainerDir::create(root, "c1");
    ASSERT_TRUE(dir) << dir.error().message();
    EXPECT_FALSE(path_exists(root + "/c1/exec.fifo"));
    ASSERT_TRUE(dir->remove());
  }
  ASSERT_TRUE(mkdir_p(root + "/.tmp/c4"));
  ASSERT_TRUE(ContainerDir::remove_stale(root, "c4"));
  EXPECT_FALSE(path_exists(root + "/.tmp/c4"));
  ASSERT_TRUE(remove_tree(root));
}

TEST(Lifecycle, ParseSignal) {
  EXPECT_EQ(*parse_signal("KILL"), 9);
  EXPECT_EQ(*parse_signal("SIGTERM"), 15);
  EXPECT_EQ(*parse_signal("sigusr1"), 10);
  EXPECT_EQ(*parse_signal("9"), 9);
  EXPECT_EQ(*parse_signal("RTMIN+1"), SIGRTMIN + 1);
  EXPECT_FALSE(parse_signal("NOPE"));
  EXPECT_EQ(*parse_signal("0"), 0);  // kill 0 probes, as runc accepts
  EXPECT_FALSE(parse_signal("65"));
}

}  // namespace
}  // namespace vessel::container
