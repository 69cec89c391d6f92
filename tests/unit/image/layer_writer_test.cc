#include "image/layer_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "image/layer.h"

namespace vessel::image {
namespace {

// One entry of a layer blob, as libarchive reads it back.
struct TarEntry {
  std::string path;
  mode_t type = 0;
  std::string hardlink, symlink;
  long long mtime = 0;
  std::vector<std::string> xattrs;
};

std::vector<TarEntry> read_entries(const std::string& blob) {
  std::vector<TarEntry> out;
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  EXPECT_EQ(archive_read_open_filename(a.get(), blob.c_str(), 1 << 16), ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    TarEntry t;
    t.path = archive_entry_pathname(e);
    t.type = archive_entry_filetype(e);
    if (auto* h = archive_entry_hardlink(e)) t.hardlink = h;
    if (auto* s = archive_entry_symlink(e)) t.symlink = s;
    t.mtime = archive_entry_mtime(e);
    const char* name;
    const void* value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) t.xattrs.push_back(name);
    out.push_back(t);
  }
  return out;
}

std::vector<std::string> paths(const std::vector<TarEntry>& entries) {
  std::vector<std::string> out;
  for (auto& e : entries) out.push_back(e.path);
  return out;
}

// What a tree holds, path -> a description of type, owner, mode, content, link target,
// xattrs but trusted.* and (for multiply linked files) the first path of the same inode.
std::map<std::string, std::string> snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  std::map<ino_t, std::string> inodes;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    std::string rel = todo.back();
    todo.pop_back();
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir((root + "/" + rel).c_str()), ::closedir);
    if (!d) continue;
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d.get()))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
    std::sort(names.begin(), names.end());
    for (auto& n : names) {
      std::string path = rel.empty() ? n : rel + "/" + n;
      std::string full = root + "/" + path;
      struct stat st{};
      ::lstat(full.c_str(), &st);
      std::string desc = cat("mode=", st.st_mode, " uid=", st.st_uid, " gid=", st.st_gid);
      if (S_ISREG(st.st_mode)) desc += cat(" mtime=", st.st_mtim.tv_sec, " data=", *read_file(full));
      if (S_ISLNK(st.st_mode)) {
        char buf[4096] = {};
        ::readlink(full.c_str(), buf, sizeof buf - 1);
        desc += cat(" target=", buf);
      }
      if (S_ISCHR(st.st_mode)) desc += cat(" rdev=", major(st.st_rdev), ":", minor(st.st_rdev));
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        auto [it, fresh] = inodes.emplace(st.st_ino, path);
        desc += cat(" links=", st.st_nlink, " first=", it->second);
      }
      if (!S_ISLNK(st.st_mode)) {
        char list[1024] = {};
        ssize_t len = ::llistxattr(full.c_str(), list, sizeof list);
        for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(std::strlen(list + i)) + 1) {
          if (starts_with(list + i, "trusted.")) continue;  // never stored in a layer
          char v[256] = {};
          ssize_t vl = ::lgetxattr(full.c_str(), list + i, v, sizeof v - 1);
          desc += cat(" xattr:", list + i, "=", std::string(v, vl > 0 ? static_cast<size_t>(vl) : 0));
        }
      }
      out[path] = desc;
      if (S_ISDIR(st.st_mode)) todo.push_back(path);
    }
  }
  return out;
}

class LayerWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-layer-writer-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    tree_ = dir_ + "/tree";
    ASSERT_EQ(::mkdir(tree_.c_str(), 0755), 0);
    auto s = Store::open(dir_ + "/store");
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_.emplace(std::move(*s));
  }
  void TearDown() override { (void)remove_tree(dir_); }

  Result<LayerBlob> write(const std::string& dir, const LayerWriteOptions& o = {}) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return write_layer(*store_, fd.get(), o);
  }
  Status unpack(const LayerBlob& b, const std::string& into) {
    EXPECT_EQ(::mkdir(into.c_str(), 0755), 0);
    UniqueFd fd(::open(store_->blob_path(b.descriptor.digest).c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd dir(::open(into.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return unpack_tar(fd.get(), dir.get());
  }
  void mkdir(const std::string& rel, mode_t mode = 0755) {
    ASSERT_EQ(::mkdir((tree_ + "/" + rel).c_str(), mode), 0) << rel;
    ASSERT_EQ(::chmod((tree_ + "/" + rel).c_str(), mode), 0);
  }
  void file(const std::string& rel, const std::string& data, mode_t mode = 0644) {
    ASSERT_TRUE(write_file(tree_ + "/" + rel, data).ok()) << rel;
    ASSERT_EQ(::chmod((tree_ + "/" + rel).c_str(), mode), 0);
  }
  void whiteout(const std::string& rel) {
    ASSERT_EQ(::mknod((tree_ + "/" + rel).c_str(), S_IFCHR | 0, makedev(0, 0)), 0) << rel;
  }
  // The files in the store's tmp/ (a failed write must leave none).
  std::vector<std::string> store_tmp() {
    std::vector<std::string> out;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir((store_->root() + "/tmp").c_str()), ::closedir);
    while (dirent* e = ::readdir(d.get()))
      if (e->d_name[0] != '.') out.push_back(e->d_name);
    return out;
  }

  std::string dir_, tree_;
  std::optional<Store> store_;
};

TEST_F(LayerWriterTest, RoundTripsThroughUnpackTar) {
  mkdir("bin");
  file("bin/tool", "#!/bin/sh\necho tool\n", 0755);
  ASSERT_EQ(::link((tree_ + "/bin/tool").c_str(), (tree_ + "/bin/tool2").c_str()), 0);
  ASSERT_EQ(::symlink("tool", (tree_ + "/bin/sh").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", (tree_ + "/abs").c_str()), 0);
  mkdir("etc", 0750);
  file("etc/conf", "k=v\n", 0640);
  file("etc/suid", "", 04755);
  file("etc/empty", "");
  mkdir("empty", 0700);
  mkdir("run");
  ASSERT_EQ(::mkfifo((tree_ + "/run/fifo").c_str(), 0620), 0);
  std::string long_name = "deep/" + std::string(150, 'n');
  mkdir("deep");
  file(long_name, "long");
  std::string big(3 << 20, 'x');  // more than one copy buffer
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  file("big", big);
  bool xattrs = ::setxattr((tree_ + "/etc/conf").c_str(), "user.comment", "hello", 5, 0) == 0;
  if (::geteuid() == 0) {
    ASSERT_EQ(::lchown((tree_ + "/etc/conf").c_str(), 1000, 1001), 0);
    ASSERT_EQ(::lchown((tree_ + "/bin/sh").c_str(), 7, 8), 0);
    ASSERT_EQ(::chown((tree_ + "/etc").c_str(), 0, 42), 0);
    ASSERT_EQ(::setxattr((tree_ + "/etc/empty").c_str(), "trusted.secret", "t", 1, 0), 0);
  }
  timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (tree_ + "/bin/tool").c_str(), ts, 0), 0);

  auto b = write(tree_);
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(b->descriptor.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  std::string blob = store_->blob_path(b->descriptor.digest);
  auto data = read_file(blob);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(sha256(*data).hex, b->descriptor.digest.hex);
  EXPECT_EQ(static_cast<int64_t>(data->size()), b->descriptor.size);
  UniqueFd fd(::open(blob.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(*detect_compression(fd.get()), Compression::kGzip);
  EXPECT_EQ(diff_id(fd.get())->hex, b->diff_id.hex);
  EXPECT_TRUE(store_tmp().empty());

  auto entries = read_entries(blob);
  // Sorted, parents before children; the second name of bin/tool is a hard link to the first.
  EXPECT_EQ(paths(entries), (std::vector<std::string>{"abs", "big", "bin/", "bin/sh", "bin/tool", "bin/tool2", "deep/",
                                                      long_name, "empty/", "etc/", "etc/conf", "etc/empty", "etc/suid",
                                                      "run/", "run/fifo"}));
  for (auto& e : entries) {
    if (e.path == "bin/tool2") {
      EXPECT_EQ(e.hardlink, "bin/tool");
    }
    for (auto& x : e.xattrs) EXPECT_FALSE(starts_with(x, "trusted.")) << e.path << " " << x;
  }

  ASSERT_TRUE(unpack(*b, dir_ + "/out").ok());
  auto want = snapshot(tree_), got = snapshot(dir_ + "/out");
  EXPECT_EQ(got, want);
  if (xattrs) {
    EXPECT_NE(got["etc/conf"].find("xattr:user.comment=hello"), std::string::npos) << got["etc/conf"];
  }
}

TEST_F(LayerWriterTest, OverlayWhiteoutsBecomeOciWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "whiteouts (mknod) and trusted.* xattrs need root";
  whiteout("gone");
  mkdir("d");
  ASSERT_EQ(::setxattr((tree_ + "/d").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  file("d/keep", "k");
  // overlayfs shares one whiteout inode among many names: they must not become hard links.
  ASSERT_EQ(::link((tree_ + "/gone").c_str(), (tree_ + "/d/x").c_str()), 0);
  mkdir("plain");
  ASSERT_EQ(::setxattr((tree_ + "/plain").c_str(), "trusted.overlay.origin", "o", 1, 0), 0);

  auto b = write(tree_);
  ASSERT_TRUE(b.ok()) << b.error().message();
  auto entries = read_entries(store_->blob_path(b->descriptor.digest));
  EXPECT_EQ(paths(entries), (std::vector<std::string>{"d/", "d/.wh..wh..opq", "d/keep", "d/.wh.x", ".wh.gone", "plain/"}));
  for (auto& e : entries) {
    EXPECT_TRUE(e.hardlink.empty()) << e.path;
    EXPECT_TRUE(e.xattrs.empty()) << e.path;
    if (starts_with(e.path, ".wh.") || e.path.find("/.wh.") != std::string::npos) {
      EXPECT_EQ(e.type, AE_IFREG) << e.path;
    }
  }

  // Unpacking turns them back into the overlay format.
  ASSERT_TRUE(unpack(*b, dir_ + "/out").ok());
  struct stat st{};
  ASSERT_EQ(::lstat((dir_ + "/out/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
  ASSERT_EQ(::lstat((dir_ + "/out/d/x").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
  char v[4] = {};
  EXPECT_EQ(::getxattr((dir_ + "/out/d").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(::getxattr((dir_ + "/out/plain").c_str(), "trusted.overlay.opaque", v, sizeof v), -1);
  EXPECT_EQ(*read_file(dir_ + "/out/d/keep"), "k");
}

TEST_F(LayerWriterTest, OpaqueLayerRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "trusted.* xattrs need root";
  ASSERT_EQ(::setxattr(tree_.c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  file("a", "a");
  auto b = write(tree_);
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(paths(read_entries(store_->blob_path(b->descriptor.digest))), (std::vector<std::string>{".wh..wh..opq", "a"}));
}

TEST_F(LayerWriterTest, DeviceNodeIsAnErrorNamingIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  mkdir("dev");
  ASSERT_EQ(::mknod((tree_ + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  auto b = write(tree_);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message().find("\"dev/null\""), std::string::npos) << b.error().message();
  EXPECT_NE(b.error().message().find("1:3"), std::string::npos) << b.error().message();
  EXPECT_TRUE(store_tmp().empty());
}

TEST_F(LayerWriterTest, WhiteoutNamedFileIsAnError) {
  file(".wh.foo", "");
  auto b = write(tree_);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message().find("\".wh.foo\""), std::string::npos) << b.error().message();
}

TEST_F(LayerWriterTest, SameTreeSameDigests) {
  auto build = [&](const std::string& root) {
    tree_ = root;
    ::mkdir(root.c_str(), 0755);
    // Created in another order each time: the tar must not care.
    if (root.back() == '1') {
      mkdir("b");
      file("b/2", "two");
      file("a", "one");
    } else {
      file("a", "one");
      mkdir("b");
      file("b/2", "two");
    }
    ASSERT_EQ(::symlink("a", (root + "/c").c_str()), 0);
  };
  build(dir_ + "/t1");
  sleep(1);  // other mtimes: clamped below
  build(dir_ + "/t2");
  LayerWriteOptions o;
  o.clamp_mtime = 100;
  auto b1 = write(dir_ + "/t1", o);
  auto b1_again = write(dir_ + "/t1", o);
  auto b2 = write(dir_ + "/t2", o);
  ASSERT_TRUE(b1.ok() && b1_again.ok() && b2.ok());
  EXPECT_EQ(b1->descriptor.digest.hex, b1_again->descriptor.digest.hex);
  EXPECT_EQ(b1->diff_id.hex, b1_again->diff_id.hex);
  EXPECT_EQ(b1->descriptor.digest.hex, b2->descriptor.digest.hex);
  EXPECT_EQ(b1->diff_id.hex, b2->diff_id.hex);
  for (auto& e : read_entries(store_->blob_path(b1->descriptor.digest))) EXPECT_EQ(e.mtime, 100) << e.path;

  // Without clamping the mtimes differ, and so do the layers; the same tree twice is still the same.
  auto u1 = write(dir_ + "/t1"), u1_again = write(dir_ + "/t1"), u2 = write(dir_ + "/t2");
  ASSERT_TRUE(u1.ok() && u1_again.ok() && u2.ok());
  EXPECT_EQ(u1->descriptor.digest.hex, u1_again->descriptor.digest.hex);
  EXPECT_NE(u1->diff_id.hex, u2->diff_id.hex);
}

TEST_F(LayerWriterTest, SymlinksAreNeverFollowed) {
  std::string outside = dir_ + "/outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  ASSERT_TRUE(write_file(outside + "/secret", "secret").ok());
  ASSERT_EQ(::symlink(outside.c_str(), (tree_ + "/link").c_str()), 0);
  ASSERT_EQ(::symlink((outside + "/secret").c_str(), (tree_ + "/flink").c_str()), 0);
  ASSERT_EQ(::symlink("../outside", (tree_ + "/rel").c_str()), 0);
  auto b = write(tree_);
  ASSERT_TRUE(b.ok()) << b.error().message();
  auto entries = read_entries(store_->blob_path(b->descriptor.digest));
  EXPECT_EQ(paths(entries), (std::vector<std::string>{"flink", "link", "rel"}));
  for (auto& e : entries) EXPECT_EQ(e.type, AE_IFLNK) << e.path;
  ASSERT_TRUE(unpack(*b, dir_ + "/out").ok());
  EXPECT_EQ(snapshot(dir_ + "/out"), snapshot(tree_));
}

}  // namespace
}  // namespace vessel::image
