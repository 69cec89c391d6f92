// Stats read from fake v1, v2 and hybrid trees; runc's JSON shape; the OOM-kill counter.
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "cgroups/manager.h"
#include "cgroups/oom_notify.h"
#include "cgroups/stats.h"
#include "unit/cgroups/fake_cgroupfs.h"

namespace vessel::cgroups {
namespace {

using namespace testing;

// A v1 container cgroup like the kernel 6.x ones on the build host.
void fill_v1(FakeCgroupFs& fs, const std::string& c) {
  fs.file("cpuacct/" + c + "cpuacct.usage", "3000000000\n");
  fs.file("cpuacct/" + c + "cpuacct.usage_percpu", "1000000000 2000000000 \n");
  fs.file("cpuacct/" + c + "cpuacct.stat", "user 150\nsystem 50\n");
  fs.file("cpuacct/" + c + "cpuacct.usage_all", "cpu user system\n0 900 100\n1 1800 200\n");
  fs.file("cpu/" + c + "cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 123456\nnr_bursts 0\nburst_time 0\n");
  fs.file("memory/" + c + "memory.stat", "cache 8192\nrss 4096\ntotal_cache 8192\ntotal_rss 4096\n");
  fs.file("memory/" + c + "memory.usage_in_bytes", "12288\n");
  fs.file("memory/" + c + "memory.max_usage_in_bytes", "65536\n");
  fs.file("memory/" + c + "memory.limit_in_bytes", "33554432\n");
  fs.file("memory/" + c + "memory.failcnt", "7\n");
  fs.file("memory/" + c + "memory.memsw.usage_in_bytes", "12288\n");
  fs.file("memory/" + c + "memory.memsw.max_usage_in_bytes", "65536\n");
  fs.file("memory/" + c + "memory.memsw.limit_in_bytes", "33554432\n");
  fs.file("memory/" + c + "memory.memsw.failcnt", "0\n");
  // kmem without limit_in_bytes (removed in 5.16).
  fs.file("memory/" + c + "memory.kmem.usage_in_bytes", "2048\n");
  fs.file("memory/" + c + "memory.kmem.max_usage_in_bytes", "4096\n");
  fs.file("memory/" + c + "memory.kmem.failcnt", "0\n");
  fs.file("memory/" + c + "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  fs.file("pids/" + c + "pids.current", "3\n");
  fs.file("pids/" + c + "pids.max", "max\n");
  fs.file("blkio/" + c + "blkio.bfq.io_service_bytes_recursive", "Total 0\n");
  fs.file("blkio/" + c + "blkio.bfq.io_serviced_recursive", "Total 0\n");
  fs.file("blkio/" + c + "blkio.throttle.io_service_bytes_recursive",
          "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n");
  fs.file("blkio/" + c + "blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\nTotal 3\n");
}

TEST(StatsV1, ReadsEveryController) {
  FakeCgroupFs fs;
  fill_v1(fs, "c1/");
  StatsSources src;
  src.cpu = {fs.path("cpu/c1"), 1};
  src.cpuacct = {fs.path("cpuacct/c1"), 1};
  src.memory = {fs.path("memory/c1"), 1};
  src.pids = {fs.path("pids/c1"), 1};
  src.blkio = {fs.path("blkio/c1"), 1};
  auto s = read_stats(src);
  ASSERT_TRUE(s) << s.error().message();

  EXPECT_EQ(s->cpu.total, 3000000000u);
  EXPECT_EQ(s->cpu.percpu, (std::vector<uint64_t>{1000000000, 2000000000}));
  EXPECT_EQ(s->cpu.percpu_user, (std::vector<uint64_t>{900, 1800}));
  EXPECT_EQ(s->cpu.percpu_kernel, (std::vector<uint64_t>{100, 200}));
  uint64_t tick = 1000000000 / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
  EXPECT_EQ(s->cpu.user, 150 * tick);
  EXPECT_EQ(s->cpu.kernel, 50 * tick);
  EXPECT_EQ(s->cpu.periods, 10u);
  EXPECT_EQ(s->cpu.throttled_periods, 4u);
  EXPECT_EQ(s->cpu.throttled_time, 123456u);

  EXPECT_EQ(s->memory.cache, 8192u);
  EXPECT_EQ(s->memory.raw.at("total_rss"), 4096u);
  EXPECT_EQ(s->memory.usage.usage, 12288u);
  EXPECT_EQ(s->memory.usage.max, 65536u);
  EXPECT_EQ(s->memory.usage.limit, 33554432u);
  EXPECT_EQ(s->memory.usage.failcnt, 7u);
  EXPECT_EQ(s->memory.swap.limit, 33554432u);
  EXPECT_EQ(s->memory.kernel.usage, 2048u);
  EXPECT_EQ(s->memory.kernel.limit, 0u);
  EXPECT_EQ(s->memory.kernel_tcp.usage, 0u);  // files absent: zeros
  EXPECT_EQ(s->memory.oom_kill, 2u);

  EXPECT_EQ(s->pids.current, 3u);
  EXPECT_EQ(s->pids.limit, 0u);  // "max"

  // BFQ's tables are empty: the throttle layer's are used, "Total" lines left out.
  ASSERT_EQ(s->blkio.io_service_bytes_recursive.size(), 6u);
  EXPECT_EQ(s->blkio.io_service_bytes_recursive[1].op, "Write");
  EXPECT_EQ(s->blkio.io_service_bytes_recursive[1].value, 8192u);
  EXPECT_EQ(s->blkio.io_service_bytes_recursive[1].major, 8u);
  ASSERT_EQ(s->blkio.io_serviced_recursive.size(), 2u);

  auto oom = read_oom_kill_count(src.memory);
  ASSERT_TRUE(oom) << oom.error().message();
  EXPECT_EQ(*oom, 2u);
}

TEST(StatsV1, MissingMemoryStatIsAnError) {
  FakeCgroupFs fs;
  fs.dir("memory/gone");
  Stats s;
  auto st = read_memory_v1(fs.path("memory/gone"), s);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("memory.stat"), std::string::npos) << st.error().message();
}

TEST(StatsV1, OomCounterMissingOnOldKernels) {
  FakeCgroupFs fs;
  fs.file("memory/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
  auto n = read_oom_kill_count({fs.path("memory/c1"), 1});
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code(), ENOTSUP);
}

void fill_v2(FakeCgroupFs& fs, const std::string& c) {
  fs.file(c + "cpu.stat",
          "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 20\nnr_throttled 5\nthrottled_usec 700\n");
  fs.file(c + "memory.stat", "anon 4096\nfile 8192\nkernel 1024\n");
  fs.file(c + "memory.current", "16384\n");
  fs.file(c + "memory.max", "33554432\n");
  fs.file(c + "memory.peak", "40000\n");
  fs.file(c + "memory.swap.current", "100\n");
  fs.file(c + "memory.swap.max", "max\n");
  fs.file(c + "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n");
  fs.file(c + "pids.current", "4\n");
  fs.file(c + "pids.max", "64\n");
  fs.file(c + "io.stat", "8:0 rbytes=4096 wbytes=1024 rios=2 wios=1 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n");
  fs.file(c + "hugetlb.2MB.current", "2097152\n");
  fs.file(c + "hugetlb.2MB.events", "max 3\n");
  fs.file(c + "hugetlb.2MB.max", "max\n");
  fs.file(c + "hugetlb.2MB.rsvd.current", "0\n");
  fs.file(c + "hugetlb.1GB.current", "0\n");
  fs.file(c + "hugetlb.1GB.events", "max 0\n");
}

TEST(StatsV2, ReadsEveryControllerInV1Units) {
  FakeCgroupFs fs;
  fill_v2(fs, "c1/");
  ControllerDir d{fs.path("c1"), 2};
  StatsSources src{d, d, d, d, d, d};
  auto s = read_stats(src);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->cpu.total, 2500000u);
  EXPECT_EQ(s->cpu.user, 2000000u);
  EXPECT_EQ(s->cpu.kernel, 500000u);
  EXPECT_EQ(s->cpu.periods, 20u);
  EXPECT_EQ(s->cpu.throttled_periods, 5u);
  EXPECT_EQ(s->cpu.throttled_time, 700000u);
  EXPECT_TRUE(s->cpu.percpu.empty());

