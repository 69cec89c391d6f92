#include "image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/crash_point.h"
#include "image/libs.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "sys/syscalls.h"

namespace vessel::image {

namespace {

// 4294967295 is (uid_t)-1: chown would leave the owner unchanged (root), and larger ids truncate.
constexpr uint64_t kMaxTarId = 4294967294ULL;
constexpr uint64_t kMaxExtendedHeader = 1 << 20;

using ArchivePtr = ArchiveReadPtr;

Result<ArchivePtr> open_archive(int fd, bool raw) {
  if (::lseek(fd, 0, SEEK_SET) < 0) return Error::from_errno("seek layer");
  ArchivePtr a(la().archive_read_new());
  la().archive_read_support_filter_all(a.get());
  if (raw) {
    la().archive_read_support_format_raw(a.get());
  } else {
    la().archive_read_support_format_tar(a.get());
    la().archive_read_support_format_gnutar(a.get());
  }
  if (la().archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK) return archive_error(a.get(), "open tar");
  return a;
}

// Opens one existing component below `dir` as a directory, never following a symlink.
Result<UniqueFd> open_dir_at(int dir, const std::string& name) {
  return sys::openat2(dir, name, O_RDONLY | O_DIRECTORY, 0,
                      RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
}

// Removes `name` in `dir` (a whole tree for a directory), through fds only.
Status remove_at(int dir, const std::string& name) {
  if (::unlinkat(dir, name.c_str(), 0) == 0 || errno == ENOENT) return ok();
  if (errno != EISDIR && errno != EPERM) return Error::from_errno("unlink " + name);
  auto sub = TRY(open_dir_at(dir, name));
  DIR* d = ::fdopendir(::dup(sub.get()));
  if (!d) return Error::from_errno("opendir " + name);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  for (auto& n : names) TRY(remove_at(sub.get(), n));
  if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) return Error::from_errno("rmdir " + name);
  return ok();
}

// Walks `comps[0..n)` from root as directories, creating missing ones; refuses symlinks on the way.
Result<UniqueFd> walk(int root, const std::vector<std::string>& comps, size_t n, bool create) {
  UniqueFd cur(::dup(root));
  if (!cur) return Error::from_errno("dup");
  for (size_t i = 0; i < n; ++i) {
    auto next = open_dir_at(cur.get(), comps[i]);
    if (!next && next.error().code() == ENOENT && create) {
      if (::mkdirat(cur.get(), comps[i].c_str(), 0755) < 0 && errno != EEXIST)
        return Error::from_errno("mkdir " + comps[i]);
      next = open_dir_at(cur.get(), comps[i]);
    }
    if (!next) {
      int e = next.error().code();
      struct stat st{};
      if ((e == ELOOP || e == ENOTDIR || e == EXDEV) && ::fstatat(cur.get(), comps[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode))
        return Error(ELOOP, cat("path goes through the symlink \"", comps[i], "\""));
      return std::move(next).error();
    }
    cur = std::move(*next);
  }
  return cur;
}

void set_xattrs(int fd, archive_entry* e) {
  const char* name;
  const void* value;
  size_t size;
  la().archive_entry_xattr_reset(e);
  while (la().archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    // trusted.* (overlay's own attributes among them) would let a layer forge opaque dirs or redirects.
    if (starts_with(name, "trusted.")) continue;
    (void)::fsetxattr(fd, name, value, size, 0);
  }
}

// The entry's uid and gid, each within 0..4294967294 (checked by unpack_entry).
uid_t entry_uid(archive_entry* e) { return static_cast<uid_t>(la().archive_entry_uid(e)); }
gid_t entry_gid(archive_entry* e) { return static_cast<gid_t>(la().archive_entry_gid(e)); }

Status apply_owner_mode(int fd, archive_entry* e, bool chmod_it) {
  bool owned = ::geteuid() == 0;
  if (owned && ::fchown(fd, entry_uid(e), entry_gid(e)) < 0) return Error::from_errno("chown");
  mode_t mode = la().archive_entry_perm(e) & 07777;
  // setuid/setgid only on a file that really has the entry's owner (not ours, when we cannot chown).
  if (!owned) mode &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
  if (chmod_it && ::fchmod(fd, mode) < 0) return Error::from_errno("chmod");
  set_xattrs(fd, e);
  return ok();
}

Status write_regular(archive* a, archive_entry* e, int parent, const std::string& name) {
  UniqueFd fd(::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return Error::from_errno("create " + name);
  const void* buf;
  size_t size;
  la_int64_t offset;
  int r;
  while ((r = la().archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
    const char* p = static_cast<const char*>(buf);
    while (size > 0) {
      ssize_t n = ::pwrite(fd.get(), p, size, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno("write " + name);
      p += n;
      size -= static_cast<size_t>(n);
      offset += n;
    }
  }
  if (r != ARCHIVE_EOF) return archive_error(a, "read data");
  if (::ftruncate(fd.get(), la().archive_entry_size(e)) < 0) return Error::from_errno("truncate " + name);
  TRY(apply_owner_mode(fd.get(), e, true));
  timespec ts[2] = {{la().archive_entry_mtime(e), 0}, {la().archive_entry_mtime(e), 0}};
  (void)::futimens(fd.get(), ts);
  return ok();
}

Status unpack_entry(archive* a, archive_entry* e, int root, const UnpackOptions& o) {
  for (auto [what, id] : {std::pair{"uid", la().archive_entry_uid(e)}, std::pair{"gid", la().archive_entry_gid(e)}}) {
    if (id < 0 || id > static_cast<la_int64_t>(kMaxTarId))
      return Error::invalid(cat(what, " ", id, " is out of range 0..", kMaxTarId));
  }
  auto comps = TRY(entry_components(la().archive_entry_pathname(e) ? la().archive_entry_pathname(e) : ""));
  if (comps.empty()) return ok();  // the layer root itself ("./")
  std::string name = comps.back();
  auto parent = TRY(walk(root, comps, comps.size() - 1, true));

  if (o.whiteouts && starts_with(name, kWhiteoutPrefix)) {
    if (name == kOpaqueMarker) {
      if (::fsetxattr(parent.get(), "trusted.overlay.opaque", "y", 1, 0) < 0)
        return Error::from_errno("set trusted.overlay.opaque on the directory");
      return ok();
    }
    std::string hidden = name.substr(kWhiteoutPrefix.size());
    if (starts_with(hidden, kWhiteoutPrefix) || hidden.empty()) return ok();  // other aufs metadata: skip
    TRY(remove_at(parent.get(), hidden));
    if (::mknodat(parent.get(), hidden.c_str(), S_IFCHR | 0600, makedev(0, 0)) < 0)
      return Error::from_errno("create whiteout " + hidden);
    return ok();
  }

  if (const char* link = la().archive_entry_hardlink(e)) {
    auto target = entry_components(link);
    if (!target || target->empty())
      return Error::invalid(cat("hard link to \"", link, "\" leads out of the layer"));
    auto tparent = walk(root, *target, target->size() - 1, false);
    if (!tparent) return std::move(tparent).error().context(cat("hard link to \"", link, "\""));
    TRY(remove_at(parent.get(), name));
    if (::linkat(tparent->get(), target->back().c_str(), parent.get(), name.c_str(), 0) < 0)
      return Error::from_errno(cat("hard link to \"", link, "\""));
    return ok();
  }

  mode_t type = la().archive_entry_filetype(e);
  if (type == AE_IFDIR) {
    struct stat st{};
    bool is_dir = ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    if (!is_dir) {
      TRY(remove_at(parent.get(), name));
      if (::mkdirat(parent.get(), name.c_str(), 0700) < 0) return Error::from_errno("mkdir " + name);
    }
    auto dir = TRY(open_dir_at(parent.get(), name));
    return apply_owner_mode(dir.get(), e, true);
  }
  TRY(remove_at(parent.get(), name));
  switch (type) {
    case AE_IFREG:
      return write_regular(a, e, parent.get(), name);
    case AE_IFLNK: {
      const char* target = la().archive_entry_symlink(e);
      if (!target) return Error::invalid("symlink without a target");
      // The target is only ever resolved inside the container's root, never by us.
      if (::symlinkat(target, parent.get(), name.c_str()) < 0) return Error::from_errno("symlink " + name);
      if (::geteuid() == 0)
        (void)::fchownat(parent.get(), name.c_str(), entry_uid(e), entry_gid(e), AT_SYMLINK_NOFOLLOW);
      return ok();
    }
    case AE_IFIFO: {
      if (::mknodat(parent.get(), name.c_str(), S_IFIFO | (la().archive_entry_perm(e) & 0777), 0) < 0)
        return Error::from_errno("mkfifo " + name);
      if (::geteuid() == 0)
        (void)::fchownat(parent.get(), name.c_str(), entry_uid(e), entry_gid(e), AT_SYMLINK_NOFOLLOW);
      return ok();
    }
    case AE_IFCHR:
      // An overlay-format whiteout (char 0:0) is kept as such; any other device is refused.
      if (o.whiteouts && la().archive_entry_rdev(e) == 0) {
        if (::mknodat(parent.get(), name.c_str(), S_IFCHR | 0600, makedev(0, 0)) < 0)
          return Error::from_errno("create whiteout " + name);
        return ok();
      }
      return Error(EPERM, cat("character device ", la().archive_entry_rdevmajor(e), ":", la().archive_entry_rdevminor(e),
                              " not allowed in a layer"));
    case AE_IFBLK:
      return Error(EPERM, cat("block device ", la().archive_entry_rdevmajor(e), ":", la().archive_entry_rdevminor(e),
                              " not allowed in a layer"));
    case AE_IFSOCK:
      return ok();  // sockets are not content
    default:
      return Error::invalid(cat("unknown entry type ", static_cast<unsigned>(type)));
  }
}

}  // namespace

Result<std::vector<std::string>> entry_components(std::string_view name) {
  if (!name.empty() && name.front() == '/')
    return Error::invalid(cat("absolute path \"", name, "\" not allowed in a layer"));
  std::vector<std::string> out;
  for (auto& c : split(name, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") return Error::invalid(cat("path \"", name, "\" leads out of the layer (\"..\")"));
    out.push_back(c);
  }
  return out;
}

Result<Compression> detect_compression(int fd) {
  unsigned char m[4] = {};
  ssize_t n = ::pread(fd, m, sizeof m, 0);
  if (n < 0) return Error::from_errno("read layer header");
  if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) return Compression::kGzip;
  if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) return Compression::kZstd;
  return Compression::kNone;
}

std::string layer_media_type(Compression c) {
  switch (c) {
    case Compression::kGzip: return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::kZstd: return "application/vnd.oci.image.layer.v1.tar+zstd";
    case Compression::kNone: break;
  }
  return "application/vnd.oci.image.layer.v1.tar";
}

Result<Digest> diff_id(int fd, uint64_t max_bytes) {
  TarHeaderScan scan;
  uint64_t total = 0;
  auto take = [&](const char* buf, size_t n) -> Status {
    total += n;
    if (total > max_bytes) return Error(EFBIG, cat("the layer expands to more than ", max_bytes, " bytes"));
    return scan.feed(buf, n);
  };
  if (TRY(detect_compression(fd)) == Compression::kNone) {
    // Plain tar: hash the bytes as they are (libarchive's raw reader wants a filter).
    if (::lseek(fd, 0, SEEK_SET) < 0) return Error::from_errno("seek layer");
    Sha256 h;
    char buf[1 << 16];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno("read layer");
      if (n == 0) break;
      TRY(take(buf, static_cast<size_t>(n)));
      h.update(buf, static_cast<size_t>(n));
    }
    return h.digest();
  }
  auto a = TRY(open_archive(fd, true));
  archive_entry* e;
  if (la().archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return archive_error(a.get(), "decompress layer");
  Sha256 h;
  char buf[1 << 16];
  while (true) {
    la_ssize_t n = la().archive_read_data(a.get(), buf, sizeof buf);
    if (n < 0) return archive_error(a.get(), "decompress layer");
    if (n == 0) break;
    TRY(take(buf, static_cast<size_t>(n)));
    h.update(buf, static_cast<size_t>(n));
  }
  return h.digest();
}

namespace {

// A NUL-free copy of `s` for messages.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 100)) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}

}  // namespace

Status TarHeaderScan::feed(const char* p, size_t n) {
  while (n > 0) {
    if (skip_ > 0) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(skip_, n));
      skip_ -= k;
      p += k;
      n -= k;
      continue;
    }
    if (collect_ > 0) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(collect_, n));
      ext_.append(p, k);
      collect_ -= k;
      p += k;
      n -= k;
      if (collect_ == 0) {
        TRY(extended_done());
        skip_ = pad_;
      }
      continue;
    }
    size_t k = std::min(sizeof block_ - have_, n);
    std::memcpy(block_ + have_, p, k);
    have_ += k;
    p += k;
    n -= k;
    if (have_ == sizeof block_) {
      have_ = 0;
      TRY(header_done());
    }
  }
  return ok();
}

