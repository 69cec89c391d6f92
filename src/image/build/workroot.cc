#include "image/build/workroot.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "common/crash_point.h"
#include "common/fs.h"
#include "common/strings.h"
#include "image/import.h"
#include "image/overlay.h"

namespace vessel::image::build {

Result<WorkRoot> WorkRoot::mount(Store& store, const std::vector<Digest>& diff_ids, bool readonly) {
  WorkRoot w(TRY(store.make_temp_dir("step")));
  for (const char* d : {"/rootfs", "/upper", "/work"})
    if (::mkdir((w.dir_ + d).c_str(), 0755) < 0) return Error::from_errno(cat("mkdir ", w.dir_, d));
  unsigned long flags = MS_NODEV | (readonly ? MS_RDONLY : 0);
  TRYC(mount_layers(store, diff_ids, w.dir_ + "/upper", w.dir_ + "/work", w.rootfs(), flags), "mount the build step's rootfs");
  w.mounted_ = true;
  crash_point("build.step-mounted");
  w.rootfs_fd_ = TRY(open_file(w.rootfs(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  return w;
}

WorkRoot::WorkRoot(WorkRoot&& o) noexcept
    : dir_(std::move(o.dir_)), rootfs_fd_(std::move(o.rootfs_fd_)), mounted_(o.mounted_) {
  o.dir_.clear();
  o.mounted_ = false;
}

WorkRoot::~WorkRoot() { release(); }

void WorkRoot::release() {
  rootfs_fd_.reset();
  if (mounted_) (void)::umount2(rootfs().c_str(), MNT_DETACH);
  mounted_ = false;
  if (!dir_.empty()) (void)remove_tree(dir_);
  dir_.clear();
}

Result<LayerBlob> WorkRoot::commit(Store& store) {
  rootfs_fd_.reset();
  if (mounted_ && ::umount2(rootfs().c_str(), 0) < 0) return Error::from_errno("unmount " + rootfs());
  mounted_ = false;
  auto upper = TRY(open_file(dir_ + "/upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (auto& path : drops_) {
    std::string rel = path.substr(path.find_first_not_of('/'));
    struct stat st{};
    if (::fstatat(upper.get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 &&
        ::unlinkat(upper.get(), rel.c_str(), 0) < 0)
      return Error::from_errno("remove the mount point " + path + " from the step's changes");
  }
  crash_point("build.step-unmounted");
  auto blob = TRYC(write_layer(store, upper.get()), "store the step's changes as a layer");
  TRY(ensure_layer(store, blob.descriptor.digest, blob.diff_id));
  return blob;
}

}  // namespace vessel::image::build