  EXPECT_EQ(s->memory.cache, 8192u);
  EXPECT_EQ(s->memory.raw.at("anon"), 4096u);
  EXPECT_EQ(s->memory.usage.usage, 16384u);
  EXPECT_EQ(s->memory.usage.limit, 33554432u);
  EXPECT_EQ(s->memory.usage.max, 40000u);
  EXPECT_EQ(s->memory.usage.failcnt, 9u);
  EXPECT_EQ(s->memory.swap.usage, 16484u);  // swap + memory, as v1
  EXPECT_EQ(s->memory.swap.limit, UINT64_MAX);
  EXPECT_EQ(s->memory.oom, 2u);
  EXPECT_EQ(s->memory.oom_kill, 1u);

  EXPECT_EQ(s->pids.current, 4u);
  EXPECT_EQ(s->pids.limit, 64u);

  ASSERT_EQ(s->blkio.io_service_bytes_recursive.size(), 4u);
  EXPECT_EQ(s->blkio.io_service_bytes_recursive[0].op, "Read");
  EXPECT_EQ(s->blkio.io_service_bytes_recursive[0].value, 4096u);
  EXPECT_EQ(s->blkio.io_service_bytes_recursive[2].major, 253u);
  ASSERT_EQ(s->blkio.io_serviced_recursive.size(), 4u);
  EXPECT_EQ(s->blkio.io_serviced_recursive[1].op, "Write");

