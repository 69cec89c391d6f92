#include "image/overlay.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include "common/fs.h"
#include "common/strings.h"
#include "sys/syscalls.h"

namespace vessel::image {

namespace {

// overlayfs' OVL_MAX_STACK.
constexpr size_t kMaxLowers = 500;
// Length of a short link name: 36 bits of the diff ID; a clash only makes one name longer.
constexpr size_t kShortLen = 6;

// The unpadded base64url of the 32 bytes behind a digest's hex: 43 characters.
std::string base64url(const Digest& d) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : d.hex) {
    acc = (acc << 4) | static_cast<uint32_t>(nibble(c));
    bits += 4;
    if (bits >= 6) {
      bits -= 6;
      out += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 63];
  return out;
}

std::string link_target(const Digest& d) { return "../layers/" + d.hex; }

// The target of symlink `name` in dirfd; nullopt with errno set when it is none.
std::optional<std::string> read_link(int dirfd, const std::string& name) {
  char buf[256];
  ssize_t n = ::readlinkat(dirfd, name.c_str(), buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

// The first of `diff_ids` missing from the store, if any.
const Digest* missing_layer(const Store& store, const std::vector<Digest>& diff_ids) {
  for (auto& d : diff_ids)
    if (!store.has_layer(d)) return &d;
  return nullptr;
}

// The name in l/ (dirfd) of the link to layer `d`, created when missing (and the
// layer exists). Safe against other vessel processes doing the same: symlinkat
// either creates the name or finds it, and a name found pointing elsewhere
// belongs to another layer.
Result<std::string> layer_link(const Store& store, int dirfd, const Digest& d) {
  const std::string full = base64url(d), target = link_target(d);
  for (size_t len = kShortLen; len <= full.size(); ++len) {
    std::string name = full.substr(0, len);
    for (int attempt = 0; attempt < 4; ++attempt) {
      if (auto t = read_link(dirfd, name)) {
        if (*t == target) return name;
        break;  // another layer's link: try a longer name
      }
      if (errno == EINVAL) break;  // not a symlink: not ours
      if (errno != ENOENT) return Error::from_errno(cat("read link l/", name));
      if (!store.has_layer(d)) return Error(ENOENT, cat("layer ", d.str(), " is missing from the store"));
      if (::symlinkat(target.c_str(), dirfd, name.c_str()) == 0) return name;
      if (errno != EEXIST) return Error::from_errno(cat("create link l/", name, " to layer ", d.hex));
      // Someone created it meanwhile (for this layer or another): look again.
    }
  }
  return Error(EEXIST, cat("no free link name in l/ for layer ", d.str()));
}

// Makes directory `name` under dirfd unless it exists.
Status ensure_dir(int dirfd, const std::string& root, const char* name, mode_t mode) {
  if (::mkdirat(dirfd, name, mode) < 0 && errno != EEXIST) return Error::from_errno(cat("mkdir ", root, "/", name));
  return ok();
}

}  // namespace

Status mount_layers(const Store& store, const std::vector<Digest>& diff_ids, const std::string& upper,
                    const std::string& work, const std::string& target, unsigned long flags) {
  for (auto* p : {&upper, &work, &target})
    if (p->empty() || p->front() != '/') return Error::invalid(cat("overlay mount: \"", *p, "\" is not an absolute path"));
  for (auto* p : {&upper, &work})
    if (p->find_first_of(",:\\") != std::string::npos)
      return Error::invalid(cat("overlay mount: \"", *p, "\" contains ',', ':' or '\\', which overlayfs options cannot hold"));
  if (diff_ids.size() > kMaxLowers)
    return Error::invalid(cat("the image has ", diff_ids.size(), " layers; overlayfs stacks at most ", kMaxLowers));

  const std::string& root = store.root();
  auto rootfd = TRY(open_file(root, O_PATH | O_DIRECTORY));
  TRY(ensure_dir(rootfd.get(), root, "l", 0700));
  auto ldir = TRY(open_at(rootfd.get(), "l", O_PATH | O_DIRECTORY | O_NOFOLLOW));
  std::string lowers;  // top layer first, relative to l/
  if (diff_ids.empty()) {
    TRY(ensure_dir(rootfd.get(), root, "empty", 0755));
    lowers = "../empty";
  }
  // An existing link is taken as is (no stat of each layer on every start): a missing
  // layer fails the mount, and is named then.
  for (auto it = diff_ids.rbegin(); it != diff_ids.rend(); ++it) {
    auto name = TRY(layer_link(store, ldir.get(), *it));
    if (!lowers.empty()) lowers += ':';
    lowers += name;
  }
  std::string data = cat("lowerdir=", lowers, ",upperdir=", upper, ",workdir=", work);
  // mount(2) reads one page of options and cuts the rest off silently (",volatile" included).
  size_t limit = static_cast<size_t>(::sysconf(_SC_PAGESIZE)) - 1 - std::string_view(",volatile").size();
  if (data.size() > limit)
    return Error(E2BIG, cat("overlay of ", diff_ids.size(), " layers: its mount options take ", data.size(),
                            " bytes, more than the kernel's ", limit, " (shorter --image-root or container ID?)"));

  // Relative lowerdir paths resolve against the working directory of the mounting
  // process; vessel is single-threaded here, so the detour is invisible.
  auto cwd = TRYC(open_file(".", O_PATH | O_DIRECTORY), "overlay mount: save the working directory");
  if (::fchdir(ldir.get()) < 0) return Error::from_errno(cat("chdir ", root, "/l"));
  // volatile: no sync of the upper fs, which overlayfs otherwise does at every
  // unmount (a journal commit of the whole host fs: 7-100 ms per container here).
  // Bundles and build steps mount their upper dir once, so nothing is lost by it.
  auto st = sys::mount("overlay", target, "overlay", flags, data + ",volatile");
  if (!st && st.error().code() == EINVAL) st = sys::mount("overlay", target, "overlay", flags, data);  // before 5.10
  int back = ::fchdir(cwd.get()) == 0 ? 0 : errno;
  if (!st) {
    if (auto* d = missing_layer(store, diff_ids)) return Error(ENOENT, cat("layer ", d->str(), " is missing from the store"));
    return std::move(st).error().context(cat("mount the overlay of ", diff_ids.size(), " layers"));
  }
  if (back != 0) {
    (void)::umount2(target.c_str(), MNT_DETACH);
    return Error::from_errno(back, "overlay mount: return to the working directory");
  }
  return ok();
}

Status remove_layer_links(const Store& store, const Digest& diff_id) {
  std::string dir = store.root() + "/l";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    if (errno == ENOENT) return ok();
    return Error::from_errno("open " + dir);
  }
  const std::string target = link_target(diff_id);
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_type != DT_LNK && e->d_type != DT_UNKNOWN) continue;
    auto t = read_link(::dirfd(d.get()), e->d_name);
    if (!t || *t != target) continue;
    if (::unlinkat(::dirfd(d.get()), e->d_name, 0) < 0 && errno != ENOENT)
      return Error::from_errno(cat("remove link ", dir, "/", e->d_name));
  }
  return ok();
}

}  // namespace vessel::image
