// The image store end to end with the real binary (root): import a busybox
// rootfs tar and a two-layer OCI layout, run them on overlayfs, delete, image rm,
// a round trip through `podman save --format oci-archive`, and hostile tars.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "image/digest.h"
#include "integration/image/image_fixture.h"

namespace vessel::image {
namespace {

using namespace vessel::image::testing;

class ImageTest : public ImageFixture {};

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

TEST_F(ImageTest, ContainerdNameAnnotationNamesTheImage) {
  // containerd and `docker save` put the full name in io.containerd.image.name and a bare tag in ref.name.
  busybox_tar(dir_ + "/bb.tar");
  oci_layout(dir_ + "/layout", {dir_ + "/bb.tar"}, "latest");
  auto index = nlohmann::json::parse(slurp(dir_ + "/layout/index.json"));
  index["manifests"][0]["annotations"]["io.containerd.image.name"] = "docker.io/library/bb:1";
  ASSERT_TRUE(write_file(dir_ + "/layout/index.json", index.dump()).ok());
  auto imp = vessel({"image", "import", dir_ + "/layout"});
  ASSERT_EQ(imp.status, 0) << imp.err;
  EXPECT_NE(imp.out.find(" docker.io/library/bb:1"), std::string::npos) << imp.out;
  EXPECT_EQ(vessel({"image", "inspect", "docker.io/library/bb:1"}).status, 0);
}

TEST_F(ImageTest, PodmanOciArchiveRoundTrip) {
  if (!have_tool("podman")) GTEST_SKIP() << "podman is not installed";
  busybox_tar(dir_ + "/bb.tar");
  auto pm = [&](std::vector<std::string> args) { return podman(args); };
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
}

// `vessel image import` of hostile tars, one attack per tar: each is refused with an error naming
// the entry, and nothing is written outside the store's layer directory (nor left in the store).
TEST_F(ImageTest, HostileTarsAreRefusedOneAttackEach) {
  std::string outside = dir_ + "/outside";
  ASSERT_TRUE(mkdir_p(outside).ok());
  struct Attack {
    std::string name, entry;
    std::function<void(TarBuilder&)> make;
  };
  std::vector<Attack> attacks = {
      {"dotdot", "../../outside/dotdot", [](TarBuilder& t) { t.file("../../outside/dotdot", "x"); }},
      {"absolute", outside + "/absolute", [&](TarBuilder& t) { t.file(outside + "/absolute", "x"); }},
      {"symlink-dir", "link/symlink-dir", [&](TarBuilder& t) { t.symlink("link", outside).file("link/symlink-dir", "x"); }},
      {"symlink-abs", "etc/passwd", [](TarBuilder& t) { t.symlink("etc", "/etc").file("etc/passwd", "owned"); }},
      {"hardlink-abs", "hl", [](TarBuilder& t) { t.hardlink("hl", "/etc/shadow"); }},
      {"hardlink-dotdot", "hl2", [](TarBuilder& t) { t.hardlink("hl2", "../../outside/x"); }},
      {"hardlink-via-symlink", "hl3", [](TarBuilder& t) { t.symlink("l", "/etc").hardlink("hl3", "l/shadow"); }},
      {"chardev", "mem", [](TarBuilder& t) { t.chardev("mem", 1, 1); }},
  };
  for (auto& a : attacks) {
    std::string tar = dir_ + "/" + a.name + ".tar";
    {
      TarBuilder t(tar);
      t.dir("bin");
      a.make(t);
    }
    auto imp = vessel({"image", "import", tar, "--name", a.name});
    EXPECT_NE(imp.status, 0) << a.name;
    EXPECT_NE(imp.err.find(a.entry), std::string::npos) << a.name << ": " << imp.err;
    EXPECT_EQ(run_command({"sh", "-c", "ls -A " + outside}).out, "") << a.name;
    EXPECT_EQ(run_command({"sh", "-c", "ls -A " + images_ + "/layers " + images_ + "/tmp"}).out,
              images_ + "/layers:\n\n" + images_ + "/tmp:\n")
        << a.name;
  }
  EXPECT_EQ(slurp("/etc/shadow").find("owned"), std::string::npos);
}

}  // namespace
}  // namespace vessel::image
