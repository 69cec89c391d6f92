// runc parity (issue 17, "Mounts and devices"): each test passes against runc too
// (VESSEL=runc), unless it says why not.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class ParityMounts : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    // runc spec's ambient capabilities are not what these tests are about.
    config_["process"]["capabilities"].erase("ambient");
  }
  void add_caps(std::initializer_list<const char*> caps) {
    for (const char* c : caps)
      for (const char* set : {"bounding", "effective", "permitted"}) config_["process"]["capabilities"][set].push_back(c);
  }
  void link_applet(const char* name) { ::symlink("busybox", (bundle_ + "/rootfs/bin/" + name).c_str()); }
  Json& mount_at(const std::string& dest) {
    for (auto& m : config_["mounts"])
      if (m["destination"] == dest) return m;
    ADD_FAILURE() << "no mount at " << dest;
    static Json none;
    return none;
  }
};

// Security: a node of linux.devices is created, but access follows linux.resources.devices
// only: under a deny-all, /dev/kmsg listed in linux.devices stays unusable.
TEST_F(ParityMounts, LinuxDevicesGrantNoCgroupAccess) {
  config_["linux"]["resources"]["devices"] = {{{"allow", false}, {"access", "rwm"}}};
  config_["linux"]["devices"] = {{{"path", "/dev/kmsg"}, {"type", "c"}, {"major", 1}, {"minor", 11},
                                  {"fileMode", 0666}, {"uid", 0}, {"gid", 0}}};
  Output o = run_script(
      "test -c /dev/kmsg && echo node; echo x > /dev/kmsg 2>/dev/null; echo w=$?;"
      "head -c 1 /dev/kmsg >/dev/null 2>&1; echo r=$?; echo ok > /dev/null && echo null-ok");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "node\nw=1\nr=1\nnull-ok\n") << o.err;
}

// Device rules in order, with letters other than r, w and m ignored ("rwa" is "rw"), as runc.
TEST_F(ParityMounts, DeviceAccessRwaIsAccepted) {
  config_["linux"]["resources"]["devices"] = {{{"allow", false}, {"access", "rwm"}},
                                               {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwa"}}};
  Output o = run_script("echo x > /dev/null && echo ok");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "ok\n");
}

// `update -r` with the config's resources (devices included, "rwa" too) succeeds and leaves
// the device rules alone, as runc does: /dev/null stays usable.
TEST_F(ParityMounts, UpdateWithDeviceRulesLeavesDevicesAlone) {
  config_["linux"]["resources"]["devices"] = {{{"allow", false}, {"access", "rwm"}}};
  set_script("exec sleep 1000");
  write_config();
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0);
  std::string res = dir_ + "/resources.json";
  std::ofstream(res) << R"({"devices": [{"allow": false, "access": "rwa"}], "pids": {"limit": 500}})";
  Output u = vessel({"update", "-r", res, "c1"});
  EXPECT_EQ(u.status, 0) << u.err;
  Output e = vessel({"exec", "c1", "sh", "-c", "echo x > /dev/null && echo null-ok"});
  EXPECT_EQ(e.out, "null-ok\n") << e.err;
}

