// What config.json asks for, checked from inside a running busybox container.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class Config : public ContainerTest {
 protected:
  // Runs `script` and expects success, returning stdout.
  std::string out_of(const std::string& script) {
    Output o = run_script(script);
    EXPECT_EQ(o.status, 0) << "stderr: " << o.err << "\nstdout: " << o.out;
    return o.out;
  }
};

TEST_F(Config, UserNamespaceMapsIds) {
  config_["linux"]["namespaces"].push_back({{"type", "user"}});
  config_["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  config_["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  // The rootfs must be usable by the mapped root.
  run_command({"chown", "-R", "100000:100000", bundle_ + "/rootfs"});
  ::chmod(dir_.c_str(), 0755);  // the mapped root must reach the bundle
  std::string out = out_of("cat /proc/self/uid_map /proc/self/gid_map; id -u");
  EXPECT_NE(out.find("0     100000      65536"), std::string::npos) << out;
  EXPECT_NE(out.find("\n0\n"), std::string::npos) << out;
}

TEST_F(Config, UtsHostnameAndDomainname) {
  config_["hostname"] = "box-one";
  config_["domainname"] = "example.test";
  std::string out = out_of("hostname; cat /proc/sys/kernel/domainname");
  EXPECT_EQ(out, "box-one\nexample.test\n");
}

// The shell is PID 1 and, expanding the glob itself, is the only process in /proc.
TEST_F(Config, PidNamespaceAndProc) { EXPECT_EQ(out_of("echo $$; set -- /proc/[0-9]*; echo $# $1"), "1\n1 /proc/1\n"); }

TEST_F(Config, CgroupNamespaceShowsRoot) {
  // `spec` writes runc's namespaces, without a cgroup one (`spec --hardened` has it).
  config_["linux"]["namespaces"].push_back({{"type", "cgroup"}});
  std::string out = out_of("cat /proc/self/cgroup");
  EXPECT_NE(out.find(":memory:/\n"), std::string::npos) << out;
}

TEST_F(Config, TimeNamespaceOffsets) {
  config_["linux"]["namespaces"].push_back({{"type", "time"}});
  config_["linux"]["timeOffsets"] = {{"boottime", {{"secs", 86400 * 400}, {"nanosecs", 0}}}};
  std::string out = out_of("cut -d. -f1 /proc/uptime");
  EXPECT_GT(std::stol(out), 86400L * 400) << out;
}

TEST_F(Config, JoinsANetworkNamespaceByPath) {
  set_script("exec sleep 1000");
  write_config();
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "owner"}).status, 0);
  int pid = Json::parse(vessel({"state", "owner"}).out)["pid"];
  std::string netns = "/proc/" + std::to_string(pid) + "/ns/net";
  for (auto& ns : config_["linux"]["namespaces"])
    if (ns["type"] == "network") ns["path"] = netns;
  std::string expect = run_command({"readlink", netns}).out;
  std::string out = out_of("readlink /proc/self/ns/net");
  EXPECT_EQ(out, expect);
}

TEST_F(Config, ReadonlyRootAndReadonlyPaths) {
  config_["root"]["readonly"] = true;
  std::string out = out_of("touch /x 2>/dev/null && echo root-writable; echo 1 > /proc/sys/kernel/ostype 2>/dev/null && echo sys-writable; touch /dev/shm/ok && echo shm-ok");
  EXPECT_EQ(out, "shm-ok\n");
}

TEST_F(Config, RootfsPropagation) {
  // rootfsPropagation applies to the container's mount tree: "/" is shared (tagged in mountinfo) or not.
  config_["linux"]["rootfsPropagation"] = "rshared";
  std::string shared = out_of("awk '$5 == \"/\"' /proc/self/mountinfo");
  EXPECT_NE(shared.find("shared:"), std::string::npos) << shared;
  config_["linux"]["rootfsPropagation"] = "rprivate";
  Output priv = run_script("awk '$5 == \"/\"' /proc/self/mountinfo", "c2");
  EXPECT_EQ(priv.status, 0) << priv.err;
  EXPECT_EQ(priv.out.find("shared:"), std::string::npos) << priv.out;
  EXPECT_EQ(priv.out.find("master:"), std::string::npos) << priv.out;
}

TEST_F(Config, MaskedPaths) {
  std::string out = out_of("wc -c < /proc/keys; ls /proc/acpi 2>/dev/null | wc -l; ls /sys/firmware | wc -l");
  EXPECT_EQ(out, "0\n0\n0\n");
}

