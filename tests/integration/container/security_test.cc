// runc's published escapes, each reproduced against vessel and shown to fail.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class Security : public ContainerTest {
 protected:
  int init_pid(const std::string& id) { return Json::parse(vessel({"state", id}).out)["pid"]; }
  static std::string read(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
};

// CVE-2019-5736: whoever holds /proc/<init>/exe must not be able to reopen it for
// writing once vessel stops running, or the host's binary is overwritten.
TEST_F(Security, Cve2019_5736_BinaryCannotBeReopenedForWriting) {
  set_script("exec sleep 1000");
  write_config();
  std::string before = read(VESSEL_BINARY);
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "c1"}).status, 0);
  // The created init is still vessel: grab its exe as the attacker would.
  int held = ::open(("/proc/" + std::to_string(init_pid("c1")) + "/exe").c_str(), O_PATH | O_CLOEXEC);
  ASSERT_GE(held, 0);
  ASSERT_EQ(vessel({"start", "c1"}).status, 0);  // the init execs sleep: vessel runs no more
  int w = -1;
  for (int i = 0; i < 50; ++i) {
    w = ::open(("/proc/self/fd/" + std::to_string(held)).c_str(), O_WRONLY | O_CLOEXEC);
    if (w >= 0 || errno != ETXTBSY) break;
    ::usleep(20000);
  }
  int err = errno;
  if (w >= 0) ::close(w);
  ::close(held);
  EXPECT_LT(w, 0) << "the vessel binary was reopened for writing";
  EXPECT_TRUE(err == EROFS || err == EPERM || err == EACCES) << "errno " << err;
  EXPECT_EQ(read(VESSEL_BINARY), before);
}

// CVE-2024-21626: no host fd reaches the process, and a cwd through a leaked fd is refused.
TEST_F(Security, Cve2024_21626_NoLeakedFdsAndCwdStaysInside) {
  Output o = run_script("ls /proc/self/fd | tr '\\n' ' '");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "0 1 2 3 ") << "only stdio (and ls's own directory fd)";
  for (int fd = 3; fd < 10; ++fd) {
    config_["process"]["cwd"] = "/proc/self/fd/" + std::to_string(fd);
    Output c = run_script("pwd; ls ..", "cwd" + std::to_string(fd));
    if (c.status == 0) {
      EXPECT_EQ(c.out.find("bundle"), std::string::npos) << "cwd escaped to the host: " << c.out;
    } else {
      EXPECT_NE(c.err.find("process.cwd"), std::string::npos) << c.err;
    }
  }
}

