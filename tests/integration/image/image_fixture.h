// Shared fixture of the image integration tests: a temp dir with a private
// state root and image store for the real vessel binary, busybox image inputs
// (a rootfs tar, an OCI layout) and a podman confined to the temp dir.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "image/digest.h"
#include "integration/container/fixture.h"
#include "unit/image/tar_builder.h"

namespace vessel::image::testing {

using vessel::testing::Output;
using vessel::testing::run_command;
using vessel::testing::TarBuilder;

using vessel::testing::slurp;

// True when `tool` is on PATH.
inline bool have_tool(const std::string& tool) { return run_command({"sh", "-c", "command -v " + tool}).status == 0; }

inline constexpr const char* kBusyboxPasswd = "root:x:0:0:root:/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n";
inline constexpr const char* kBusyboxGroup = "root:x:0:\napp:x:1000:\n";

// A busybox rootfs in a tar (plus `extra` files); `filter` "gzip" or "zstd" compresses it.
// /etc/passwd and /etc/group hold `passwd` and `group` ("" leaves the file out).
inline void busybox_tar(const std::string& path, const std::vector<std::pair<std::string, std::string>>& extra = {},
                        const std::string& filter = "", const std::string& passwd = kBusyboxPasswd,
                        const std::string& group = kBusyboxGroup) {
  TarBuilder t(path, filter);
  for (auto* d : {"./", "bin", "dev", "proc", "sys", "tmp", "etc"}) t.dir(d);
  t.file("bin/busybox", slurp("/bin/busybox"), 0755);
  for (auto* a : {"sh", "echo", "cat", "ls", "test", "sleep", "mkdir", "rm", "pwd", "id", "stat", "wc"})
    t.symlink(std::string("bin/") + a, "busybox");
  if (!passwd.empty()) t.file("etc/passwd", passwd);
  if (!group.empty()) t.file("etc/group", group);
  for (auto& [n, d] : extra) t.file(n, d);
}

// The names in a directory (none when it does not exist).
inline std::vector<std::string> dir_entries(const std::string& path) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string n = e->d_name; n != "." && n != "..") out.push_back(n);
    ::closedir(d);
  }
  return out;
}

class ImageFixture : public ::testing::Test {
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
    for (auto* id : {"t1", "t2", "t3", "t4", "o1", "o2", "o3"}) vessel({"delete", "--force", id});
    if (podman_used_) {
      (void)podman({"rmi", "--all", "--force"});
      run_command({"sh", "-c", "umount -R " + dir_ + "/storage 2>/dev/null; true"});
    }
    (void)remove_tree(dir_);
  }
  // vessel --root <state_> --image-root <images_> ARGS...
  Output vessel(std::vector<std::string> args) { return vessel_in(images_, std::move(args)); }
  // The same with another image store.
  Output vessel_in(const std::string& image_root, std::vector<std::string> args) {
    args.insert(args.begin(), {VESSEL_BINARY, "--root", state_, "--image-root", image_root});
    return run_command(args, "", 300);
  }
  // podman with its storage, run and tmp dirs in the temp dir (cleaned up by TearDown).
  Output podman(const std::vector<std::string>& args) {
    if (!podman_used_) {
      // The host's hard limit of open files is below podman's default, hence explicit ulimits.
      EXPECT_TRUE(write_file(dir_ + "/containers.conf",
                             "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n"
                             "netns = \"none\"\n\n[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n")
                      .ok());
      podman_used_ = true;
    }
    std::vector<std::string> cmd = {"env", "CONTAINERS_CONF=" + dir_ + "/containers.conf", "podman", "--root", dir_ + "/storage",
                                    "--runroot", dir_ + "/run", "--tmpdir", dir_ + "/libpod", "--storage-driver", "vfs"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return run_command(cmd, "", 120);
  }
  // The mountinfo line of the overlay at `target` ("" when none).
  std::string mount_options(const std::string& target) {
    std::ifstream m("/proc/self/mountinfo");
    std::string line;
    while (std::getline(m, line))
      if (line.find(" " + target + " ") != std::string::npos && line.find(" - overlay ") != std::string::npos)
        return line;
    return "";
  }
  bool mounted_below(const std::string& p) {
    std::ifstream m("/proc/self/mountinfo");
    std::string line;
    while (std::getline(m, line))
      if (line.find(" " + p) != std::string::npos) return true;
    return false;
  }
  // Writes an OCI layout holding one image made of these plain-tar layers, with this runtime config.
  void oci_layout(const std::string& layout, const std::vector<std::string>& layer_tars, const std::string& ref,
                  const nlohmann::json& run_config = {{"Cmd", {"sh", "-c", "echo from-cmd"}}, {"WorkingDir", "/tmp"}}) {
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
                                        {"config", run_config},
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
  bool podman_used_ = false;
};

}  // namespace vessel::image::testing
