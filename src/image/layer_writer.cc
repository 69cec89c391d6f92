#include "image/layer_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "common/crash_point.h"
#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "image/layer.h"
#include "image/libs.h"
#include "sys/syscalls.h"

namespace vessel::image {

namespace {

constexpr size_t kCopyBuffer = 1 << 20;

using WriterPtr = ArchiveWritePtr;
using EntryPtr = ArchiveEntryPtr;

// The compressed end of the pipeline: hashes the gzip bytes and writes them to the blob's temp file.
struct BlobSink {
  int fd = -1;
  Sha256 hash;
  int64_t size = 0;
  std::optional<Error> error;

  static la_ssize_t write(archive*, void* self, const void* buf, size_t n) {
    auto* s = static_cast<BlobSink*>(self);
    auto st = write_all(s->fd, std::string_view(static_cast<const char*>(buf), n));
    if (!st) {
      s->error = std::move(st).error().context("write layer blob");
      return -1;
    }
    s->hash.update(buf, n);
    s->size += static_cast<int64_t>(n);
    return static_cast<la_ssize_t>(n);
  }
};

// The uncompressed tar: hashed (the diff ID) and handed to the gzip writer.
struct TarSink {
  archive* gzip = nullptr;
  Sha256 hash;
  std::optional<Error> error;

