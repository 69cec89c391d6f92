#include "image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <memory>
#include <vector>

#include "common/crash_point.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "container/lifecycle.h"

namespace vessel::image {

namespace {

// Hashes everything readable from fd; copies it to `out` when out >= 0; counts the bytes in *bytes.
Result<Digest> hash_fd(int fd, int out, const std::string& what, int64_t* bytes = nullptr) {
  Sha256 h;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("read " + what);
    if (n == 0) break;
    h.update(buf, static_cast<size_t>(n));
    if (bytes) *bytes += n;
    if (out >= 0) TRY(write_all(out, std::string_view(buf, static_cast<size_t>(n))));
  }
  return h.digest();
}

}  // namespace

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<Store> Store::open(const std::string& root) {
  std::string r = absolute_path(root);
  for (const char* d : {"blobs/sha256", "layers", "containers", "tmp"})
    TRYC(mkdir_p(path_join(r, d), 0700), "image store " + r);
  Store s(r);
  s.reclaim_temp();  // what a killed import or build left behind
  return s;
}

std::string Store::blob_path(const Digest& d) const { return cat(root_, "/blobs/sha256/", d.hex); }
std::string Store::layer_path(const Digest& diffid) const { return cat(root_, "/layers/", diffid.hex); }
std::string Store::container_path(const std::string& id) const { return cat(root_, "/containers/", id); }

bool Store::has_blob(const Digest& d) const { return path_exists(blob_path(d)); }
bool Store::has_layer(const Digest& diffid) const { return path_exists(layer_path(diffid)); }

Result<Digest> Store::ingest(int fd, const Digest* expected, int64_t expected_size) {
  std::string tmpl = temp_template("blob");
  int out = ::mkstemp(tmpl.data());
  if (out < 0) return Error::from_errno("create " + tmpl);
  UniqueFd outfd(out);
  ScopeExit cleanup([&] { ::unlink(tmpl.c_str()); });
  int64_t bytes = 0;
  auto d = TRY(hash_fd(fd, out, "blob", &bytes));
  if (expected && !(d == *expected))
    return Error::invalid(cat("blob ", expected->str(), ": content has digest ", d.str()));
  if (expected_size >= 0 && bytes != expected_size)
    return Error::invalid(cat("blob ", d.str(), ": ", bytes, " bytes, its descriptor says size ", expected_size));
  if (::fchmod(out, 0600) < 0) return Error::from_errno("chmod " + tmpl);
  crash_point("store.blob-written");
  if (::rename(tmpl.c_str(), blob_path(d).c_str()) < 0) return Error::from_errno("rename to " + blob_path(d));
  cleanup.dismiss();
  return d;
}

Result<Digest> Store::put_blob(std::string_view data) {
  Digest d = sha256(data);
  if (has_blob(d)) return d;
  std::string tmpl = temp_template("blob");
  int out = ::mkstemp(tmpl.data());
  if (out < 0) return Error::from_errno("create " + tmpl);
  UniqueFd outfd(out);
  ScopeExit cleanup([&] { ::unlink(tmpl.c_str()); });
  TRYC(write_all(out, data), "write " + tmpl);
  if (::rename(tmpl.c_str(), blob_path(d).c_str()) < 0) return Error::from_errno("rename to " + blob_path(d));
  cleanup.dismiss();
  return d;
}

Result<std::string> Store::read_blob(const Digest& d) const {
  auto data = TRYC(read_file(blob_path(d)), "blob " + d.str());
  if (!(sha256(data) == d)) return Error(EIO, cat("blob ", d.str(), ": content does not match its digest"));
  return data;
}

Status Store::verify_blob(const Digest& d) const {
  auto fd = TRYC(open_file(blob_path(d), O_RDONLY | O_CLOEXEC), "blob " + d.str());
  auto got = TRY(hash_fd(fd.get(), -1, blob_path(d)));
  if (!(got == d)) return Error(EIO, cat("blob ", d.str(), ": content does not match its digest"));
  return ok();
}

Status Store::remove_blob(const Digest& d) {
  if (::unlink(blob_path(d).c_str()) < 0 && errno != ENOENT) return Error::from_errno("remove " + blob_path(d));
  return ok();
}

Result<StoreLock> Store::lock() {
  auto fd = TRY(open_file(root_ + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(fd.get(), LOCK_EX) < 0) {
    if (errno != EINTR) return Error::from_errno("lock " + root_ + "/lock");
  }
  return StoreLock(std::move(fd));
}

Result<StoreLock> Store::gc_lock(bool exclusive) {
  auto fd = TRY(open_file(root_ + "/gc.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) < 0) {
    if (errno != EINTR) return Error::from_errno("lock " + root_ + "/gc.lock");
  }
  return StoreLock(std::move(fd));
}

Result<NameIndex> Store::load_index() const {
  std::string path = root_ + "/images.json";
  if (!path_exists(path)) return NameIndex{};
  auto text = TRY(read_file(path));
  return TRYC(NameIndex::parse(text), path);
}

Status Store::save_index(const NameIndex& idx) { return write_file_atomic(root_ + "/images.json", idx.to_json(), 0600); }

std::string Store::temp_template(const std::string& prefix) const {
  return cat(root_, "/tmp/", prefix, "-", self_owner_tag(), "-XXXXXX");
}

int Store::reclaim_temp(bool legacy) {
  std::string dir = root_ + "/tmp";
  std::vector<std::string> gone;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) return 0;
    while (dirent* e = ::readdir(d.get())) {
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      // KIND-PID.START-XXXXXX: the owner tag is the second of three dash-separated parts.
      auto first = n.find('-');
      auto last = n.rfind('-');
      bool tagged = first != std::string_view::npos && last > first && n.substr(first + 1, last - first - 1).find('.') != std::string_view::npos;
      if (tagged ? !owner_alive(n.substr(first + 1, last - first - 1)) : legacy) gone.emplace_back(n);
    }
  }
  int removed = 0;
  for (auto& n : gone) {
    std::string path = dir + "/" + n;
    // A RUN step of a build that was killed may still run: its container is
    // named in step.container ("<runtime root>\n<id>\n"); remove it first.
    if (auto rec = read_regular_file(path + "/" + kStepContainerFile, 4096)) {
      auto lines = split(*rec, '\n');
      if (lines.size() >= 2 && !lines[0].empty() && starts_with(lines[1], "vessel-build-"))
        (void)container::remove(lines[0], lines[1], /*force=*/true);
    }
    // A step of a build that crashed before it mounted in a private namespace may still have its overlay here.
    (void)::umount2((path + "/rootfs").c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    if (remove_tree(path)) ++removed;
  }
  return removed;
}

Result<std::string> Store::make_temp_dir(const std::string& prefix) {
  std::string tmpl = temp_template(prefix);
  if (!::mkdtemp(tmpl.data())) return Error::from_errno("mkdtemp " + tmpl);
  return tmpl;
}

}  // namespace vessel::image
