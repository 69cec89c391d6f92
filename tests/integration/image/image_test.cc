// The image store end to end with the real binary (root): import a busybox
// rootfs tar and a two-layer OCI layout, run them on overlayfs, delete, image rm,
// and a round trip through `podman save --format oci-archive`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fs.h"
#include "image/digest.h"
#include "integration/container/fixture.h"
#include "unit/image/tar_builder.h"

namespace vessel::image {
namespace {

using testing::Output;
using testing::run_command;
using vessel::testing::TarBuilder;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A busybox rootfs in a tar (plus `extra` files).
void busybox_tar(const std::string& path, const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  TarBuilder t(path);
  for (auto* d : {"./", "bin", "dev", "proc", "sys", "tmp", "etc"}) t.dir(d);
  t.file("bin/busybox", slurp("/bin/busybox"), 0755);
  for (auto* a : {"sh", "echo", "cat", "ls", "test", "sleep"}) t.symlink(std::string("bin/") + a, "busybox");
  t.file("etc/passwd", "root:x:0:0:root:/:/bin/sh\n");
  for (auto& [n, d] : extra) t.file(n, d);
}

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (overlayfs, containers)";
    char tmpl[] = "/tmp/vessel-image-it.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    images_ = dir_ + "/images";
    state_ = dir_ + "/state";
  }
  void TearDown() override {
    if (dir_.empty()) return;
    for (auto* id : {"t1", "t2", "t3", "t4"}) vessel({"delete", "--force", id});
    (void)remove_tree(dir_);
  }
  Output vessel(std::vector<std::string> args) {
    args.insert(args.begin(), {VESSEL_BINARY, "--root", state_, "--image-root", images_});
    return run_command(args);
  }
  bool mounted_below(const std::string& p) {
    std::ifstream m("/proc/self/mountinfo");
    std::string line;
    while (std::getline(m, line))
      if (line.find(" " + p) != std::string::npos) return true;
    return false;
  }
  // Writes an OCI layout holding one image made of these plain-tar layers.
  void oci_layout(const std::string& layout, const std::vector<std::string>& layer_tars, const std::string& ref) {
    ASSERT_TRUE(mkdir_p(layout + "/blobs/sha256").ok());
    auto put = [&](const std::string& data) {
      auto d = sha256(data);
      EXPECT_TRUE(write_file(layout + "/blobs/sha256/" + d.hex, data).ok());
      return d;
    };
    nlohmann::json layers = nlohmann::json::array(), diff_ids = nlohmann::json::array();
    for (auto& t : layer_tars) {
      auto data = slurp(t);
      auto d = put(data);
      layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", d.str()}, {"size", data.size()}});
      diff_ids.push_back(d.str());
    }
    std::string config = nlohmann::json{{"architecture", "amd64"}, {"os", "linux"},
                                        {"config", {{"Cmd", {"sh", "-c", "echo from-cmd"}}, {"WorkingDir", "/tmp"}}},
                                        {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}
                             .dump();
    auto cd = put(config);
    std::string manifest = nlohmann::json{{"schemaVersion", 2},
                                          {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                          {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd.str()}, {"size", config.size()}}},
                                          {"layers", layers}}
                               .dump();
    auto md = put(manifest);
    nlohmann::json index = {{"schemaVersion", 2},
                            {"manifests", {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"digest", md.str()},
                                            {"size", manifest.size()}, {"annotations", {{"org.opencontainers.image.ref.name", ref}}}}}}};
    ASSERT_TRUE(write_file(layout + "/index.json", index.dump()).ok());
    ASSERT_TRUE(write_file(layout + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}").ok());
  }

  std::string dir_, images_, state_;
};

TEST_F(ImageTest, ImportRootfsTarAndRun) {
  busybox_tar(dir_ + "/bb.tar");
  auto imp = vessel({"image", "import", dir_ + "/bb.tar", "--name", "bb"});
  ASSERT_EQ(imp.status, 0) << imp.err;
  auto ls = vessel({"image", "ls", "--format", "json"});
  ASSERT_EQ(ls.status, 0) << ls.err;
  auto j = nlohmann::json::parse(ls.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["names"][0], "bb:latest");
  auto ins = vessel({"image", "inspect", "bb"});
  ASSERT_EQ(ins.status, 0) << ins.err;
  EXPECT_EQ(nlohmann::json::parse(ins.out)["cmd"][0], "/bin/sh");

  auto run = vessel({"run", "--image", "bb", "--rm", "--name", "t1", "--", "sh", "-c", "echo hi; echo x > /written"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "hi\n");
  EXPECT_FALSE(path_exists(images_ + "/containers/t1"));
  EXPECT_FALSE(mounted_below(images_));
  // The layer itself was not written to.
  for (auto& e : nlohmann::json::parse(vessel({"image", "inspect", "bb"}).out)["diffIds"])
    EXPECT_FALSE(path_exists(images_ + "/layers/" + e.get<std::string>().substr(7) + "/written"));
}

TEST_F(ImageTest, WhiteoutInUpperLayerHidesFileAndDeleteCleansUp) {
  busybox_tar(dir_ + "/l1.tar", {{"etc/secret", "s"}, {"etc/kept", "k"}});
  TarBuilder(dir_ + "/l2.tar").dir("etc").file("etc/.wh.secret", "").file("etc/new", "n");
  oci_layout(dir_ + "/layout", {dir_ + "/l1.tar", dir_ + "/l2.tar"}, "localhost/two:1");
  auto imp = vessel({"image", "import", dir_ + "/layout"});
  ASSERT_EQ(imp.status, 0) << imp.err;
  EXPECT_NE(imp.out.find("localhost/two:1"), std::string::npos) << imp.out;

  auto run = vessel({"run", "--image", "localhost/two:1", "--name", "t2", "--", "sh", "-c",
                     "test -e /etc/secret && echo present || echo gone; cat /etc/kept /etc/new; pwd"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "gone\nkn/tmp\n");
  // Without --rm the bundle stays mounted until `delete`.
  EXPECT_TRUE(mounted_below(images_ + "/containers/t2/rootfs"));
  auto del = vessel({"delete", "t2"});
  EXPECT_EQ(del.status, 0) << del.err;
  EXPECT_FALSE(mounted_below(images_));
  EXPECT_FALSE(path_exists(images_ + "/containers/t2"));

  // The image's Cmd and WorkingDir apply when no command is given.
  auto run2 = vessel({"run", "--image", "localhost/two:1", "--rm", "--name", "t3"});
  EXPECT_EQ(run2.status, 0) << run2.err;
  EXPECT_EQ(run2.out, "from-cmd\n");
}

TEST_F(ImageTest, CreateStartDelete) {
  busybox_tar(dir_ + "/bb.tar");
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "bb"}).status, 0);
  auto c = vessel({"create", "--image", "bb", "t4"});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_TRUE(mounted_below(images_ + "/containers/t4/rootfs"));
  EXPECT_EQ(vessel({"start", "t4"}).status, 0);
  // In use: image rm refuses.
  EXPECT_NE(vessel({"image", "rm", "bb"}).status, 0);
  auto del = vessel({"delete", "--force", "t4"});
  EXPECT_EQ(del.status, 0) << del.err;
  EXPECT_FALSE(mounted_below(images_));
  EXPECT_FALSE(path_exists(images_ + "/containers/t4"));
}