Status TarHeaderScan::header_done() {
  bool zero = true;
  for (char c : block_) zero &= c == 0;
  if (zero) return ok();  // end of archive (or padding)
  // A NUL ends a name field; anything after it would be cut off by every reader.
  struct Field {
    size_t offset, size;
    const char* what;
  };
  bool posix = std::memcmp(block_ + 257, "ustar\0", 6) == 0;  // GNU keeps other data where POSIX has the prefix
  for (auto f : {Field{0, 100, "name"}, Field{157, 100, "link name"}, Field{345, posix ? 155u : 0u, "name prefix"}}) {
    std::string_view v(block_ + f.offset, f.size);
    size_t nul = v.find('\0');
    if (nul != std::string_view::npos && v.find_first_not_of('\0', nul) != std::string_view::npos)
      return Error::invalid(cat("tar header: the ", f.what, " \"", printable(v.substr(0, v.find_last_not_of('\0') + 1)),
                                "\" contains a NUL byte"));
  }
  uint64_t size = 0;
  const unsigned char* f = reinterpret_cast<const unsigned char*>(block_ + 124);
  if (f[0] & 0x80) {  // base-256
    size = f[0] & 0x7f;
    for (int i = 1; i < 12; ++i) {
      if (size >> 55) return Error::invalid("tar header: entry size out of range");
      size = size << 8 | f[i];
    }
  } else {
    int i = 0;
    while (i < 12 && f[i] == ' ') ++i;
    for (; i < 12 && f[i] >= '0' && f[i] <= '7'; ++i) size = size * 8 + (f[i] - '0');
  }
  type_ = block_[156];
  bool extended = type_ == 'x' || type_ == 'g' || type_ == 'L' || type_ == 'K';
  if (!extended && size_override_) size = *size_override_;
  if (!extended) size_override_.reset();
  uint64_t padded = (size + 511) / 512 * 512;
  if (type_ == 'x' || type_ == 'g' || type_ == 'L' || type_ == 'K') {
    if (size > kMaxExtendedHeader)
      return Error::invalid(cat("tar header: an extended header of ", size, " bytes (the limit is ", kMaxExtendedHeader, ")"));
    ext_.clear();
    collect_ = size;
    pad_ = padded - size;
    if (size == 0) skip_ = pad_;
    return ok();
  }
  skip_ = padded;
  return ok();
}

