// `vessel image export` against the real tools (root): skopeo and umoci read the
// OCI layout, podman loads and runs the oci-archive, vessel re-imports both to
// the same manifest digest, and bad input fails cleanly, leaving nothing behind.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.h"
#include "integration/image/image_fixture.h"

namespace vessel::image {
namespace {

using namespace vessel::image::testing;

// The name the exported index carries as org.opencontainers.image.ref.name.
constexpr const char* kRef = "localhost/vessel-export:test";

class ExportTest : public ImageFixture {
 protected:
  // Imports kRef: busybox with /etc/secret, then a layer adding /etc/motd and whiting out /etc/secret.
  // Both layers are plain tars: an export must stay valid with them.
  void import_two_layers() {
    busybox_tar(dir_ + "/l1.tar", {{"etc/secret", "s"}});
    TarBuilder(dir_ + "/l2.tar").dir("etc").file("etc/.wh.secret", "").file("etc/motd", "exported\n");
    oci_layout(dir_ + "/src-layout", {dir_ + "/l1.tar", dir_ + "/l2.tar"}, kRef);
    auto imp = vessel({"image", "import", dir_ + "/src-layout"});
    ASSERT_EQ(imp.status, 0) << imp.err;
  }
  // The manifest digest of `ref` in the store at image_root.
  std::string digest_of(const std::string& image_root, const std::string& ref) {
    auto ins = vessel_in(image_root, {"image", "inspect", ref});
    EXPECT_EQ(ins.status, 0) << ins.err;
    if (ins.status != 0) return "";
    return nlohmann::json::parse(ins.out)["digest"].get<std::string>();
  }
  // The names in a directory, sorted (to see that a failed export left nothing).
  static std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) return out;
    while (dirent* e = ::readdir(d.get()))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(ExportTest, LayoutReadBySkopeoAndUmoci) {
  if (!have_tool("skopeo")) GTEST_SKIP() << "skopeo is not installed";
  if (!have_tool("umoci")) GTEST_SKIP() << "umoci is not installed";
  import_two_layers();
  std::string layout = dir_ + "/layout";
  ASSERT_EQ(::mkdir(layout.c_str(), 0755), 0);  // an empty directory is fine
  auto exp = vessel({"image", "export", kRef, layout});
  ASSERT_EQ(exp.status, 0) << exp.err;
  EXPECT_EQ(exp.err, "");  // no progress lines without a terminal
  EXPECT_EQ(entries(layout), (std::vector<std::string>{"blobs", "index.json", "oci-layout"}));
  EXPECT_EQ(nlohmann::json::parse(*read_file(layout + "/oci-layout"))["imageLayoutVersion"], "1.0.0");
  auto index = nlohmann::json::parse(*read_file(layout + "/index.json"));
  ASSERT_EQ(index["manifests"].size(), 1u);
  EXPECT_EQ(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], kRef);
  EXPECT_EQ(index["manifests"][0]["digest"], digest_of(images_, kRef));

  auto sk = run_command({"skopeo", "inspect", std::string("oci:") + layout + ":" + kRef}, "", 120);
  ASSERT_EQ(sk.status, 0) << sk.err;
  auto info = nlohmann::json::parse(sk.out);
  EXPECT_EQ(info["Layers"].size(), 2u) << sk.out;
  EXPECT_EQ(info["Digest"], digest_of(images_, kRef));

  auto ls = run_command({"umoci", "ls", "--layout", layout});
  ASSERT_EQ(ls.status, 0) << ls.err;
  EXPECT_EQ(ls.out, std::string(kRef) + "\n");
  auto unpack = run_command({"umoci", "unpack", "--image", layout + ":" + kRef, dir_ + "/bundle"}, "", 120);
  ASSERT_EQ(unpack.status, 0) << unpack.err;
  struct stat st{};
  ASSERT_EQ(::stat((dir_ + "/bundle/rootfs/bin/busybox").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode) && (st.st_mode & 0111));
  EXPECT_EQ(*read_file(dir_ + "/bundle/rootfs/etc/motd"), "exported\n");
  EXPECT_FALSE(path_exists(dir_ + "/bundle/rootfs/etc/secret"));  // the second layer's whiteout
}

TEST_F(ExportTest, ArchiveLoadsAndRunsInPodman) {
  if (!have_tool("podman")) GTEST_SKIP() << "podman is not installed";
  busybox_tar(dir_ + "/bb.tar");
  // A short name: podman puts it under localhost/, as it does for its own short names.
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "vessel-export-bb"}).status, 0);
  std::string archive = dir_ + "/bb-oci.tar";
  auto exp = vessel({"image", "export", "vessel-export-bb", archive});  // .tar: oci-archive by default
  ASSERT_EQ(exp.status, 0) << exp.err;
  EXPECT_EQ(exp.err, "");
  struct stat st{};
  ASSERT_EQ(::stat(archive.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));

  auto load = podman({"load", "-i", archive});
  ASSERT_EQ(load.status, 0) << load.err;
  EXPECT_NE(load.out.find("localhost/vessel-export-bb:latest"), std::string::npos) << load.out;
  auto images = podman({"images", "--format", "{{.Repository}}:{{.Tag}}"});
  EXPECT_NE(images.out.find("localhost/vessel-export-bb:latest"), std::string::npos) << images.out;
  // The image is what is under test, not the runtime: crun refuses hosts with hybrid cgroups
  // (as this one), so runc runs it when installed.
  std::vector<std::string> run = {"run", "--rm"};
  if (have_tool("runc")) run.insert(run.begin(), {"--runtime", "runc"});
  run.insert(run.end(), {"localhost/vessel-export-bb:latest", "/bin/busybox", "echo", "hi"});
  auto out = podman(run);
  EXPECT_EQ(out.status, 0) << out.err;
  EXPECT_EQ(out.out, "hi\n");
  auto rmi = podman({"rmi", "localhost/vessel-export-bb:latest"});
  EXPECT_EQ(rmi.status, 0) << rmi.err;
}