TEST_F(ImageTest, RemoveKeepsSharedLayers) {
  busybox_tar(dir_ + "/bb.tar");
  TarBuilder(dir_ + "/l2.tar").file("etc/motd", "m");
  oci_layout(dir_ + "/layout", {dir_ + "/bb.tar", dir_ + "/l2.tar"}, "localhost/two:1");
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "bb"}).status, 0);
  ASSERT_EQ(vessel({"image", "import", dir_ + "/layout"}).status, 0);
  std::string base = images_ + "/layers/" + sha256(slurp(dir_ + "/bb.tar")).hex;
  std::string top = images_ + "/layers/" + sha256(slurp(dir_ + "/l2.tar")).hex;
  ASSERT_TRUE(path_exists(base));
  ASSERT_TRUE(path_exists(top));
  auto rm = vessel({"image", "rm", "localhost/two:1"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_TRUE(path_exists(base));  // bb still uses it
  EXPECT_FALSE(path_exists(top));
  EXPECT_TRUE(path_exists(images_ + "/blobs/sha256/" + sha256(slurp(dir_ + "/bb.tar")).hex));
  EXPECT_EQ(vessel({"image", "rm", "bb"}).status, 0);
  EXPECT_FALSE(path_exists(base));
  EXPECT_NE(vessel({"image", "inspect", "bb"}).status, 0);
}

TEST_F(ImageTest, PodmanOciArchiveRoundTrip) {
  if (run_command({"sh", "-c", "command -v podman"}).status != 0) GTEST_SKIP() << "podman is not installed";
  busybox_tar(dir_ + "/bb.tar");
  ASSERT_TRUE(write_file(dir_ + "/containers.conf", "[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n").ok());
  auto pm = [&](std::vector<std::string> args) {
    std::vector<std::string> cmd = {"env", "CONTAINERS_CONF=" + dir_ + "/containers.conf", "podman", "--root", dir_ + "/storage",
                                    "--runroot", dir_ + "/run", "--tmpdir", dir_ + "/libpod", "--storage-driver", "vfs"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return run_command(cmd, "", 120);
  };
  auto imp = pm({"import", dir_ + "/bb.tar", "localhost/vessel-busybox:test"});
  ASSERT_EQ(imp.status, 0) << imp.err;
  auto save = pm({"save", "--format", "oci-archive", "-o", dir_ + "/oci.tar", "localhost/vessel-busybox:test"});
  ASSERT_EQ(save.status, 0) << save.err;
  auto vi = vessel({"image", "import", dir_ + "/oci.tar", "--name", "rt"});
  ASSERT_EQ(vi.status, 0) << vi.err;
  auto run = vessel({"run", "--image", "rt", "--rm", "--name", "t1", "--", "echo", "hi"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "hi\n");
  // docker-archive too (podman's default save format).
  auto save2 = pm({"save", "-o", dir_ + "/docker.tar", "localhost/vessel-busybox:test"});
  ASSERT_EQ(save2.status, 0) << save2.err;
  auto vi2 = vessel({"image", "import", dir_ + "/docker.tar"});
  ASSERT_EQ(vi2.status, 0) << vi2.err;
  EXPECT_NE(vi2.out.find("localhost/vessel-busybox:test"), std::string::npos) << vi2.out;
  auto run2 = vessel({"run", "--image", "localhost/vessel-busybox:test", "--rm", "--name", "t1", "--", "echo", "hi"});
  EXPECT_EQ(run2.out, "hi\n") << run2.err;
  (void)pm({"rmi", "--all", "--force"});
  run_command({"sh", "-c", "umount -R " + dir_ + "/storage 2>/dev/null; true"});
}

}  // namespace
}  // namespace vessel::image
