// Images on overlayfs beyond the one-page lowerdir limit of absolute layer
// paths (120 and 500 layers, through the store's short links), images without
// layers, and the image's User resolved through its own /etc/passwd and
// /etc/group; a user the image does not know leaves nothing behind.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fs.h"
#include "image/digest.h"
#include "image/overlay.h"
#include "integration/image/image_fixture.h"

namespace vessel::image {
namespace {

using namespace vessel::image::testing;
using Json = nlohmann::json;

class OverlayUserTest : public ImageFixture {
 protected:
  // Imports an image of busybox plus `n` layers, layer i adding /many/f<i>.
  void import_many(int n, const std::string& ref) {
    busybox_tar(dir_ + "/base.tar", {}, "", "root:x:0:0:root:/:/bin/sh\n", "");
    std::vector<std::string> tars = {dir_ + "/base.tar"};
    for (int i = 0; i < n; ++i) {
      std::string t = dir_ + "/l" + std::to_string(i) + ".tar";
      TarBuilder(t).dir("many").file("many/f" + std::to_string(i), std::to_string(i));
      tars.push_back(t);
    }
    oci_layout(dir_ + "/layout-" + std::to_string(n), tars, ref, Json{{"Cmd", {"sh"}}});
    auto imp = vessel({"image", "import", dir_ + "/layout-" + std::to_string(n)});
    ASSERT_EQ(imp.status, 0) << imp.err;
  }

};

TEST_F(OverlayUserTest, ImageOf120LayersSeesEveryLayer) {
  import_many(120, "localhost/many:120");
  auto c = vessel({"create", "--image", "localhost/many:120", "o1"});
  ASSERT_EQ(c.status, 0) << c.err;
  // lowerdir names the layers by their short links, not by absolute paths.
  std::string opts = mount_options(images_ + "/containers/o1/rootfs");
  ASSERT_NE(opts, "");
  EXPECT_EQ(opts.find(images_ + "/layers"), std::string::npos) << opts;
  EXPECT_EQ(dir_entries(images_ + "/l").size(), 121u);
  ASSERT_EQ(vessel({"delete", "--force", "o1"}).status, 0);

  auto run = vessel({"run", "--image", "localhost/many:120", "--rm", "--name", "o2", "--", "sh", "-c",
                     "ls /many | wc -l; cat /many/f0 /many/f119"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "120\n0119");
  EXPECT_FALSE(mounted_below(images_));

  // Removing the image removes its layers' links with them.
  auto rm = vessel({"image", "rm", "localhost/many:120"});
  ASSERT_EQ(rm.status, 0) << rm.err;
  EXPECT_TRUE(dir_entries(images_ + "/l").empty());
  EXPECT_TRUE(dir_entries(images_ + "/layers").empty());
}

TEST_F(OverlayUserTest, ImageOfOverlayfsMaximumOf500Layers) {
  import_many(499, "localhost/many:max");
  auto run = vessel({"run", "--image", "localhost/many:max", "--rm", "--name", "o1", "--", "sh", "-c",
                     "ls /many | wc -l"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "499\n");
}

TEST_F(OverlayUserTest, NoLayersMountTheStoresEmptyDirectory) {
  // No container can run without an executable, so the library is called directly.
  auto store = Store::open(images_);
  ASSERT_TRUE(store.ok()) << store.error().message();
  std::string c = dir_ + "/scratch";
  for (auto* d : {"", "/upper", "/work", "/rootfs"}) ASSERT_TRUE(mkdir_p(c + d).ok());
  auto st = mount_layers(*store, {}, c + "/upper", c + "/work", c + "/rootfs", MS_NODEV);
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_NE(mount_options(c + "/rootfs").find("lowerdir=../empty,"), std::string::npos) << mount_options(c + "/rootfs");
  EXPECT_TRUE(dir_entries(c + "/rootfs").empty());
  ASSERT_TRUE(write_file(c + "/rootfs/new", "x").ok());  // writes go to the upper dir
  EXPECT_TRUE(path_exists(c + "/upper/new"));
  EXPECT_TRUE(dir_entries(images_ + "/empty").empty());
  // The working directory is back where it was.
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_NE(std::string(cwd), images_ + "/l");
  EXPECT_EQ(::umount2((c + "/rootfs").c_str(), 0), 0);
}

TEST_F(OverlayUserTest, ConcurrentMountsShareOneLinkPerLayer) {
  auto store = Store::open(images_);
  ASSERT_TRUE(store.ok()) << store.error().message();
  // 60 layers, made by hand; the first two share their first 36 bits, so their 6-character names clash.
  std::vector<Digest> layers;
  for (int i = 0; i < 60; ++i) {
    std::string hex = sha256(std::to_string(i)).hex;
    if (i == 0) hex = "0123456789" + std::string(54, 'a');
    if (i == 1) hex = "012345678f" + std::string(54, 'a');
    layers.push_back(Digest{hex});
    ASSERT_TRUE(mkdir_p(store->layer_path(layers.back())).ok());
    ASSERT_TRUE(write_file(store->layer_path(layers.back()) + "/f" + std::to_string(i), "x").ok());
  }
  constexpr int kProcs = 6;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    std::string c = dir_ + "/c" + std::to_string(p);
    for (auto* d : {"", "/upper", "/work", "/rootfs"}) ASSERT_TRUE(mkdir_p(c + d).ok());
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto st = mount_layers(*store, layers, c + "/upper", c + "/work", c + "/rootfs", MS_NODEV);
      if (!st) (void)!::write(2, st.error().message().data(), st.error().message().size());
      ::_exit(st ? 0 : 1);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto links = dir_entries(images_ + "/l");
  EXPECT_EQ(links.size(), layers.size());
  size_t longer = 0;
  for (auto& l : links) longer += l.size() > 6;
  EXPECT_EQ(longer, 1u);  // the clash made exactly one name longer
  for (int p = 0; p < kProcs; ++p) {
    std::string rootfs = dir_ + "/c" + std::to_string(p) + "/rootfs";
    EXPECT_EQ(dir_entries(rootfs).size(), layers.size()) << rootfs;
    (void)::umount2(rootfs.c_str(), MNT_DETACH);
  }
  for (auto& d : layers) EXPECT_TRUE(remove_layer_links(*store, d).ok());
  EXPECT_TRUE(dir_entries(images_ + "/l").empty());
}

TEST_F(OverlayUserTest, LayerMissingBehindItsLinkIsNamed) {
  auto store = Store::open(images_);
  ASSERT_TRUE(store.ok()) << store.error().message();
  Digest a{sha256("a").hex}, b{sha256("b").hex};
  for (auto& d : {a, b}) ASSERT_TRUE(mkdir_p(store->layer_path(d)).ok());
  std::string c = dir_ + "/c";
  for (auto* d : {"/u1", "/w1", "/u2", "/w2", "/rootfs"}) ASSERT_TRUE(mkdir_p(c + d).ok());
  ASSERT_TRUE(mount_layers(*store, {a, b}, c + "/u1", c + "/w1", c + "/rootfs", MS_NODEV).ok());
  ASSERT_EQ(::umount2((c + "/rootfs").c_str(), 0), 0);
  ASSERT_TRUE(remove_tree(store->layer_path(b)).ok());  // its link stays behind
  auto st = mount_layers(*store, {a, b}, c + "/u2", c + "/w2", c + "/rootfs", MS_NODEV);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "layer " + b.str() + " is missing from the store");
  EXPECT_FALSE(mounted_below(c));
}

TEST_F(OverlayUserTest, ImageUserResolvedThroughTheImagesPasswdAndGroup) {
  busybox_tar(dir_ + "/bb.tar", {}, "",
              "root:x:0:0:root:/:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n",
              "root:x:0:\napp:x:1001:\nextra:x:2000:root,app\nother:x:3000:root\n");
  oci_layout(dir_ + "/layout-app", {dir_ + "/bb.tar"}, "localhost/user:app", Json{{"User", "app"}, {"Cmd", {"id"}}});
  oci_layout(dir_ + "/layout-grp", {dir_ + "/bb.tar"}, "localhost/user:grp", Json{{"User", "app:other"}, {"Cmd", {"id"}}});
  oci_layout(dir_ + "/layout-uid", {dir_ + "/bb.tar"}, "localhost/user:uid", Json{{"User", "4242:2000"}, {"Cmd", {"id"}}});
  for (auto* l : {"app", "grp", "uid"}) ASSERT_EQ(vessel({"image", "import", dir_ + "/layout-" + l}).status, 0) << l;

  auto app = vessel({"run", "--image", "localhost/user:app", "--rm", "--name", "o1"});
  ASSERT_EQ(app.status, 0) << app.err;
  EXPECT_EQ(app.out, "uid=1000(app) gid=1001(app) groups=2000(extra)\n");
  auto ids = vessel({"run", "--image", "localhost/user:app", "--rm", "--name", "o1", "--", "sh", "-c", "id -u; id -g; id -G"});
  EXPECT_EQ(ids.out, "1000\n1001\n1001 2000\n") << ids.err;

  auto grp = vessel({"run", "--image", "localhost/user:grp", "--rm", "--name", "o2"});
  ASSERT_EQ(grp.status, 0) << grp.err;
  EXPECT_EQ(grp.out, "uid=1000(app) gid=3000(other)\n");

  auto uid = vessel({"run", "--image", "localhost/user:uid", "--rm", "--name", "o3"});
  ASSERT_EQ(uid.status, 0) << uid.err;
  EXPECT_EQ(uid.out, "uid=4242 gid=2000(extra)\n");
}

TEST_F(OverlayUserTest, UnknownUserIsAClearErrorAndLeavesNothing) {
  busybox_tar(dir_ + "/bb.tar", {}, "", "root:x:0:0:root:/:/bin/sh\n", "root:x:0:\n");
  oci_layout(dir_ + "/layout", {dir_ + "/bb.tar"}, "localhost/user:ghost", Json{{"User", "ghost"}, {"Cmd", {"id"}}});
  oci_layout(dir_ + "/layout-g", {dir_ + "/bb.tar"}, "localhost/user:ghostgroup", Json{{"User", "root:ghosts"}, {"Cmd", {"id"}}});
  ASSERT_EQ(vessel({"image", "import", dir_ + "/layout"}).status, 0);
  ASSERT_EQ(vessel({"image", "import", dir_ + "/layout-g"}).status, 0);

  auto run = vessel({"run", "--image", "localhost/user:ghost", "--rm", "--name", "o1"});
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.err.find("user \"ghost\" not found in the image's /etc/passwd"), std::string::npos) << run.err;
  auto create = vessel({"create", "--image", "localhost/user:ghostgroup", "o2"});
  EXPECT_NE(create.status, 0);
  EXPECT_NE(create.err.find("group \"ghosts\" not found in the image's /etc/group"), std::string::npos) << create.err;

  EXPECT_FALSE(mounted_below(images_));
  EXPECT_TRUE(dir_entries(images_ + "/containers").empty());
  EXPECT_TRUE(dir_entries(state_).empty() || !path_exists(state_));
  EXPECT_EQ(vessel({"state", "o2"}).status == 0, false);
  // Nothing holds the images: they can go.
  EXPECT_EQ(vessel({"image", "rm", "localhost/user:ghost"}).status, 0);
  EXPECT_EQ(vessel({"image", "rm", "localhost/user:ghostgroup"}).status, 0);
}

}  // namespace
}  // namespace vessel::image