TEST_F(Config, MountsInOrderWithOptions) {
  std::string host_dir = dir_ + "/shared";
  ::mkdir(host_dir.c_str(), 0755);
  std::ofstream(host_dir + "/hello") << "from host\n";
  config_["mounts"].push_back({{"destination", "/data/ro"}, {"type", "bind"}, {"source", host_dir}, {"options", {"rbind", "ro"}}});
  config_["mounts"].push_back({{"destination", "/data/rw"}, {"type", "none"}, {"source", host_dir}, {"options", {"bind", "rw"}}});
  config_["mounts"].push_back({{"destination", "/scratch"}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", {"nosuid", "size=1m", "mode=700"}}});
  config_["mounts"].push_back({{"destination", "/scratch/inner"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  std::string out = out_of(
      "cat /data/ro/hello; touch /data/ro/x 2>/dev/null || echo ro-refused; echo w > /data/rw/written;"
      "stat -c %a /scratch; grep ' /scratch ' /proc/mounts | grep -c nosuid; grep -c ' /scratch/inner ' /proc/mounts");
  EXPECT_EQ(out, "from host\nro-refused\n700\n1\n1\n");
  std::ifstream w(host_dir + "/written");
  std::string line;
  std::getline(w, line);
  EXPECT_EQ(line, "w");
}

TEST_F(Config, DefaultAndConfiguredDevices) {
  config_["linux"]["devices"] = {{{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"fileMode", 0640}, {"uid", 0}, {"gid", 0}}};
  std::string out = out_of(
      "for d in null zero full random urandom tty fuse; do stat -c '%n %t:%T %a' /dev/$d; done;"
      "for l in fd stdin ptmx; do readlink /dev/$l; done; head -c 4 /dev/zero | wc -c");
  EXPECT_NE(out.find("/dev/null 1:3 666"), std::string::npos) << out;
  EXPECT_NE(out.find("/dev/tty 5:0 666"), std::string::npos) << out;
  EXPECT_NE(out.find("/dev/fuse a:e5 640"), std::string::npos) << out;
  EXPECT_NE(out.find("/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n4\n"), std::string::npos) << out;
}

TEST_F(Config, Sysctl) {
  config_["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}, {"kernel.msgmax", "4242"}};
  EXPECT_EQ(out_of("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"), "1\n4242\n");
}

TEST_F(Config, ProcessUserEnvCwdUmask) {
  config_["process"]["user"] = {{"uid", 1234}, {"gid", 5678}, {"additionalGids", {11, 12}}, {"umask", 077}};
  config_["process"]["env"].push_back("GREETING=hi there");
  config_["process"]["cwd"] = "/tmp";
  std::string out = out_of("id -u; id -g; id -G; echo $GREETING; pwd; umask");
  EXPECT_EQ(out, "1234\n5678\n5678 11 12\nhi there\n/tmp\n0077\n");
}

TEST_F(Config, CapabilitiesAllFiveSets) {
  config_["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  config_["process"]["capabilities"] = {
      {"bounding", {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"}},
      {"effective", {"CAP_KILL", "CAP_CHOWN"}},
      {"permitted", {"CAP_KILL", "CAP_CHOWN"}},
      {"inheritable", {"CAP_KILL"}},
      {"ambient", {"CAP_KILL"}}};
  std::string out = out_of("grep ^Cap /proc/self/status");
  // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10
  EXPECT_NE(out.find("CapInh:\t0000000000000020"), std::string::npos) << out;
  EXPECT_NE(out.find("CapBnd:\t0000000000000421"), std::string::npos) << out;
  EXPECT_NE(out.find("CapAmb:\t0000000000000020"), std::string::npos) << out;
  // A non-root process keeps only its ambient set across exec.
  EXPECT_NE(out.find("CapPrm:\t0000000000000020"), std::string::npos) << out;
  EXPECT_NE(out.find("CapEff:\t0000000000000020"), std::string::npos) << out;
}

TEST_F(Config, InheritableCapsEmptyUnlessAsked) {
  std::string out = out_of("grep ^CapInh /proc/self/status");
  EXPECT_EQ(out, "CapInh:\t0000000000000000\n");
}

TEST_F(Config, RlimitsNoNewPrivsOomScore) {
  config_["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 321}, {"hard", 654}},
                                   {{"type", "RLIMIT_NPROC"}, {"soft", 100}, {"hard", 200}}};
  config_["process"]["noNewPrivileges"] = true;
  config_["process"]["oomScoreAdj"] = 123;
  std::string out = out_of("ulimit -n; ulimit -Hn; ulimit -u; grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj");
  EXPECT_EQ(out, "321\n654\n100\nNoNewPrivs:\t1\n123\n");
}

TEST_F(Config, HooksRunWithStateOnStdin) {
  std::string log = dir_ + "/hooks.log";
  std::string hook = dir_ + "/hook.sh";
  std::ofstream(hook) << "#!/bin/sh\necho \"$1 $(cat)\" >> " << log << "\n";
  ::chmod(hook.c_str(), 0755);
  auto h = [&](const char* kind) { return Json::array({{{"path", hook}, {"args", {"hook.sh", kind}}, {"timeout", 5}}}); };
  for (const char* kind : {"prestart", "createRuntime", "poststart", "poststop"}) config_["hooks"][kind] = h(kind);
  // createContainer and startContainer run in the container: their path is inside it (busybox sh).
  config_["hooks"]["createContainer"] = {{{"path", hook}, {"args", {"hook.sh", "createContainer"}}}};
  config_["hooks"]["startContainer"] = {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo startContainer > /dev/shm/started"}}}};
  std::string out = out_of("cat /dev/shm/started");
  EXPECT_EQ(out, "startContainer\n");
  std::ifstream f(log);
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 5u);
  const char* order[] = {"prestart", "createRuntime", "createContainer", "poststart", "poststop"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(lines[i].substr(0, lines[i].find(' ')), order[i]);
    Json st = Json::parse(lines[i].substr(lines[i].find(' ') + 1));
    EXPECT_EQ(st["id"], "c1");
    if (i < 4) {
      EXPECT_GT(st["pid"].get<int>(), 0) << lines[i];
    }
  }
  EXPECT_EQ(Json::parse(lines[0].substr(9))["status"], "creating");
}

TEST_F(Config, FailingHookFailsCreateAndCleansUp) {
  config_["hooks"]["createRuntime"] = {{{"path", "/bin/false"}}};
  write_config();
  Output o = vessel({"create", "--bundle", bundle_, "c1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("error running createRuntime hook #0: /bin/false: exited with status 1"), std::string::npos) << o.err;
  EXPECT_TRUE(state_entries().empty());
}

TEST_F(Config, HookTimeoutKillsIt) {
  config_["hooks"]["prestart"] = {{{"path", "/bin/sleep"}, {"args", {"sleep", "30"}}, {"timeout", 1}}};
  write_config();
  Output o = vessel({"create", "--bundle", bundle_, "c1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("timed out after 1s"), std::string::npos) << o.err;
}

TEST_F(Config, TerminalThroughConsoleSocket) {
  std::string sock_path = dir_ + "/console.sock";
  int srv = listen_unix(sock_path);
  ASSERT_GE(srv, 0);
  config_["process"]["terminal"] = true;
  set_script("tty; test -t 0 && echo is-a-tty; sleep 0.2");
  write_config();
  int master = -1;
  std::thread acceptor([&] { master = accept_fd(srv); });
  Output o = vessel({"create", "--bundle", bundle_, "--console-socket", sock_path, "c1"});
  acceptor.join();
  ::close(srv);
  ASSERT_EQ(o.status, 0) << o.err;
  ASSERT_GE(master, 0);
  ASSERT_EQ(vessel({"start", "c1"}).status, 0);
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = ::read(master, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(master);
  EXPECT_NE(got.find("/dev/pts/0"), std::string::npos) << got;
  EXPECT_NE(got.find("is-a-tty"), std::string::npos) << got;
}

TEST_F(Config, PreserveFds) {
  set_script("cat <&3");
  write_config();
  std::string f = dir_ + "/passed";
  std::ofstream(f) << "through fd 3\n";
  Output o = run_command({"sh", "-c", std::string(VESSEL_BINARY) + " --root " + root_ + " run --preserve-fds 1 --bundle " + bundle_ + " c1 3<" + f});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "through fd 3\n");
}

TEST_F(Config, NoPivotUsesChroot) {
  set_script("echo ok");
  write_config();
  Output o = vessel({"run", "--no-pivot", "--bundle", bundle_, "c1"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "ok\n");
}

TEST_F(Config, AnnotationsInState) {
  config_["annotations"] = {{"org.example.key", "value"}};
  set_script("exec sleep 100");
  write_config();
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "c1"}).status, 0);
  EXPECT_EQ(Json::parse(vessel({"state", "c1"}).out)["annotations"]["org.example.key"], "value");
}

TEST_F(Config, CgroupLimitsApplied) {
  config_["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  config_["linux"]["resources"]["pids"] = {{"limit", 50}};
  std::string out = out_of("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max");
  EXPECT_EQ(out, std::to_string(64 << 20) + "\n50\n");
}

}  // namespace
}  // namespace vessel::testing