Status TarHeaderScan::extended_done() {
  if (type_ == 'L' || type_ == 'K') {
    std::string_view name = ext_;
    while (!name.empty() && name.back() == '\0') name.remove_suffix(1);
    if (name.find('\0') != std::string_view::npos)
      return Error::invalid(cat("tar header: the GNU long ", type_ == 'L' ? "name" : "link name", " \"", printable(name),
                                "\" contains a NUL byte"));
    return ok();
  }
  size_t pos = 0;
  while (pos < ext_.size()) {
    size_t sp = ext_.find(' ', pos);
    if (sp == std::string::npos) break;
    auto len = parse_u64(std::string_view(ext_).substr(pos, sp - pos));
    if (!len || *len == 0 || pos + *len > ext_.size() || sp + 1 > pos + *len) break;  // malformed: libarchive reports it
    std::string_view rec = std::string_view(ext_).substr(sp + 1, pos + *len - sp - 1);
    if (!rec.empty() && rec.back() == '\n') rec.remove_suffix(1);
    size_t eq = rec.find('=');
    if (eq != std::string_view::npos) {
      std::string_view key = rec.substr(0, eq), value = rec.substr(eq + 1);
      if ((key == "path" || key == "linkpath" || key == "GNU.sparse.name") && value.find('\0') != std::string_view::npos)
        return Error::invalid(cat("tar header: pax ", key, " \"", printable(value), "\" contains a NUL byte"));
      if (key == "size" && type_ == 'x') size_override_ = parse_u64(value);
    }
    pos += *len;
  }
  return ok();
}

Status unpack_tar(int fd, int dir_fd, const UnpackOptions& o) {
  auto a = TRY(open_archive(fd, false));
  archive_entry* e;
  uint64_t total = 0;
  while (true) {
    int r = la().archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return archive_error(a.get(), "read tar");
    const char* path = la().archive_entry_pathname(e);
    total += 512;
    if (la().archive_entry_filetype(e) == AE_IFREG && la().archive_entry_size(e) > 0)
      total += static_cast<uint64_t>(la().archive_entry_size(e));
    if (total > o.max_bytes)
      return Error(EFBIG, cat("tar entry \"", path ? path : "", "\": the layer expands to more than ", o.max_bytes, " bytes"));
    TRYC(unpack_entry(a.get(), e, dir_fd, o), cat("tar entry \"", path ? path : "", "\""));
    crash_point("layer.entry");
  }
  return ok();
}

}  // namespace vessel::image
