// Image bundles belong to the --root of their container (issue #11, item 1): `delete`
// of the same ID in another root leaves a running image container's bundle, overlay
// and data alone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "integration/image/image_fixture.h"

namespace vessel::image {
namespace {

using namespace vessel::image::testing;

class BundleOwner : public ImageFixture {
 protected:
  Output vessel_root(const std::string& root, std::vector<std::string> args) {
    args.insert(args.begin(), {VESSEL_BINARY, "--root", root, "--image-root", images_});
    return run_command(args, "", 120);
  }
};

TEST_F(BundleOwner, DeleteInAnotherRootLeavesTheBundleAlone) {
  busybox_tar(dir_ + "/bb.tar");
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "bb"}).status, 0);
  auto run = vessel({"run", "--image", "bb", "-d", "--name", "o1", "--", "sh", "-c",
                     "echo precious > /data; exec sleep 1000"});
  ASSERT_EQ(run.status, 0) << run.err;
  std::string bundle = images_ + "/containers/o1";
  auto image_json = nlohmann::json::parse(slurp(bundle + "/image.json"));
  EXPECT_EQ(image_json["root"], state_);
  for (int i = 0; i < 200 && !path_exists(bundle + "/upper/data"); ++i) ::usleep(10000);
  ASSERT_TRUE(path_exists(bundle + "/upper/data"));

  std::string other = dir_ + "/other-root";
  auto del = vessel_root(other, {"delete", "o1"});
  EXPECT_NE(del.status, 0) << "no container o1 in the other root";
  EXPECT_NE(del.err.find("does not exist"), std::string::npos) << del.err;
  auto force = vessel_root(other, {"delete", "--force", "o1"});
  EXPECT_EQ(force.status, 0) << force.err;  // as runc: --force on a missing container is fine

  EXPECT_TRUE(mounted_below(bundle + "/rootfs")) << "the other root's delete unmounted the overlay";
  EXPECT_EQ(slurp(bundle + "/upper/data"), "precious\n") << "the other root's delete removed the data";
  auto st = vessel({"state", "o1"});
  ASSERT_EQ(st.status, 0) << st.err;
  EXPECT_EQ(nlohmann::json::parse(st.out)["status"], "running");

  // A create of the same ID in the other root is refused, and leaves the bundle too.
  auto create = vessel_root(other, {"create", "--image", "bb", "o1"});
  EXPECT_NE(create.status, 0);
  EXPECT_TRUE(mounted_below(bundle + "/rootfs"));

  // Its own root's delete removes it all.
  auto own = vessel({"delete", "--force", "o1"});
  EXPECT_EQ(own.status, 0) << own.err;
  EXPECT_FALSE(path_exists(bundle));
  EXPECT_FALSE(mounted_below(images_));
}

}  // namespace
}  // namespace vessel::image
