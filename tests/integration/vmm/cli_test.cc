// `vessel vm run` through the real binary: tiny PVH guests and bad input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/vmm/cli_run.h"
#include "integration/vmm/tiny_guest.h"
#include "integration/vmm/tiny_pvh.h"

namespace vessel::vmm::testing {
namespace {

struct CliRun {
  int status = -1;  // exit code, or 128+signal
  std::string err;
};

std::string temp_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/vessel-vm-cli-XXXXXX";
    return std::string(mkdtemp(tmpl));
  }();
  return dir;
}

// Runs vessel with `args`, stderr captured. With term_after_ms >= 0 it is sent SIGTERM that long
// after `ready` (if given) first returned true (polled for up to 60 s): a signal
// before vessel is up would test the default action, not vessel.
CliRun vessel(std::vector<std::string> args, int term_after_ms = -1, const std::function<bool()>& ready = nullptr) {
  std::string err_path = temp_dir() + "/stderr";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    std::vector<char*> argv{const_cast<char*>(vessel_binary())};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(vessel_binary(), argv.data());
    _exit(127);
  }
  if (term_after_ms >= 0) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (ready && !ready() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(term_after_ms));
    kill(pid, SIGTERM);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  CliRun r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.err = slurp(err_path);
  return r;
}

std::string tiny(const std::string& mode) {
  std::string out = temp_dir() + "/tiny-" + mode + ".elf";
  EXPECT_TRUE(write_tiny_pvh(out, mode, "Hello from a tiny PVH guest\n")) << out;
  return out;
}

// One line "vessel: ..." containing `what`.
void expect_one_line_error(const CliRun& r, const std::string& what) {
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err.rfind("vessel: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << "expected '" << what << "' in: " << r.err;
}

TEST(VmmCli, TinyPvhGuestPrintsAndPowersOff) {
  VESSEL_REQUIRE_KVM();
  std::string serial = temp_dir() + "/serial.txt";
  CliRun r = vessel({"vm", "run", "--kernel", tiny("poweroff"), "--serial", "file:" + serial, "--cpus", "2"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(slurp(serial), "Hello from a tiny PVH guest\n");
}

TEST(VmmCli, GuestResetExitsWithRebootStatus) {
  VESSEL_REQUIRE_KVM();
  CliRun r = vessel({"vm", "run", "--kernel", tiny("reset"), "--serial", "none"});
  EXPECT_EQ(r.status, 3) << r.err;
}

TEST(VmmCli, TripleFaultPrintsRegisters) {
  VESSEL_REQUIRE_KVM();
  CliRun r = vessel({"vm", "run", "--kernel", tiny("fault"), "--serial", "none"});
  expect_one_line_error(r, "triple fault");
  EXPECT_NE(r.err.find("rip=0x"), std::string::npos) << r.err;
}

TEST(VmmCli, SigtermStopsTheVmCleanly) {
  VESSEL_REQUIRE_KVM();
  // Signalled once the guest has printed (its vCPUs run), as a user would.
  std::string serial = temp_dir() + "/sigterm-serial";
  CliRun r = vessel({"vm", "run", "--kernel", tiny("spin"), "--serial", "file:" + serial, "--cpus", "2"}, 100,
                    [&] { return slurp(serial).find("Hello") != std::string::npos; });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(slurp(serial).find("Hello"), std::string::npos) << "the guest never ran";
}

TEST(VmmCli, MissingKernel) {
  expect_one_line_error(vessel({"vm", "run", "--kernel", "/nonexistent/vmlinuz"}), "/nonexistent/vmlinuz");
}

TEST(VmmCli, NotAKernel) {
  VESSEL_REQUIRE_KVM();  // the kernel is read after the VM exists
  std::string f = temp_dir() + "/not-a-kernel";
  std::ofstream(f) << std::string(4096, 'x');
  expect_one_line_error(vessel({"vm", "run", "--kernel", f}), "not a Linux kernel");
}

TEST(VmmCli, InitrdTooLarge) {
  VESSEL_REQUIRE_KVM();
  std::string initrd = temp_dir() + "/big-initrd";
  int fd = open(initrd.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_EQ(ftruncate(fd, 64 << 20), 0);  // sparse 64 MiB
  close(fd);
  expect_one_line_error(vessel({"vm", "run", "--kernel", tiny("poweroff"), "--initrd", initrd, "--memory", "32M"}),
                        "initrd");
}

TEST(VmmCli, BadMemory) {
  expect_one_line_error(vessel({"vm", "run", "--kernel", "/x", "--memory", "1M"}), "--memory must be at least");
  expect_one_line_error(vessel({"vm", "run", "--kernel", "/x", "--memory", "12Q"}), "--memory");
}

TEST(VmmCli, ZeroCpus) {
  expect_one_line_error(vessel({"vm", "run", "--kernel", "/x", "--cpus", "0"}), "--cpus");
}

TEST(VmmCli, BadSerial) {
  expect_one_line_error(vessel({"vm", "run", "--kernel", "/x", "--serial", "tcp:1"}), "--serial");
}

TEST(VmmCli, NoKvmDevice) {
  std::string k = tiny("poweroff");
  expect_one_line_error(vessel({"vm", "run", "--kernel", k, "--kvm-device", "/nonexistent/kvm"}), "/nonexistent/kvm");
  expect_one_line_error(vessel({"vm", "run", "--kernel", k, "--kvm-device", "/dev/null"}), "not a KVM device");
}

}  // namespace
}  // namespace vessel::vmm::testing

namespace vessel::vmm::testing {
namespace {

TEST(VmmCliVirtio, BadDeviceSpecs) {
  expect_one_line_error(vessel({"vm", "run", "--kernel", "/x", "--disk", "a.img,colour=red"}), "unknown option 'colour'");
  expect_one_line_error(vessel({"vm", "run", "--kernel", "/x", "--net", "mac=52:54:00:00:00:01"}), "tap=NAME is required");
  expect_one_line_error(vessel({"vm", "run", "--kernel", "/x", "--disk", "a.img,iops=0"}), "iops");
}

TEST(VmmCliVirtio, MissingDiskImage) {
  VESSEL_REQUIRE_KVM();
  expect_one_line_error(vessel({"vm", "run", "--kernel", tiny("poweroff"), "--disk", "/nonexistent/disk.img"}),
                        "/nonexistent/disk.img");
}

TEST(VmmCliVirtio, GuestWithDevicesPowersOff) {
  VESSEL_REQUIRE_KVM();
  std::string img = temp_dir() + "/disk.raw";
  std::ofstream(img) << std::string(1 << 20, '\0');
  CliRun r = vessel({"vm", "run", "--kernel", tiny("poweroff"), "--disk", img + ",serial=s1", "--disk",
                     img + ",readonly", "--rng", "--serial", "none"});
  EXPECT_EQ(r.status, 0) << r.err;
}

}  // namespace
}  // namespace vessel::vmm::testing
