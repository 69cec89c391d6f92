// Hostile configs and flags (issue 11, items 3, 4 and 6): what runc refuses is
// refused with one error naming the field, at once (no hang on a FIFO or
// /dev/zero), and nothing on the host changes: sysctls keep their values, no
// process runs as root, a host directory behind a symlinked root.path is not
// touched, and nothing is left behind.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "common/fs.h"
#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

class HostileInput : public ContainerTest {
 protected:
  void SetUp() override {
    VESSEL_REQUIRE_ROOT();
    ContainerTest::SetUp();
  }

  // `args` fails within `max_s` seconds with `needle` on one stderr line, leaving no state and no mount.
  Output expect_fails(const std::vector<std::string>& args, const std::string& needle, int max_s = 20) {
    auto mounts = mount_points();
    auto before = state_entries();
    auto t0 = std::chrono::steady_clock::now();
    Output o = vessel(args, "", max_s + 10);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(o.status, 0) << "stdout: " << o.out;
    EXPECT_LT(secs, max_s) << "took " << secs << " s";
    EXPECT_NE(o.err.find(needle), std::string::npos) << "stderr: " << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << "one line: " << o.err;
    EXPECT_EQ(state_entries(), before) << "state left behind";
    EXPECT_EQ(mount_points(), mounts) << "mounts left behind";
    return o;
  }
  Output expect_create_fails(const std::string& needle, int max_s = 20) {
    return expect_fails({"create", "--bundle", bundle_, "h1"}, needle, max_s);
  }
  // The script leaves this file in the rootfs when it runs.
  std::string marker() const { return bundle_ + "/rootfs/tmp/ran"; }
  void remove_namespace(const std::string& type) {
    auto& ns = config_["linux"]["namespaces"];
    nlohmann::json kept = nlohmann::json::array();
    for (auto& n : ns)
      if (n["type"] != type) kept.push_back(n);
    ns = kept;
  }
  // A running container "h1" (for update and exec).
  void start_sleeper() {
    set_script("exec sleep 300");
    write_config();
    ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "h1"}).status, 0);
  }
  void TearDown() override {
    if (!dir_.empty()) vessel({"delete", "--force", "h1"});
    ContainerTest::TearDown();
  }
};

// --- item 3: sysctls of namespaces the container does not own -----------------------------------

TEST_F(HostileInput, NonNamespacedSysctlsAreRefusedAndTheHostKeepsItsValues) {
  for (const char* key : {"vm.swappiness", "kernel.printk_ratelimit"}) {
    std::string file = std::string("/proc/sys/") + key;
    std::replace(file.begin() + 10, file.end(), '.', '/');
    std::string before = read_text(file);
    ASSERT_FALSE(before.empty()) << file;
    std::string other = std::to_string(std::stoi(before) == 7 ? 8 : 7);
    config_["linux"]["sysctl"] = {{key, other}};
    set_script("touch /tmp/ran");
    write_config();
    expect_create_fails(std::string("linux.sysctl[\"") + key + "\"]: not in a separate kernel namespace");
    EXPECT_EQ(read_text(file), before) << key << " changed on the host";
    EXPECT_FALSE(path_exists(marker()));
  }
}

TEST_F(HostileInput, NetSysctlNeedsANetworkNamespaceOfItsOwn) {
  std::string before = read_text("/proc/sys/net/ipv4/tcp_keepalive_probes");
  std::string other = std::to_string(std::stoi(before) == 7 ? 8 : 7);
  config_["linux"]["sysctl"] = {{"net.ipv4.tcp_keepalive_probes", other}};
  remove_namespace("network");
  write_config();
  expect_create_fails("linux.sysctl[\"net.ipv4.tcp_keepalive_probes\"]: not allowed in the host's network namespace");
  // Joining the host's namespace by path is the same thing.
  config_["linux"]["namespaces"].push_back({{"type", "network"}, {"path", "/proc/self/ns/net"}});
  write_config();
  expect_create_fails("is the host's");
  EXPECT_EQ(read_text("/proc/sys/net/ipv4/tcp_keepalive_probes"), before);
}

TEST_F(HostileInput, IpcAndUtsSysctlsFollowTheirNamespaces) {
  std::string before = read_text("/proc/sys/kernel/shmmni");
  config_["linux"]["sysctl"] = {{"kernel.shmmni", "1234"}};
  remove_namespace("ipc");
  write_config();
  expect_create_fails("linux.sysctl[\"kernel.shmmni\"]: not allowed in the host's ipc namespace");
  EXPECT_EQ(read_text("/proc/sys/kernel/shmmni"), before);

  config_["linux"]["sysctl"] = {{"kernel.hostname", "x"}};
  write_config();
  expect_create_fails("linux.sysctl[\"kernel.hostname\"]: not allowed: it conflicts with the \"hostname\" field");

  // With its own ipc namespace the container gets the value and the host keeps its own.
  config_["linux"]["namespaces"].push_back({{"type", "ipc"}});
  config_["linux"]["sysctl"] = {{"kernel.shmmni", "1234"}, {"kernel.domainname", "example"}};
  Output o = run_script("cat /proc/sys/kernel/shmmni /proc/sys/kernel/domainname");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "1234\nexample\n");
  EXPECT_EQ(read_text("/proc/sys/kernel/shmmni"), before);
}

