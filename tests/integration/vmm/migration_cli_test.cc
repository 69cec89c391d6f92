// Tier-1 live migration between two VMM processes over TCP on loopback (the
// issue's tier-1 check; in the VM harness through vmharness.vmm_tier1): the
// 32-bit guest of migration/dirty_guest.h writes its counter into random
// pages of its 512 MiB and verifies the sum of all of them every 100 ms.
// `vessel vm run -d` starts it, `vm receive -d` waits on a TCP port, `vm
// migrate` moves it. The destination's reports must all say the pages add up
// (K), with a count at least the source's last one (no page lost, no count
// repeated); the VMM's downtime is printed for an idle and a dirtying guest.
// `vm upgrade` moves the same guest to a new VMM process on this host, the
// memfd handed over, and keeps the VM's id (twice).
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "integration/vmm/cli_run.h"
#include "integration/vmm/migration/dirty_guest.h"
#include "integration/vmm/tiny_guest.h"
#include "integration/vmm/tiny_pvh.h"
#include "vmm/config/vm_config.h"

namespace vessel::vmm::testing {
namespace {

class VmmMigrationCli : public ::testing::Test {
 public:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-migration-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/root";
  }
  void TearDown() override {
    for (const char* id : {"src", "dst", "up"}) {
      (void)vessel({"vm", "kill", id});
      (void)vessel({"vm", "delete", id});
    }
    (void)::system(("rm -rf " + dir_).c_str());
  }

  // vessel --root <root> args...; stdout and stderr captured.
  CliResult vessel(std::vector<std::string> args) { return run_vessel(root_, dir_, std::move(args)); }

  std::string serial_log(const std::string& id) { return root_ + "/vm/" + id + "/serial.log"; }

  // The guest's reports in VM `id`'s serial log: (count, 'K' or 'X').
  std::vector<std::pair<uint32_t, char>> reports(const std::string& id) {
    std::vector<std::pair<uint32_t, char>> out;
    std::istringstream in(slurp(serial_log(id)));
    std::string line;
    static const std::regex re("^C ([0-9A-F]{8}) ([KX])$");
    std::smatch m;
    while (std::getline(in, line))
      if (std::regex_match(line, m, re)) out.emplace_back(static_cast<uint32_t>(std::stoul(m[1], nullptr, 16)), m[2].str()[0]);
    return out;
  }

