#include "oci/spec.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include "oci/defaults.h"

namespace vessel::oci {
namespace {

Json base() { return Json::parse(default_spec_json(false, false, 0, 0)); }

std::string error_of(const Json& j) {
  auto r = parse_spec(j.dump());
  return r ? "" : r.error().message();
}

TEST(Spec, DefaultSpecParses) {
  auto s = parse_spec(default_spec_json(false, false, 0, 0));
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->root_path, "rootfs");
  EXPECT_TRUE(s->root_readonly);
  EXPECT_EQ(s->process->args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(s->linux_.has_namespace(NamespaceType::kNetwork));
  EXPECT_EQ(s->process->capabilities->bounding, (1ULL << 29) | (1ULL << 5) | (1ULL << 10));
  EXPECT_EQ(s->mounts.size(), 7u);
  EXPECT_EQ(s->linux_.resources.devices.size(), 1u);
  auto rootless = parse_spec(default_spec_json(true, false, 1000, 1000));
  ASSERT_TRUE(rootless) << rootless.error().message();
  EXPECT_EQ(rootless->linux_.uid_mappings[0].host_id, 1000u);
}

TEST(Spec, DefaultSpecIsRuncsHardenedIsVessels) {
  Json plain = base();
  std::vector<std::string> ns;
  for (const auto& n : plain["linux"]["namespaces"]) ns.push_back(n["type"]);
  EXPECT_EQ(ns, (std::vector<std::string>{"pid", "network", "ipc", "uts", "mount"}));
  EXPECT_FALSE(plain["linux"].contains("seccomp"));
  EXPECT_EQ(plain["process"]["capabilities"]["ambient"], plain["process"]["capabilities"]["bounding"]);
  Json hard = Json::parse(default_spec_json(false, true, 0, 0));
  EXPECT_EQ(hard["linux"]["namespaces"].back()["type"], "cgroup");
  EXPECT_TRUE(hard["linux"].contains("seccomp"));
  EXPECT_FALSE(hard["process"]["capabilities"].contains("ambient"));
  EXPECT_TRUE(parse_spec(hard.dump())) << "hardened spec parses";
}

TEST(Spec, MountOptionsBecomeFlags) {
  auto o = parse_mount_options({"rbind", "ro", "nosuid", "rslave", "size=10m", "mode=755"}, "m");
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->bind && o->recursive);
  EXPECT_EQ(o->flags, static_cast<unsigned long>(MS_RDONLY | MS_NOSUID));
  EXPECT_EQ(o->propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_EQ(o->data, "size=10m,mode=755");
  auto rw = parse_mount_options({"ro", "rw"}, "m");
  EXPECT_EQ(rw->flags, 0u);
  EXPECT_EQ(rw->clear, static_cast<unsigned long>(MS_RDONLY));
  // runc 1.1's recursive options become mount_setattr attributes.
  auto rec = parse_mount_options({"rro", "rnosuid", "rdev", "rnoatime"}, "m");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->flags, 0u);
  EXPECT_EQ(rec->rec_attr_set, static_cast<uint64_t>(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME));
  EXPECT_EQ(rec->rec_attr_clr, static_cast<uint64_t>(MOUNT_ATTR_NODEV | MOUNT_ATTR__ATIME));
  auto bad = parse_mount_options({"ridmap"}, "mounts[2].options");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "mounts[2].options[0]: mount option \"ridmap\" is not supported");
}

TEST(Spec, ErrorsNameTheField) {
  Json j = base();
  j["process"]["cwd"] = "relative";
  EXPECT_EQ(error_of(j), "process.cwd: must be an absolute path, got \"relative\"");
  j = base();
  j["linux"]["namespaces"].push_back({{"type", "pid"}});
  EXPECT_EQ(error_of(j), "linux.namespaces[5].type: duplicate namespace \"pid\"");  // after runc's five
  j = base();
  j["process"]["rlimits"][0]["type"] = "RLIMIT_FOO";
  EXPECT_EQ(error_of(j), "process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
  j = base();
  j["process"]["rlimits"][0]["soft"] = 5000;
  EXPECT_EQ(error_of(j), "process.rlimits[0]: soft limit is above the hard limit");
  j = base();
  j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1}, {"size", 1}}};
  EXPECT_EQ(error_of(j), "linux.uidMappings: mappings need a new user namespace in linux.namespaces");
  j = base();
  j["mounts"][0]["destination"] = 5;
  EXPECT_EQ(error_of(j), "mounts[0].destination: expected a string");
  j = base();
  j["hooks"] = {{"prestart", {{{"path", "rel"}}}}};
  EXPECT_EQ(error_of(j), "hooks.prestart[0].path: must be an absolute path");
  j = base();
  j["linux"]["devices"] = {{{"path", "/dev/x"}, {"type", "q"}}};
  EXPECT_EQ(error_of(j), "linux.devices[0].type: must be one of c, b, u, p, got \"q\"");
  j = base();
  j["process"]["oomScoreAdj"] = 5000;
  EXPECT_EQ(error_of(j), "process.oomScoreAdj: must be between -1000 and 1000");
  j = base();
  j["linux"]["resources"]["memory"] = {{"limit", "lots"}};
  EXPECT_EQ(error_of(j), "linux.resources.memory.limit: expected an integer");
  j = base();
  j.erase("ociVersion");
  EXPECT_EQ(error_of(j), "ociVersion: required");
  j = base();
  j["process"]["selinuxLabel"] = 7;
  EXPECT_EQ(error_of(j), "process.selinuxLabel: expected a string");
}

TEST(Spec, SecurityLabelsAreKept) {
  // Whether the host can apply them is the container layer's question (container/lsm.h).
  Json j = base();
  j["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0";
  j["process"]["apparmorProfile"] = "profile";
  j["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0";
  auto s = parse_spec(j.dump());
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->process->selinux_label, "system_u:system_r:container_t:s0");
  EXPECT_EQ(s->process->apparmor_profile, "profile");
  EXPECT_EQ(s->linux_.mount_label, "system_u:object_r:container_file_t:s0");
}

TEST(Spec, AcceptsAnyOneDotVersionAndIgnoresUnknownFields) {
  Json j = base();
  j["ociVersion"] = "1.0.2-dev";
  j["futureField"] = {{"x", 1}};
  j["process"]["futureProcessField"] = true;
  EXPECT_EQ(error_of(j), "");
}

TEST(Spec, NamespaceJoinPathsAndTimeOffsets) {
  Json j = base();
  j["linux"]["namespaces"] = {{{"type", "mount"}}, {{"type", "network"}, {"path", "/proc/1/ns/net"}}, {{"type", "time"}}};
  j["linux"]["timeOffsets"] = {{"monotonic", {{"secs", -5}, {"nanosecs", 7}}}};
  j.erase("hostname");
  auto s = parse_spec(j.dump());
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->linux_.find_namespace(NamespaceType::kNetwork)->path, "/proc/1/ns/net");
  EXPECT_EQ(s->linux_.time_offsets.at("monotonic").secs, -5);
  EXPECT_EQ(s->linux_.time_offsets.at("monotonic").nanosecs, 7u);
  j["hostname"] = "h";
  EXPECT_EQ(error_of(j), "hostname: setting a hostname needs a uts namespace in linux.namespaces");
}

}  // namespace
}  // namespace vessel::oci