// CVE-2021-30465 / CVE-2023-27561: a symlink in a mount destination resolves inside the rootfs.
TEST_F(Security, Cve2021_30465_MountThroughSymlinkStaysInRootfs) {
  std::string host_dir = dir_ + "/host-target";
  ::mkdir(host_dir.c_str(), 0755);
  std::ofstream(host_dir + "/keep") << "host file\n";
  ::symlink(("../../../../../../../../.." + host_dir).c_str(), (bundle_ + "/rootfs/evil").c_str());
  config_["mounts"].push_back({{"destination", "/evil"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  Output o = run_script("ls /evil | wc -l");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "0\n");
  // The target was created inside the rootfs, not taken from the host.
  struct stat st{};
  EXPECT_EQ(::stat((bundle_ + "/rootfs" + host_dir).c_str(), &st), 0);
  EXPECT_EQ(read(host_dir + "/keep"), "host file\n");
}

TEST_F(Security, Cve2023_27561_ProcSymlinkIsNotFollowedOutOfTheRootfs) {
  ::rmdir((bundle_ + "/rootfs/proc").c_str());
  ::symlink("/sys/kernel", (bundle_ + "/rootfs/proc").c_str());
  auto before = mount_points();
  Output o = run_script("true");
  if (o.status == 0) {
    struct stat st{};
    EXPECT_EQ(::stat((bundle_ + "/rootfs/sys/kernel").c_str(), &st), 0) << "proc mounted outside the rootfs";
  } else {
    EXPECT_NE(o.err.find("/proc"), std::string::npos) << o.err;
  }
  EXPECT_EQ(mount_points(), before);
}

// CVE-2025-31133: masking binds the container's /dev/null only if it really is the null device.
TEST_F(Security, Cve2025_31133_DevNullSymlinkIsRefused) {
  std::string fake_dev = dir_ + "/fakedev";
  ::mkdir(fake_dev.c_str(), 0755);
  ::symlink("/proc/sys/kernel/core_pattern", (fake_dev + "/null").c_str());
  // /dev comes from a bind mount the attacker controls instead of our tmpfs.
  for (auto& m : config_["mounts"])
    if (m["destination"] == "/dev") m = {{"destination", "/dev"}, {"type", "bind"}, {"source", fake_dev}, {"options", {"rbind"}}};
  std::string core_pattern = read("/proc/sys/kernel/core_pattern");
  write_config();
  Output o = vessel({"create", "--bundle", bundle_, "c1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("/dev/null in the container is not the null device"), std::string::npos) << o.err;
  EXPECT_EQ(read("/proc/sys/kernel/core_pattern"), core_pattern);
  EXPECT_TRUE(state_entries().empty());
}

// CVE-2025-52565: /dev/console as a planted symlink is not mounted over.
TEST_F(Security, Cve2025_52565_ConsoleSymlinkIsRefused) {
  std::string fake_dev = dir_ + "/fakedev";
  ::mkdir(fake_dev.c_str(), 0755);
  ::mkdir((fake_dev + "/pts").c_str(), 0755);
  ::mknod((fake_dev + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3));
  ::symlink("pts/ptmx", (fake_dev + "/ptmx").c_str());
  ::symlink("/proc/sys/kernel/core_pattern", (fake_dev + "/console").c_str());
  for (auto& m : config_["mounts"])
    if (m["destination"] == "/dev") m = {{"destination", "/dev"}, {"type", "bind"}, {"source", fake_dev}, {"options", {"rbind"}}};
  config_["process"]["terminal"] = true;
  write_config();
  std::string sock = dir_ + "/console.sock";
  // A listener that accepts and drops the pty.
  int srv = listen_unix(sock);
  ASSERT_GE(srv, 0);
  Output o = vessel({"create", "--bundle", bundle_, "--console-socket", sock, "c1"});
  ::close(srv);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("/dev/console"), std::string::npos) << o.err;
  EXPECT_TRUE(state_entries().empty());
}

// CVE-2025-52881: sysctl writes go to the real procfs, not to a file mounted over it.
TEST_F(Security, Cve2025_52881_SysctlWriteRefusesNonProcfs) {
  std::string fake = dir_ + "/fakesys";
  ::mkdir(fake.c_str(), 0755);
  ::mkdir((fake + "/net").c_str(), 0755);
  ::mkdir((fake + "/net/ipv4").c_str(), 0755);
  std::ofstream(fake + "/net/ipv4/ip_forward") << "untouched";
  config_["mounts"].push_back({{"destination", "/proc/sys"}, {"type", "bind"}, {"source", fake}, {"options", {"rbind"}}});
  config_["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  write_config();
  Output o = vessel({"create", "--bundle", bundle_, "c1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("linux.sysctl.net.ipv4.ip_forward"), std::string::npos) << o.err;
  EXPECT_EQ(read(fake + "/net/ipv4/ip_forward"), "untouched");
}

// CVE-2016-9962: the init is not dumpable (no ptrace, no /proc/<pid>/environ) until it execs.
TEST_F(Security, Cve2016_9962_InitNotDumpableBeforeExec) {
  set_script("exec sleep 1000");
  config_["process"]["env"].push_back("SECRET=from-the-runtime");
  write_config();
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "c1"}).status, 0);
  Output o = vessel({"exec", "c1", "cat", "/proc/1/environ"});
  EXPECT_NE(o.status, 0) << "the container read the init's environment: " << o.out;
  EXPECT_EQ(o.out.find("SECRET"), std::string::npos);
}

// CVE-2022-29162: inheritable capabilities are empty unless asked for, also for exec.
TEST_F(Security, Cve2022_29162_ExecHasNoInheritableCaps) {
  set_script("exec sleep 1000");
  write_config();
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0);
  Output o = vessel({"exec", "c1", "grep", "CapInh", "/proc/self/status"});
  EXPECT_EQ(o.out, "CapInh:\t0000000000000000\n");
}

}  // namespace
}  // namespace vessel::testing