// --- item 3: ids that set*id reads as "unchanged" -------------------------------------------------

TEST_F(HostileInput, UidAndGidMinusOneAreRefusedNotRunAsRoot) {
  set_script("touch /tmp/ran");
  config_["process"]["user"]["uid"] = 4294967295u;
  write_config();
  expect_create_fails("process.user.uid: 4294967295 is out of range 0..4294967294");
  config_["process"]["user"]["uid"] = 1000;
  config_["process"]["user"]["gid"] = 4294967295u;
  write_config();
  expect_create_fails("process.user.gid: 4294967295 is out of range");
  config_["process"]["user"]["gid"] = 1000;
  config_["process"]["user"]["additionalGids"] = {4294967295u};
  write_config();
  expect_create_fails("process.user.additionalGids[0]: 4294967295 is out of range");
  EXPECT_FALSE(path_exists(marker())) << "the process ran";
}

TEST_F(HostileInput, ExecUserMinusOneOrTruncatedIsRefused) {
  start_sleeper();
  for (const char* u : {"4294967295", "4294967296", "1000:4294967295"}) {
    Output o = vessel({"exec", "-u", u, "h1", "sh", "-c", "touch /tmp/ran"});
    EXPECT_NE(o.status, 0) << u;
    EXPECT_NE(o.err.find("is out of range 0..4294967294"), std::string::npos) << u << ": " << o.err;
  }
  EXPECT_FALSE(path_exists(marker())) << "an exec ran";
  Output id = vessel({"exec", "-u", "1000:1000", "h1", "id", "-u"});
  EXPECT_EQ(id.out, "1000\n") << id.err;
}

// --- item 3: root.path through a symlink -----------------------------------------------------------

