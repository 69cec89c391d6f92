// Bad input: one clear error line naming what was wrong, a non-zero exit,
// and nothing left behind (state, mounts, cgroups, processes).
#include <dirent.h>
#include <unistd.h>

#include <fstream>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

class BadInput : public ContainerTest {
 protected:
  // Runs `create` and expects failure with `needle` in a single error line, and no leftovers.
  void expect_create_fails(const std::string& needle, const std::string& id = "c1") {
    auto mounts = mount_points();
    Output o = vessel({"create", "--bundle", bundle_, id});
    EXPECT_NE(o.status, 0);
    EXPECT_NE(o.err.find(needle), std::string::npos) << "stderr: " << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << "one line: " << o.err;
    EXPECT_EQ(o.err.rfind("vessel: ", 0), 0u) << o.err;
    EXPECT_TRUE(state_entries().empty()) << "state left behind";
    EXPECT_EQ(mount_points(), mounts) << "mounts left behind";
    if (id.find_first_of("./") == std::string::npos) {
      EXPECT_NE(::access(("/sys/fs/cgroup/pids" + cgroup_path(id)).c_str(), F_OK), 0) << "cgroup left behind";
    }
    Output ps = run_command({"pgrep", "-f", "vessel --root " + root_});
    EXPECT_EQ(ps.out, "") << "process left behind";
  }
};

TEST_F(BadInput, MissingConfig) {
  ::unlink((bundle_ + "/config.json").c_str());
  expect_create_fails("config.json: No such file or directory");
}

TEST_F(BadInput, MalformedConfig) {
  std::ofstream(bundle_ + "/config.json") << "{\"ociVersion\": \"1.2.0\", ";
  expect_create_fails("config.json: invalid JSON at byte");
}

TEST_F(BadInput, UnknownNamespaceType) {
  config_["linux"]["namespaces"].push_back({{"type", "wormhole"}});
  write_config();
  expect_create_fails("linux.namespaces[5].type: unknown namespace type \"wormhole\"");
}

TEST_F(BadInput, RelativeRootThatDoesNotExist) {
  config_["root"]["path"] = "no-such-rootfs";
  write_config();
  expect_create_fails("root.path " + bundle_ + "/no-such-rootfs: No such file or directory");
}

TEST_F(BadInput, DuplicateId) {
  set_script("exec sleep 100");
  write_config();
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "dup"}).status, 0);
  Output o = vessel({"create", "--bundle", bundle_, "dup"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("container \"dup\" already exists"), std::string::npos) << o.err;
  EXPECT_EQ(state_entries(), std::vector<std::string>{"dup"});
  EXPECT_EQ(vessel({"delete", "-f", "dup"}).status, 0);
}

TEST_F(BadInput, IdWithSlash) {
  write_config();
  expect_create_fails("container ID \"a/b\": invalid character '/'", "a/b");
  expect_create_fails("container ID \"..\": not allowed", "..");
}

TEST_F(BadInput, WrongTypesNameTheField) {
  config_["process"]["user"]["uid"] = "root";
  write_config();
  expect_create_fails("process.user.uid: expected an unsigned integer");
}

TEST_F(BadInput, EmptyArgs) {
  config_["process"]["args"] = nlohmann::json::array();
  write_config();
  expect_create_fails("process.args: must be a non-empty array");
}

TEST_F(BadInput, UnsupportedVersion) {
  config_["ociVersion"] = "2.0.0";
  write_config();
  expect_create_fails("ociVersion: unsupported version \"2.0.0\"");
}

TEST_F(BadInput, ExecutableNotFound) {
  config_["process"]["args"] = {"no-such-binary"};
  write_config();
  expect_create_fails("exec: \"no-such-binary\": executable file not found in $PATH");
}

TEST_F(BadInput, MountDestinationMustBeAbsolute) {
  config_["mounts"].push_back({{"destination", "relative"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  write_config();
  expect_create_fails("mounts[7].destination: must be an absolute path");
}

TEST_F(BadInput, BindSourceMissing) {
  config_["mounts"].push_back({{"destination", "/x"}, {"type", "bind"}, {"source", "/no/such/dir"}, {"options", {"bind"}}});
  write_config();
  expect_create_fails("mounts[7] /x: bind source /no/such/dir: No such file or directory");
}

TEST_F(BadInput, TerminalWithoutConsoleSocket) {
  config_["process"]["terminal"] = true;
  write_config();
  expect_create_fails("process.terminal is true: pass --console-socket");
}

TEST_F(BadInput, CommandsOnMissingContainer) {
  for (auto verb : {"start", "state", "kill", "delete"}) {
    Output o = vessel({verb, "ghost"});
    EXPECT_NE(o.status, 0) << verb;
    EXPECT_NE(o.err.find("container \"ghost\" does not exist"), std::string::npos) << verb << ": " << o.err;
  }
  EXPECT_EQ(vessel({"delete", "--force", "ghost"}).status, 0) << "delete --force of nothing is fine, as in runc";
}

TEST_F(BadInput, UnknownFlag) {
  Output o = vessel({"create", "--bundel", bundle_, "c1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("--bundel"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace vessel::testing