  ASSERT_EQ(s->hugetlb.size(), 2u);  // rsvd.current is not a page size
  EXPECT_EQ(s->hugetlb.at("2MB").usage, 2097152u);
  EXPECT_EQ(s->hugetlb.at("2MB").failcnt, 3u);

  auto oom = read_oom_kill_count(d);
  ASSERT_TRUE(oom);
  EXPECT_EQ(*oom, 1u);
}

TEST(StatsV2, MaxMemoryAndNoSwapAccounting) {
  FakeCgroupFs fs;
  fs.file("c1/memory.stat", "anon 0\n");
  fs.file("c1/memory.current", "10\n");
  fs.file("c1/memory.max", "max\n");
  Stats s;
  ASSERT_TRUE(read_memory_v2(fs.path("c1"), s));
  EXPECT_EQ(s.memory.usage.limit, UINT64_MAX);
  EXPECT_EQ(s.memory.usage.max, 0u);  // no memory.peak before 5.19
  EXPECT_EQ(s.memory.swap.usage, 10u);
  EXPECT_EQ(s.memory.swap.limit, UINT64_MAX);
}

TEST(StatsV2, PidsWithoutControllerCountsProcs) {
  FakeCgroupFs fs;
  fs.file("c1/cgroup.procs", "10\n11\n12\n");
  Stats s;
  ASSERT_TRUE(read_pids(fs.path("c1"), s));
  EXPECT_EQ(s.pids.current, 3u);
  EXPECT_EQ(s.pids.limit, 0u);
}

TEST(StatsJson, FollowsRuncTypes) {
  Stats s;
  s.cpu.total = 5;
  s.cpu.percpu = {2, 3};
  s.memory.usage = {100, 50, 0, 0};
  s.memory.raw["cache"] = 1;
  s.pids.current = 2;
  s.blkio.io_service_bytes_recursive.push_back({8, 0, "Read", 4096});
  s.hugetlb["2MB"] = {};
  auto j = to_runc_json(s);
  EXPECT_EQ(j["cpu"]["usage"]["total"], 5);
  EXPECT_EQ(j["cpu"]["usage"]["percpu"].size(), 2u);
  EXPECT_EQ(j["cpu"]["usage"]["kernel"], 0);  // not omitempty in runc
  EXPECT_FALSE(j["cpu"]["usage"].contains("percpu_kernel"));
  EXPECT_EQ(j["memory"]["usage"]["limit"], 100);
  EXPECT_EQ(j["memory"]["usage"]["usage"], 50);
  EXPECT_FALSE(j["memory"]["usage"].contains("max"));
  EXPECT_EQ(j["memory"]["usage"]["failcnt"], 0);
  EXPECT_EQ(j["memory"]["raw"]["cache"], 1);
  EXPECT_EQ(j["pids"]["current"], 2);
  EXPECT_FALSE(j["pids"].contains("limit"));
  EXPECT_EQ(j["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
  EXPECT_EQ(j["blkio"]["ioServiceBytesRecursive"][0]["major"], 8);
  EXPECT_FALSE(j["blkio"]["ioServiceBytesRecursive"][0].contains("minor"));
  EXPECT_EQ(j["hugetlb"]["2MB"]["failcnt"], 0);
}

// Through the manager on the hybrid layout: v1 controllers from v1, hugetlb from
// the v2 cgroup (the only controller it has there).
TEST(StatsManager, HybridReadsEachControllerWhereItLives) {
  FakeCgroupFs fs;
  const std::string c = "vessel/c1/";
  for (const char* h : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified"})
    fs.file(std::string(h) + "/" + c + "cgroup.procs");
  fs.file("cpuset/cpuset.cpus", "0-1\n");
  fs.file("cpuset/cpuset.mems", "0\n");
  for (const char* d : {"", "vessel/", "vessel/c1/"}) {
    fs.file(std::string("cpuset/") + d + "cpuset.cpus", "0-1\n");
    fs.file(std::string("cpuset/") + d + "cpuset.mems", "0\n");
    fs.file(std::string("unified/") + d + "cgroup.controllers", "hugetlb\n");
    fs.file(std::string("unified/") + d + "cgroup.subtree_control", "\n");
  }
  fill_v1(fs, c);
  fs.file("unified/" + c + "hugetlb.2MB.current", "4194304\n");
  fs.file("unified/" + c + "hugetlb.2MB.events", "max 1\n");
  fs.file("unified/" + c + "cpu.stat", "usage_usec 1\n");  // must not win over cpuacct

  Options o;
  o.container_id = "c1";
  o.root = fs.root();
  o.mountinfo = kHybridMountinfo;
  o.proc_cgroup = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:/\n3:cpuset:/\n"
                  "2:cpuacct:/\n1:cpu:/\n0::/\n";
  auto m = Manager::create(o);
  ASSERT_TRUE(m) << m.error().message();
  auto s = (*m)->stats();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->cpu.total, 3000000000u);
  EXPECT_EQ(s->cpu.throttled_periods, 4u);
  EXPECT_EQ(s->memory.usage.limit, 33554432u);
  EXPECT_EQ(s->pids.current, 3u);
  EXPECT_EQ(s->hugetlb.at("2MB").usage, 4194304u);
  EXPECT_EQ(s->hugetlb.at("2MB").failcnt, 1u);
  auto n = (*m)->oom_kill_count();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 2u);
}

TEST(StatsManager, V2ReadsCpuStatWithoutTheCpuController) {
  FakeCgroupFs fs;
  for (const char* d : {"", "vessel/", "vessel/c1/"}) {
    fs.file(std::string(d) + "cgroup.controllers", "memory pids\n");
    fs.file(std::string(d) + "cgroup.subtree_control", "\n");
  }
  fill_v2(fs, "vessel/c1/");
  fs.file("vessel/c1/cgroup.procs");
  Options o;
  o.container_id = "c1";
  o.root = fs.root();
  o.mountinfo = kV2Mountinfo;
  o.proc_cgroup = "0::/\n";
  auto m = Manager::create(o);
  ASSERT_TRUE(m) << m.error().message();
  auto s = (*m)->stats();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->cpu.total, 2500000u);
  EXPECT_EQ(s->memory.usage.usage, 16384u);
  EXPECT_EQ(s->pids.limit, 64u);
  EXPECT_TRUE(s->blkio.io_service_bytes_recursive.empty());  // io controller not available
  EXPECT_TRUE(s->hugetlb.empty());
}

}  // namespace
}  // namespace vessel::cgroups

namespace vessel::cgroups {
namespace {

// v2: inotify on memory.events wakes the watcher when the file changes.
TEST(OomNotifier, V2WakesOnMemoryEventsChange) {
  FakeCgroupFs fs;
  fs.file("c1/memory.events", "oom 0\noom_kill 0\n");
  auto n = OomNotifier::open({fs.path("c1"), 2});
  ASSERT_TRUE(n) << n.error().message();
  pollfd p{n->fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  fs.file("c1/memory.events", "oom 1\noom_kill 1\n");
  EXPECT_EQ(::poll(&p, 1, 1000), 1);
  n->drain();
  EXPECT_EQ(::poll(&p, 1, 0), 0);
}

TEST(OomNotifier, NoMemoryController) {
  auto n = OomNotifier::open({});
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code(), ENOTSUP);
}

}  // namespace
}  // namespace vessel::cgroups