// Security: with --no-pivot the host's procfs stays in the container's mount namespace; it
// must not let a user namespace made inside mount a fresh, unmasked procfs.
TEST_F(ParityMounts, NoPivotHidesTheHostsProcfs) {
  config_["linux"].erase("seccomp");
  config_["root"]["readonly"] = false;
  add_caps({"CAP_SYS_ADMIN", "CAP_SETFCAP", "CAP_SETUID", "CAP_SETGID"});
  link_applet("unshare");
  std::string script =
      "mkdir -p /tmp/p; unshare -U -r -m -p -f sh -c 'mount -t proc proc /tmp/p && echo MOUNTED' 2>/dev/null;"
      "echo done";
  set_script(script);
  write_config();
  Output o = vessel({"run", "--no-pivot", "--bundle", bundle_, "np"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "done\n") << "a fresh procfs was mounted: " << o.err;
  // The same with pivot_root, for comparison.
  Output p = run_script(script, "pv");
  EXPECT_EQ(p.out, "done\n") << p.err;
}

// procfs and sysfs go on an ordinary directory: a symlink at /proc or /sys in the image is refused.
TEST_F(ParityMounts, SymlinkedProcOrSysIsRefused) {
  for (const char* d : {"proc", "sys"}) {
    std::string path = bundle_ + "/rootfs/" + d;
    ::rmdir(path.c_str());
    ::symlink("tmp", path.c_str());
    auto before = mount_points();
    Output o = run_script("true", std::string("c-") + d);
    EXPECT_NE(o.status, 0) << d << " through a symlink was mounted";
    EXPECT_NE(o.err.find("ordinary directory"), std::string::npos) << o.err;
    EXPECT_EQ(mount_points(), before);
    ::unlink(path.c_str());
    ::mkdir(path.c_str(), 0755);
  }
}

// A read-only /dev (and tmpfs) is made read-only after its nodes and the mounts below it.
TEST_F(ParityMounts, ReadOnlyDevAndTmpfs) {
  mount_at("/dev")["options"].push_back("ro");
  config_["mounts"].push_back({{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", {"ro"}}});
  Output o = run_script(
      "test -c /dev/null && test -d /dev/pts && echo nodes; touch /dev/x 2>/dev/null || echo dev-ro;"
      "touch /tmp/x 2>/dev/null || echo tmp-ro; grep -c ' /dev tmpfs ro' /proc/mounts");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "nodes\ndev-ro\ntmp-ro\n1\n") << o.err;
}

// runc 1.1's recursive options: "rro" makes the mounts under a bind read-only too ("ro" does not).
TEST_F(ParityMounts, RecursiveMountOptions) {
  std::string src = dir_ + "/tree";
  ::mkdir(src.c_str(), 0755);
  ::mkdir((src + "/sub").c_str(), 0755);
  ASSERT_EQ(::mount("tmpfs", (src + "/sub").c_str(), "tmpfs", 0, "size=1m"), 0);
  config_["mounts"].push_back({{"destination", "/rro"}, {"type", "bind"}, {"source", src}, {"options", {"rbind", "rro", "rnosuid"}}});
  config_["mounts"].push_back({{"destination", "/ro"}, {"type", "bind"}, {"source", src}, {"options", {"rbind", "ro"}}});
  Output o = run_script(
      "touch /rro/sub/x 2>/dev/null || echo rro-sub-ro; touch /rro/x 2>/dev/null || echo rro-ro;"
      "touch /ro/sub/y && echo ro-sub-rw; grep ' /rro/sub ' /proc/mounts | grep -c 'ro,nosuid'");
  ::umount2((src + "/sub").c_str(), MNT_DETACH);
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "rro-sub-ro\nrro-ro\nro-sub-rw\n1\n") << o.err;
}

// rootfsPropagation "unbindable" is given to the container's "/" after the rootfs is bound.
TEST_F(ParityMounts, RootfsPropagationUnbindable) {
  if (testing_peer()) GTEST_SKIP() << "runc 1.1.5 sets it before binding the rootfs and fails (fixed in runc 1.2)";
  config_["linux"]["rootfsPropagation"] = "unbindable";
  Output o = run_script("awk '$5 == \"/\"' /proc/self/mountinfo | grep -c unbindable");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "1\n") << o.err;
}

// With a user namespace, bind sources are opened with the runtime's credentials: a source
// under a directory the container's root cannot search is still bound (runc 1.1).
TEST_F(ParityMounts, BindSourceUnderADirectoryTheContainerCannotSearch) {
  config_["linux"]["namespaces"].push_back({{"type", "user"}});
  config_["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 230000}, {"size", 65536}}};
  config_["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 230000}, {"size", 65536}}};
  run_command({"chown", "-R", "230000:230000", bundle_ + "/rootfs"});
  ::chmod(dir_.c_str(), 0755);
  std::string secret = dir_ + "/secret";
  ::mkdir(secret.c_str(), 0700);
  ::mkdir((secret + "/sub").c_str(), 0755);
  std::ofstream(secret + "/sub/f") << "through the fd\n";
  ::chmod((secret + "/sub/f").c_str(), 0644);
  config_["mounts"].push_back({{"destination", "/mnt"}, {"type", "bind"}, {"source", secret + "/sub"}, {"options", {"bind"}}});
  Output o = run_script("cat /mnt/f");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "through the fd\n");
}

// SELinux labels and AppArmor profiles on a host without them: refused, naming the field
// (runc 1.1.5 refuses them too: "selinux label is specified in config, but selinux is disabled",
// "unable to apply apparmor profile"), rather than silently running unconfined.
TEST_F(ParityMounts, SecurityLabelsWithoutTheLsmAreRefused) {
  bool selinux = ::access("/sys/fs/selinux/enforce", F_OK) == 0;
  std::ifstream aa("/sys/module/apparmor/parameters/enabled");
  std::string aa_on;
  aa >> aa_on;
  if (selinux || aa_on == "Y") GTEST_SKIP() << "this host has SELinux or AppArmor";
  struct Case {
    const char* field;
    std::function<void(Json&)> set;
  } cases[] = {
      {"process.selinuxLabel", [](Json& c) { c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"; }},
      {"linux.mountLabel", [](Json& c) { c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0"; }},
      {"process.apparmorProfile", [](Json& c) { c["process"]["apparmorProfile"] = "vessel-test"; }},
  };
  int n = 0;
  for (auto& c : cases) {
    Json saved = config_;
    c.set(config_);
    auto before = mount_points();
    Output o = run_script("echo ran", "l" + std::to_string(n++));
    EXPECT_NE(o.status, 0) << c.field;
    EXPECT_EQ(o.out, "") << c.field;
    if (!testing_peer()) {
      EXPECT_NE(o.err.find(c.field), std::string::npos) << o.err;
    }
    EXPECT_EQ(mount_points(), before);
    config_ = saved;
  }
}

}  // namespace
}  // namespace vessel::testing