TEST_F(ExportTest, ReimportGivesTheSameManifest) {
  import_two_layers();
  std::string digest = digest_of(images_, kRef);
  ASSERT_FALSE(digest.empty());
  ASSERT_EQ(vessel({"image", "export", kRef, dir_ + "/rt.tar"}).status, 0);
  ASSERT_EQ(vessel({"image", "export", "--format", "oci", kRef, dir_ + "/rt-layout"}).status, 0);
  int n = 0;
  for (auto* src : {"/rt.tar", "/rt-layout"}) {
    std::string store = dir_ + "/images" + std::to_string(++n);
    auto imp = vessel_in(store, {"image", "import", dir_ + src});
    ASSERT_EQ(imp.status, 0) << src << ": " << imp.err;
    EXPECT_EQ(imp.err, "") << src;  // no progress lines without a terminal
    EXPECT_EQ(imp.out, digest + " " + kRef + "\n") << src;
    EXPECT_EQ(digest_of(store, kRef), digest) << src;
    auto run = vessel_in(store, {"run", "--image", kRef, "--rm", "--name", "t1", "--", "sh", "-c",
                                 "cat /etc/motd; test -e /etc/secret && echo present || echo gone"});
    EXPECT_EQ(run.status, 0) << run.err;
    EXPECT_EQ(run.out, "exported\ngone\n") << src;
    EXPECT_FALSE(mounted_below(store));
  }
  // By digest too: the name comes along.
  auto by_digest = vessel({"image", "export", digest, dir_ + "/by-digest.tar"});
  ASSERT_EQ(by_digest.status, 0) << by_digest.err;
  auto imp = vessel_in(dir_ + "/images9", {"image", "import", dir_ + "/by-digest.tar"});
  EXPECT_EQ(imp.out, digest + " " + kRef + "\n");
}

TEST_F(ExportTest, ProgressOnATerminal) {
  if (!have_tool("script")) GTEST_SKIP() << "script (util-linux) is not installed";
  busybox_tar(dir_ + "/bb.tar");
  // script(1) gives vessel a terminal: then import and export report each blob and layer.
  std::string v = std::string(VESSEL_BINARY) + " --root " + state_ + " --image-root " + images_;
  auto out = run_command({"script", "-qec",
                          v + " image import " + dir_ + "/bb.tar --name bb && " + v + " image export bb " + dir_ + "/bb-oci.tar",
                          "/dev/null"});
  ASSERT_EQ(out.status, 0) << out.out << out.err;
  EXPECT_NE(out.out.find("Copying rootfs tarball"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("Unpacking layer"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("Copying config"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("Copying blob"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("Writing manifest to image destination"), std::string::npos) << out.out;
}

TEST_F(ExportTest, BadInputFailsAndLeavesNothing) {
  busybox_tar(dir_ + "/bb.tar");
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "bb"}).status, 0);
  ASSERT_EQ(::mkdir((dir_ + "/full").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(dir_ + "/full/keep", "k").ok());
  auto before = entries(dir_);

  auto unknown = vessel({"image", "export", "no-such-image", dir_ + "/out.tar"});
  EXPECT_NE(unknown.status, 0);
  EXPECT_NE(unknown.err.find("image \"no-such-image\" not found"), std::string::npos) << unknown.err;

  auto full = vessel({"image", "export", "bb", dir_ + "/full"});
  EXPECT_NE(full.status, 0);
  EXPECT_NE(full.err.find(dir_ + "/full"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("not empty"), std::string::npos) << full.err;
  EXPECT_EQ(entries(dir_ + "/full"), std::vector<std::string>{"keep"});

  auto dir_as_archive = vessel({"image", "export", "--format", "oci-archive", "bb", dir_ + "/full"});
  EXPECT_NE(dir_as_archive.status, 0);
  EXPECT_NE(dir_as_archive.err.find("is a directory"), std::string::npos) << dir_as_archive.err;

  auto no_parent = vessel({"image", "export", "bb", dir_ + "/missing/out.tar"});
  EXPECT_NE(no_parent.status, 0);
  EXPECT_NE(no_parent.err.find(dir_ + "/missing"), std::string::npos) << no_parent.err;

  auto bad_format = vessel({"image", "export", "--format", "docker", "bb", dir_ + "/out"});
  EXPECT_NE(bad_format.status, 0);

  EXPECT_EQ(entries(dir_), before);  // no output, no temporary files
  EXPECT_EQ(entries(images_ + "/tmp"), std::vector<std::string>{});
}

}  // namespace
}  // namespace vessel::image