TEST_F(HostileInput, RootPathThroughASymlinkIsRefusedAndTheTargetUntouched) {
  std::string host = dir_ + "/host-dir";
  ASSERT_EQ(::mkdir(host.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(host.c_str(), (bundle_ + "/rootfs-link").c_str()), 0);
  config_["root"]["path"] = "rootfs-link";
  write_config();
  expect_create_fails("root.path \"rootfs-link\": " + bundle_ + "/rootfs-link goes through a symlink (to " + host + ")");
  struct stat st{};
  for (const char* d : {"/dev", "/proc", "/sys"}) EXPECT_NE(::lstat((host + d).c_str(), &st), 0) << d << " created";
  config_["root"]["path"] = bundle_ + "/rootfs-link/";
  write_config();
  expect_create_fails("goes through a symlink");
  EXPECT_EQ(::rmdir(host.c_str()), 0) << "the host directory is no longer empty";
}

// --- item 4: bounded, non-blocking reads ------------------------------------------------------------

TEST_F(HostileInput, ConfigThatIsAFifoOrDeviceIsRefusedAtOnce) {
  std::string config = bundle_ + "/config.json";
  ::unlink(config.c_str());
  ASSERT_EQ(::mkfifo(config.c_str(), 0600), 0);
  expect_create_fails("config.json: not a regular file", 10);
  ::unlink(config.c_str());
  ASSERT_EQ(::symlink("/dev/zero", config.c_str()), 0);
  expect_create_fails("config.json: not a regular file", 10);
}

TEST_F(HostileInput, NamespacePathThatIsAFifoIsRefusedAtOnce) {
  std::string fifo = dir_ + "/ns-fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  remove_namespace("network");
  config_["linux"]["namespaces"].push_back({{"type", "network"}, {"path", fifo}});
  write_config();
  expect_create_fails(fifo + ": not a namespace file", 10);
}

TEST_F(HostileInput, UpdateAndExecFilesThatAreFifosOrDevicesAreRefusedAtOnce) {
  start_sleeper();
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_fails({"update", "-r", fifo, "h1"}, fifo + ": not a regular file", 10);
  expect_fails({"update", "-r", "/dev/zero", "h1"}, "/dev/zero: not a regular file", 10);
  expect_fails({"exec", "--process", fifo, "h1"}, fifo + ": not a regular file", 10);
  expect_fails({"exec", "--process", "/dev/zero", "h1"}, "/dev/zero: not a regular file", 10);
  // A pipe given as an fd (a shell's `--process <(...)`) is read to its end, as runc reads it.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);  // not close-on-exec: vessel gets it under the same number
  std::string process = R"({"args":["sh","-c","echo from a pipe"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}})";
  ASSERT_EQ(::write(p[1], process.data(), process.size()), static_cast<ssize_t>(process.size()));
  ::close(p[1]);
  Output piped = vessel({"exec", "--process", "/dev/fd/" + std::to_string(p[0]), "h1"});
  ::close(p[0]);
  EXPECT_EQ(piped.status, 0) << piped.err;
  EXPECT_EQ(piped.out, "from a pipe\n");
  // A process.json larger than the limit is refused before it is read.
  std::string big = dir_ + "/big.json";
  ASSERT_EQ(::truncate(big.c_str(), 0), -1);
  { std::ofstream(big) << ""; }
  ASSERT_EQ(::truncate(big.c_str(), 100 << 20), 0);
  expect_fails({"exec", "--process", big, "h1"}, "larger than the limit", 10);
}

// --- item 6: input that would be silently changed --------------------------------------------------

TEST_F(HostileInput, EnvAndArgsThatExecveWouldTruncateAreRefusedByField) {
  set_script("touch /tmp/ran");
  auto base_env = config_["process"]["env"];
  config_["process"]["env"] = base_env;
  config_["process"]["env"].push_back("NOEQUALS");
  write_config();
  expect_create_fails("process.env[" + std::to_string(base_env.size()) + "]: \"NOEQUALS\" has no \"=\"");
  config_["process"]["env"] = base_env;
  config_["process"]["env"].push_back("=value");
  write_config();
  expect_create_fails("has an empty name");
  config_["process"]["env"] = base_env;
  config_["process"]["env"].push_back(std::string("A=b\0c", 5));
  write_config();
  expect_create_fails("contains a NUL byte");
  config_["process"]["env"] = base_env;
  config_["process"]["args"] = {"sh", "-c", std::string("touch /tmp/ran\0; echo", 21)};
  write_config();
  expect_create_fails("process.args[2]: \"touch /tmp/ran\\0; echo\" contains a NUL byte");
  config_["process"]["args"] = {std::string("tr\0ue", 5)};
  write_config();
  expect_create_fails("process.args[0]");
  EXPECT_FALSE(path_exists(marker()));
}

TEST_F(HostileInput, PreserveFdsMustBeInRange) {
  set_script("true");
  write_config();
  expect_fails({"create", "--preserve-fds", "-1", "--bundle", bundle_, "h1"}, "--preserve-fds -1: must be between 0 and");
  expect_fails({"create", "--preserve-fds", "100000000", "--bundle", bundle_, "h1"}, "--preserve-fds 100000000: must be between 0 and");
  start_sleeper();
  expect_fails({"exec", "--preserve-fds", "-5", "h1", "true"}, "--preserve-fds -5");
}

TEST_F(HostileInput, TwentyThousandAnnotationsWork) {
  nlohmann::json a = nlohmann::json::object();
  for (int i = 0; i < 20000; ++i) a["org.example.key" + std::to_string(i)] = "value-" + std::to_string(i);
  config_["annotations"] = a;
  Output o = run_script("echo ok");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "ok\n");
}

TEST_F(HostileInput, SeccompFilterOverTheKernelLimitFailsCreate) {
  nlohmann::json rules = nlohmann::json::array();
  for (int i = 0; i < 6000; ++i)
    rules.push_back({{"names", {"write"}}, {"action", "SCMP_ACT_ERRNO"}, {"args", {{{"index", 0}, {"value", 1000 + i}, {"op", "SCMP_CMP_EQ"}}}}});
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {"SCMP_ARCH_X86_64"}}, {"syscalls", rules}};
  set_script("touch /tmp/ran");
  write_config();
  expect_create_fails("BPF instructions, the kernel's limit is 4096");
  EXPECT_FALSE(path_exists(marker()));
}

TEST_F(HostileInput, ImpossibleCapabilitiesFailCreate) {
  set_script("touch /tmp/ran");
  config_["process"]["capabilities"]["effective"] = {"CAP_SYS_ADMIN"};
  config_["process"]["capabilities"]["permitted"] = {"CAP_CHOWN"};
  write_config();
  expect_create_fails("process.capabilities.effective: CAP_SYS_ADMIN is not in permitted");
  // An ambient capability outside permitted and inheritable is ignored, as by runc
  // (tests/integration/container/parity_test.cc), not an error.
  EXPECT_FALSE(path_exists(marker()));
}

TEST_F(HostileInput, ExecFailureAfterCreateIsReportedByStart) {
  // Passes create's lookup (a regular executable file) but execve refuses it.
  { std::ofstream(bundle_ + "/rootfs/bin/broken") << "\x7f" "ELF garbage"; }
  ::chmod((bundle_ + "/rootfs/bin/broken").c_str(), 0755);
  config_["process"]["args"] = {"/bin/broken"};
  write_config();
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "h1"}).status, 0);
  Output o = vessel({"start", "h1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("exec /bin/broken: exec format error"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace vessel::testing