  static la_ssize_t write(archive*, void* self, const void* buf, size_t n) {
    auto* s = static_cast<TarSink*>(self);
    s->hash.update(buf, n);
    if (la().archive_write_data(s->gzip, buf, n) < 0) {
      s->error = archive_error(s->gzip, "compress layer");
      return -1;
    }
    return static_cast<la_ssize_t>(n);
  }
};

using Xattrs = std::vector<std::pair<std::string, std::string>>;

// The extended attributes of an open file (fd >= 0) or, without following it, of `name`
// in the directory `parent` (symlinks, fifos). Sorted by name; trusted.* (overlay's own
// bookkeeping among them) is left out, as unpack_tar would not restore it either.
Result<Xattrs> read_xattrs(int fd, int parent, const std::string& name, bool* opaque) {
  std::string path = fd >= 0 ? std::string() : cat("/proc/self/fd/", parent, "/", name);
  auto list = [&](char* buf, size_t size) {
    return fd >= 0 ? ::flistxattr(fd, buf, size) : ::llistxattr(path.c_str(), buf, size);
  };
  auto get = [&](const char* n, char* buf, size_t size) {
    return fd >= 0 ? ::fgetxattr(fd, n, buf, size) : ::lgetxattr(path.c_str(), n, buf, size);
  };
  Xattrs out;
  std::string names;
  while (true) {
    ssize_t n = list(nullptr, 0);
    if (n < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)) return out;
    if (n < 0) return Error::from_errno("list extended attributes");
    if (n == 0) return out;
    names.resize(static_cast<size_t>(n));
    n = list(names.data(), names.size());
    if (n < 0 && errno == ERANGE) continue;  // grew in between
    if (n < 0) return Error::from_errno("list extended attributes");
    names.resize(static_cast<size_t>(n));
    break;
  }
  for (size_t pos = 0; pos < names.size();) {
    std::string n = names.c_str() + pos;
    pos += n.size() + 1;
    if (n.empty()) continue;
    std::string value;
    while (true) {
      ssize_t len = get(n.c_str(), nullptr, 0);
      if (len < 0 && errno == ENODATA) break;
      if (len < 0) return Error::from_errno("read extended attribute " + n);
      value.resize(static_cast<size_t>(len));
      len = get(n.c_str(), value.data(), value.size());
      if (len < 0 && errno == ERANGE) continue;
      if (len < 0) return Error::from_errno("read extended attribute " + n);
      value.resize(static_cast<size_t>(len));
      break;
    }
    if (n == "trusted.overlay.opaque") {
      if (opaque) *opaque = value == "y";
      continue;
    }
    // Metacopy files and redirected directories keep their content in a lower layer.
    if (n == "trusted.overlay.metacopy" || n == "trusted.overlay.redirect")
      return Error::invalid(cat("has ", n, " (an overlay mounted with metacopy or redirect_dir): its content is not in this tree"));
    if (starts_with(n, "trusted.")) continue;
    out.emplace_back(std::move(n), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The sorted names in a directory, without "." and "..".
Result<std::vector<std::string>> list_dir(int dir_fd) {
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno("open directory");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return Error::from_errno("read directory");
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  if (errno != 0) return Error::from_errno("read directory");
  std::sort(names.begin(), names.end());
  return names;
}

// Opens one name of a directory that must still be the file fstatat saw, never following a symlink.
Result<UniqueFd> open_same(int parent, const std::string& name, int flags, const struct stat& want) {
  auto fd = TRYC(sys::openat2(parent, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0,
                              RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS),
                 "open");
  struct stat st{};
  if (::fstat(fd.get(), &st) < 0) return Error::from_errno("stat");
  if (st.st_dev != want.st_dev || st.st_ino != want.st_ino)
    return Error(EAGAIN, "replaced while the layer was being written");
  return fd;
}

// Walks a tree below a directory fd and writes its entries to a tar archive.
class TreeWriter {
 public:
  TreeWriter(archive* tar, TarSink& sink, const LayerWriteOptions& o) : tar_(tar), sink_(sink), o_(o), buf_(kCopyBuffer) {}

  // The entries of the tree below dir_fd (not the top directory itself).
  Status write_tree(int dir_fd) {
    struct stat st{};
    if (::fstat(dir_fd, &st) < 0) return Error::from_errno("stat the layer directory");
    if (!S_ISDIR(st.st_mode)) return Error::invalid("the layer root is not a directory");
    bool opaque = false;
    TRYC(read_xattrs(dir_fd, -1, "", &opaque), "the layer directory");
    if (opaque) TRY(write_marker(std::string(kOpaqueMarker), st));
    return write_children(dir_fd, "");
  }

 private:
  // The entries below a directory; `prefix` is its path in the tar with a trailing "/" ("" at the top).
  Status write_children(int dir_fd, const std::string& prefix) {
    auto names = TRYC(list_dir(dir_fd), prefix.empty() ? std::string("the layer directory") : quoted(prefix));
    for (auto& n : names) {
      std::string path = prefix + n;
      auto sub = TRYC(write_entry(dir_fd, n, path), quoted(path));
      if (sub) TRY(write_children(sub.get(), path + "/"));
    }
    return ok();
  }

  static std::string quoted(const std::string& path) { return "\"" + path + "\""; }

  long long mtime(const struct stat& st) const {
    long long t = st.st_mtim.tv_sec;
    if (o_.clamp_mtime >= 0 && t > o_.clamp_mtime) t = o_.clamp_mtime;
    return t;
  }

  // A new entry with the metadata of `st` (uid, gid, permissions, mtime).
  EntryPtr entry(const std::string& path, mode_t type, const struct stat& st) const {
    EntryPtr e(la().archive_entry_new());
    la().archive_entry_set_pathname(e.get(), path.c_str());
    la().archive_entry_set_filetype(e.get(), type);
    la().archive_entry_set_perm(e.get(), st.st_mode & 07777);
    la().archive_entry_set_uid(e.get(), st.st_uid);
    la().archive_entry_set_gid(e.get(), st.st_gid);
    la().archive_entry_set_mtime(e.get(), mtime(st), 0);
    la().archive_entry_set_size(e.get(), 0);
    return e;
  }

  Status write_header(archive_entry* e) {
    int r = la().archive_write_header(tar_, e);
    // ARCHIVE_WARN: e.g. a name that is not UTF-8, stored as it is.
    if (r == ARCHIVE_OK || r == ARCHIVE_WARN) return ok();
    if (sink_.error) return *sink_.error;
    return archive_error(tar_, "write tar header");
  }

  // An empty regular file entry: an OCI whiteout or opaque marker.
  Status write_marker(const std::string& path, const struct stat& st) {
    auto e = entry(path, AE_IFREG, st);
    return write_header(e.get());
  }

  static void add_xattrs(archive_entry* e, const Xattrs& xattrs) {
    for (auto& [n, v] : xattrs) la().archive_entry_xattr_add_entry(e, n.c_str(), v.data(), v.size());
  }

  Status write_data(int fd, int64_t size) {
    int64_t left = size;
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(buf_.size())));
      ssize_t n = ::read(fd, buf_.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno("read");
      if (n == 0) return Error(EAGAIN, "shrank while the layer was being written");
      if (la().archive_write_data(tar_, buf_.data(), static_cast<size_t>(n)) < 0) {
        if (sink_.error) return *sink_.error;
        return archive_error(tar_, "write tar data");
      }
      left -= n;
    }
    return ok();
  }

  // Writes the entry of `name` in `parent`; for a directory, returns it open for write_children.
  Result<UniqueFd> write_entry(int parent, const std::string& name, const std::string& path) {
    struct stat st{};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::from_errno("stat");

    // An overlay whiteout (overlayfs may share one inode among many: never a hard link).
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      std::string dir = path.substr(0, path.size() - name.size());
      TRY(write_marker(cat(dir, kWhiteoutPrefix, name), st));
      return UniqueFd();
    }
    if (starts_with(name, kWhiteoutPrefix))
      return Error::invalid("names starting with \".wh.\" mean whiteouts in a layer: the file cannot be stored");

    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = links_.find(key);
      if (it != links_.end()) {
        auto e = entry(path, AE_IFREG, st);
        la().archive_entry_set_hardlink(e.get(), it->second.c_str());
        TRY(write_header(e.get()));
        return UniqueFd();
      }
      if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode) || S_ISFIFO(st.st_mode)) links_.emplace(key, path);
    }

    switch (st.st_mode & S_IFMT) {
      case S_IFREG: {
        auto fd = TRY(open_same(parent, name, O_RDONLY | O_NONBLOCK, st));
        if (::fstat(fd.get(), &st) < 0) return Error::from_errno("stat");
        auto xattrs = TRY(read_xattrs(fd.get(), -1, "", nullptr));
        auto e = entry(path, AE_IFREG, st);
        la().archive_entry_set_size(e.get(), st.st_size);
        add_xattrs(e.get(), xattrs);
        TRY(write_header(e.get()));
        TRY(write_data(fd.get(), st.st_size));
        return UniqueFd();
      }
      case S_IFDIR: {
        auto fd = TRY(open_same(parent, name, O_RDONLY | O_DIRECTORY, st));
        bool opaque = false;
        auto xattrs = TRY(read_xattrs(fd.get(), -1, "", &opaque));
        auto e = entry(path, AE_IFDIR, st);
        add_xattrs(e.get(), xattrs);
        TRY(write_header(e.get()));
        if (opaque) TRY(write_marker(cat(path, "/", kOpaqueMarker), st));
        return fd;
      }
      case S_IFLNK: {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlinkat(parent, name.c_str(), target.data(), target.size());
        if (n < 0) return Error::from_errno("readlink");
        if (static_cast<size_t>(n) >= target.size()) return Error(EAGAIN, "changed while the layer was being written");
        target.resize(static_cast<size_t>(n));
        auto xattrs = TRY(read_xattrs(-1, parent, name, nullptr));
        auto e = entry(path, AE_IFLNK, st);
        la().archive_entry_set_symlink(e.get(), target.c_str());
        add_xattrs(e.get(), xattrs);
        TRY(write_header(e.get()));
        return UniqueFd();
      }
      case S_IFIFO: {
        auto xattrs = TRY(read_xattrs(-1, parent, name, nullptr));
        auto e = entry(path, AE_IFIFO, st);
        add_xattrs(e.get(), xattrs);
        TRY(write_header(e.get()));
        return UniqueFd();
      }
      case S_IFSOCK:
        return UniqueFd();  // sockets are not content (unpack_tar skips them too)
      case S_IFCHR:
        return Error(EPERM, cat("character device ", major(st.st_rdev), ":", minor(st.st_rdev),
                                " cannot be stored in a layer"));
      case S_IFBLK:
        return Error(EPERM, cat("block device ", major(st.st_rdev), ":", minor(st.st_rdev), " cannot be stored in a layer"));
      default:
        return Error::invalid(cat("unknown file type ", static_cast<unsigned>(st.st_mode & S_IFMT)));
    }
  }

  archive* tar_;
  TarSink& sink_;
  const LayerWriteOptions& o_;
  std::vector<char> buf_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first path of each multiply linked inode
};

}  // namespace