  // Whether VM `id` printed `n` reports within `seconds`; false at once when
  // VM `stopped_id` (if one) is stopped.
  bool wait_reports(const std::string& id, size_t n, int seconds, const std::string& stopped_id = "") {
    auto t0 = std::chrono::steady_clock::now();
    while (reports(id).size() < n) {
      if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(seconds)) return false;
      if (!stopped_id.empty() && vessel({"vm", "state", stopped_id}).out.find("\"status\": \"stopped\"") != std::string::npos)
        return reports(id).size() >= n;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  // Starts VM "src" running the dirty guest at `mib_per_s`; `dirty_ring_entries`
  // other than the default (0: the slots' bitmaps): a config file says so.
  void start_source(double mib_per_s, uint32_t dirty_ring_entries = VmConfig::kDefaultDirtyRingEntries) {
    source_mib_per_s_ = mib_per_s;
    source_ring_ = dirty_ring_entries;
    uint32_t khz = tsc_khz();
    ASSERT_GT(khz, 0u);
    std::string elf = dir_ + "/dirty.elf";
    auto bytes = pvh_elf(dirty_guest_at(mib_per_s, khz, 100));
    std::ofstream(elf, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    std::vector<std::string> args{"vm", "run", "-d", "--name", "src", "--kernel", elf, "--memory", "512M", "--cpus", "1"};
    if (dirty_ring_entries != VmConfig::kDefaultDirtyRingEntries) {
      std::string config = dir_ + "/src.json";
      std::ofstream(config) << "{\"boot-source\": {\"kernel_image_path\": \"" << elf
                            << "\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 512}, "
                            << "\"vessel\": {\"dirty_ring_entries\": " << dirty_ring_entries << "}}";
      args = {"vm", "run", "-d", "--name", "src", "--config-file", config};
    }
    CliResult r = vessel(args);
    ASSERT_EQ(r.status, 0) << r.err;
    ASSERT_TRUE(wait_reports("src", 3, 120)) << "the guest does not report: " << slurp(serial_log("src"));
  }

  // This host's TSC rate, as KVM gives it to a vCPU.
  static uint32_t tsc_khz() {
    MachineConfig cfg;
    cfg.memory = 2 << 20;
    auto m = Machine::create(cfg);
    if (!m) return 0;
    auto k = (*m)->vcpu_fd(0).get_tsc_khz();
    return k ? *k : 0;
  }

  // Checks that `to` goes on from `from`: reports after the move, all K, no count behind.
  void expect_continues(const std::string& from, const std::string& to, bool dirtying) {
    auto before = reports(from);
    ASSERT_FALSE(before.empty());
    ASSERT_TRUE(wait_reports(to, 3, 60, to)) << "the migrated guest does not report: " << slurp(serial_log(to));
    auto after = reports(to);
    for (const auto& [count, verdict] : before) EXPECT_EQ(verdict, 'K') << from << " count " << count;
    for (const auto& [count, verdict] : after) EXPECT_EQ(verdict, 'K') << to << ": pages lost a write at count " << count;
    EXPECT_GE(after.front().first, before.back().first) << "the count went back";
    if (dirtying) EXPECT_GT(after.back().first, after.front().first) << "the migrated guest does not write";
    else EXPECT_EQ(after.back().first, before.back().first) << "the idle guest wrote";
  }

  // Under the VM harness (VESSEL_TEST_SPURIOUS_SHUTDOWNS set), L1's nested SVM
  // now and then damages a running guest's saved registers
  // (tests/vmharness/README.md): its host's CR0, CR3 and CS in them. Seen
  // here as the source's state capture refusing them (snapshot::check_sregs:
  // the migration fails) and as a guest that dies in a triple fault no
  // instruction of it caused (this guest has nothing that could fault). The
  // description of such an end of migration `err` (its `vm migrate` stderr),
  // when it is one and the harness allows it; "" otherwise.
  std::string l1_artifact(const std::string& err) {
    if (spurious_shutdowns_allowed() <= 0) return "";
    if (shows_l1_damage(err)) return "the source: " + err;
    for (const char* id : {"src", "dst"}) {
      std::string st = vessel({"vm", "state", id}).out;
      if (shows_l1_damage(st)) return std::string(id) + ": " + st;
    }
    return "";
  }

  // After an l1_artifact(): both VMs go, a new source guest starts.
  void restart_source(const std::string& artifact) {
    std::printf("NOTE: spurious damage of a vCPU's state by L1's nested SVM (%s); "
                "the migration again with a new source guest\n", artifact.c_str());
    for (const char* id : {"src", "dst"}) {
      (void)vessel({"vm", "kill", id});
      (void)vessel({"vm", "delete", id});
    }
    start_source(source_mib_per_s_, source_ring_);
  }

  std::string dir_, root_;
  std::string last_migration_;  // what the last migrate_over_tcp() printed
  double source_mib_per_s_ = 0;
  uint32_t source_ring_ = VmConfig::kDefaultDirtyRingEntries;
};

uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

// "migrated src to ...: downtime 1.23 ms, total 456 ms, 3 rounds" -> 1.23
double downtime_of(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("downtime ([0-9.e+-]+) ms"))) return -1;
  return std::stod(m[1]);
}

void migrate_over_tcp(VmmMigrationCli& t, double mib_per_s, std::vector<std::string> flags = {}) {
  CliResult r;
  for (int attempt = 1;; ++attempt) {
    uint16_t port = free_port();
    ASSERT_NE(port, 0);
    std::string url = "tcp:127.0.0.1:" + std::to_string(port);
    r = t.vessel({"vm", "receive", "-d", "--name", "dst", "--listen", url});
    ASSERT_EQ(r.status, 0) << r.err;
    std::vector<std::string> args{"vm", "migrate", "src", "--to", url};
    args.insert(args.end(), flags.begin(), flags.end());
    r = t.vessel(args);
    // Up to two runs more (the post-copy test's 100 MiB/s guest met the damage
    // in 4 of 20 migrations in one session's runs).
    if (attempt < 3) {
      // The destination's guest reports, or died of L1's damage.
      std::string artifact;
      if (r.status != 0) artifact = t.l1_artifact(r.err);
      else if (!t.wait_reports("dst", 1, 60, "dst")) artifact = t.l1_artifact("");
      if (!artifact.empty()) {
        t.restart_source(artifact);
        ASSERT_FALSE(t.HasFatalFailure());
        continue;
      }
    }
    break;
  }
  ASSERT_EQ(r.status, 0) << r.err;
  if (!flags.empty() && flags[0] == "--postcopy") {
    EXPECT_NE(r.out.find("post-copy of"), std::string::npos) << "it did not switch to post-copy: " << r.out;
  }
  double downtime = downtime_of(r.out);
  EXPECT_GT(downtime, 0) << r.out;
  std::printf("tier-1 migration over TCP, 512 MiB guest dirtying %g MiB/s: %s", mib_per_s, r.out.c_str());
  t.last_migration_ = r.out;
  t.expect_continues("src", "dst", mib_per_s > 0);
}

TEST_F(VmmMigrationCli, IdleGuestOf512MiBMovesOverTcp) {
  VESSEL_REQUIRE_KVM();
  start_source(0);
  migrate_over_tcp(*this, 0);
}

TEST_F(VmmMigrationCli, DirtyingGuestOf512MiBMovesOverTcpWithoutLosingAWrite) {
  VESSEL_REQUIRE_KVM();
  start_source(10);
  migrate_over_tcp(*this, 10);
}

// The same with KVM's dirty ring (where this KVM has one) instead of the bitmaps.
TEST_F(VmmMigrationCli, DirtyingGuestMovesWithTheDirtyRingToo) {
  VESSEL_REQUIRE_KVM();
  start_source(10, 4096);
  migrate_over_tcp(*this, 10);
  EXPECT_NE(last_migration_.find("dirty pages from the "), std::string::npos) << last_migration_;
  std::printf("with vessel.dirty_ring_entries 4096: %s\n",
              last_migration_.find("dirty pages from the ring") != std::string::npos ? "the ring" : "bitmaps (no ring here)");
}

int vmm_pid(VmmMigrationCli& t, const std::string& id);

// A guest that dirties 100 MiB/s, with a budget pre-copy cannot meet in its
// two rounds: it moves by post-copy. Its verification pass reads every page
// of its 512 MiB each 100 ms, so on the destination it touches the missing
// pages before they come, and must still see every write it made.
TEST_F(VmmMigrationCli, FastDirtyingGuestMovesByPostCopyWithoutLosingAWrite) {
  VESSEL_REQUIRE_KVM();
  start_source(100);
  migrate_over_tcp(*this, 100, {"--postcopy", "--max-rounds", "2", "--max-downtime", "1"});
  CliResult r = vessel({"vm", "state", "dst"});
  EXPECT_NE(r.out.find("\"status\": \"running\""), std::string::npos) << r.out;
}

// The source VMM dies in the middle of post-copy: the destination's guest
// lacks pages that will never come, so the destination stops it and says
// why; `vm delete` then leaves nothing.
TEST_F(VmmMigrationCli, PostCopyWhoseSourceDiesStopsTheDestinationCleanly) {
  VESSEL_REQUIRE_KVM();
  start_source(10);
  uint16_t port = free_port();
  ASSERT_NE(port, 0);
  std::string url = "tcp:127.0.0.1:" + std::to_string(port);
  CliResult r = vessel({"vm", "receive", "-d", "--name", "dst", "--listen", url});
  ASSERT_EQ(r.status, 0) << r.err;
  int src_pid = vmm_pid(*this, "src");
  ASSERT_GT(src_pid, 0);
  std::string mdir = dir_ + "/migrate";
  ASSERT_EQ(::mkdir(mdir.c_str(), 0700), 0);
  // Slow (4 MB/s) so that post-copy lasts long enough to be cut.
  auto mig = std::async(std::launch::async, [&] {
    return run_vessel(root_, mdir, {"vm", "migrate", "src", "--to", url, "--postcopy", "--max-rounds", "1",
                                    "--max-downtime", "1", "--bandwidth", "4000000"});
  });
  bool in_postcopy = false;
  for (int i = 0; i < 1200 && !in_postcopy; ++i) {
    in_postcopy = vessel({"vm", "state", "src"}).out.find("\"phase\": \"postcopy\"") != std::string::npos;
    if (!in_postcopy) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(in_postcopy) << "the migration never reached post-copy: " << mig.get().err;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_EQ(::kill(src_pid, SIGKILL), 0);
  CliResult m = mig.get();
  EXPECT_NE(m.status, 0) << m.out;
  // The destination stops its incomplete guest and says why.
  std::string st;
  for (int i = 0; i < 600; ++i) {
    st = vessel({"vm", "state", "dst"}).out;
    if (st.find("\"exit_reason\": \"error\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(st.find("post-copy failed after the guest started here"), std::string::npos) << st;
  int dst_pid = vmm_pid(*this, "dst");
  for (int i = 0; i < 300 && dst_pid > 0 && ::kill(dst_pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(dst_pid <= 0 || ::kill(dst_pid, 0) != 0) << "the destination VMM did not exit";
  for (const char* id : {"src", "dst"}) {
    CliResult d = vessel({"vm", "delete", id});
    EXPECT_EQ(d.status, 0) << id << ": " << d.err;
    EXPECT_NE(::access((root_ + "/vm/" + id).c_str(), F_OK), 0) << id << "'s state directory is left";
  }
}

// "pid": N of `vm state ID`.
int vmm_pid(VmmMigrationCli& t, const std::string& id) {
  CliResult r = t.vessel({"vm", "state", id});
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex("\"pid\": *([0-9]+)"))) return 0;
  return std::stoi(m[1]);
}

TEST_F(VmmMigrationCli, UpgradeMovesTheVmToANewVmmProcessKeepingItsId) {
  VESSEL_REQUIRE_KVM();
  start_source(10);
  int before = vmm_pid(*this, "src");
  ASSERT_GT(before, 0);
  CliResult r = vessel({"vm", "upgrade", "src"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::printf("tier-1 vm upgrade, 512 MiB guest dirtying 10 MiB/s: %s", r.out.c_str());
  EXPECT_GT(downtime_of(r.out), 0) << r.out;
  int after = vmm_pid(*this, "src");
  EXPECT_GT(after, 0);
  EXPECT_NE(after, before) << "the VM must run in a new VMM process";
  EXPECT_NE(::kill(before, 0), 0) << "the old VMM must have exited";
  EXPECT_NE(::access((root_ + "/vm/src.upgrade").c_str(), F_OK), 0) << "the new VMM's temporary directory is left";
  // The console before the upgrade is kept as serial.log.1; the guest goes on in serial.log.
  std::string old_log = slurp(serial_log("src") + ".1");
  EXPECT_NE(old_log.find(" K\n"), std::string::npos) << old_log;
  ASSERT_TRUE(wait_reports("src", 3, 60)) << slurp(serial_log("src"));
  for (const auto& [count, verdict] : reports("src")) EXPECT_EQ(verdict, 'K') << "count " << count;
  // Again, from the VMM the first upgrade started (its directory was renamed
  // from src.upgrade to src): its exit record must land in src, not in the
  // new src.upgrade.
  r = vessel({"vm", "upgrade", "src"});
  ASSERT_EQ(r.status, 0) << r.err;
  int third = vmm_pid(*this, "src");
  EXPECT_GT(third, 0);
  EXPECT_NE(third, after) << "the VM must run in a new VMM process";
  EXPECT_NE(::kill(after, 0), 0) << "the old VMM must have exited";
  EXPECT_NE(::access((root_ + "/vm/src.upgrade").c_str(), F_OK), 0) << "the new VMM's temporary directory is left";
  ASSERT_TRUE(wait_reports("src", 3, 60)) << slurp(serial_log("src"));
  for (const auto& [count, verdict] : reports("src")) EXPECT_EQ(verdict, 'K') << "count " << count;
  // An upgrade of a VM that does not exist: one clear error.
  r = vessel({"vm", "upgrade", "nosuchvm"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("nosuchvm"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace vessel::vmm::testing