Result<LayerBlob> write_layer(Store& store, int dir_fd, const LayerWriteOptions& o) {
  TRY(load_libarchive());
  TRY(load_libcrypto());
  std::string tmpl = store.temp_template("layer");
  int raw_fd = ::mkstemp(tmpl.data());
  if (raw_fd < 0) return Error::from_errno("create " + tmpl);
  UniqueFd fd(raw_fd);
  ScopeExit cleanup([&] { ::unlink(tmpl.c_str()); });

  // tar -> TarSink (diff ID) -> gzip writer -> BlobSink (blob digest, temp file).
  BlobSink blob;
  blob.fd = fd.get();
  WriterPtr gzip(la().archive_write_new());
  if (!gzip) return Error(ENOMEM, "archive_write_new");
  la().archive_write_add_filter_gzip(gzip.get());
  // No time stamp in the gzip header: the same tree gives the same blob.
  la().archive_write_set_filter_option(gzip.get(), "gzip", "timestamp", nullptr);
  la().archive_write_set_format_raw(gzip.get());
  la().archive_write_set_bytes_per_block(gzip.get(), 0);  // no zero padding after the gzip stream
  if (la().archive_write_open(gzip.get(), &blob, nullptr, &BlobSink::write, nullptr) != ARCHIVE_OK)
    return blob.error ? *blob.error : archive_error(gzip.get(), "start gzip");
  {
    EntryPtr e(la().archive_entry_new());
    la().archive_entry_set_pathname(e.get(), "layer.tar");
    la().archive_entry_set_filetype(e.get(), AE_IFREG);
    if (la().archive_write_header(gzip.get(), e.get()) != ARCHIVE_OK) return archive_error(gzip.get(), "start gzip");
  }

  TarSink tar_sink;
  tar_sink.gzip = gzip.get();
  WriterPtr tar(la().archive_write_new());
  if (!tar) return Error(ENOMEM, "archive_write_new");
  la().archive_write_set_format_pax_restricted(tar.get());
  if (la().archive_write_open(tar.get(), &tar_sink, nullptr, &TarSink::write, nullptr) != ARCHIVE_OK)
    return tar_sink.error ? *tar_sink.error : archive_error(tar.get(), "start tar");

  TreeWriter writer(tar.get(), tar_sink, o);
  TRYC(writer.write_tree(dir_fd), "write layer");

  if (la().archive_write_close(tar.get()) != ARCHIVE_OK)
    return tar_sink.error ? *tar_sink.error : archive_error(tar.get(), "finish tar");
  if (la().archive_write_close(gzip.get()) != ARCHIVE_OK)
    return blob.error ? *blob.error : archive_error(gzip.get(), "finish gzip");

  Digest digest = blob.hash.digest();
  Digest diff = tar_sink.hash.digest();
  std::string dest = store.blob_path(digest);
  crash_point("build.layer-written");
  if (::rename(tmpl.c_str(), dest.c_str()) < 0) return Error::from_errno("rename to " + dest);
  cleanup.dismiss();
  return LayerBlob{Descriptor{layer_media_type(Compression::kGzip), digest, blob.size}, diff};
}

}  // namespace vessel::image
