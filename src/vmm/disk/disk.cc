#include "vmm/disk/disk.h"

#include <fcntl.h>

#include "common/fs.h"
#include "vmm/disk/qcow2.h"
#include "vmm/disk/raw.h"

namespace vessel::vmm::disk {

Result<std::unique_ptr<DiskImage>> open_disk(const std::string& path, bool readonly) {
  UniqueFd fd = TRY(open_file(path, O_RDONLY | O_CLOEXEC));
  uint8_t magic[4] = {};
  TRYC(pread_full(fd.get(), 0, magic), path);
  std::unique_ptr<DiskImage> d;
  if (is_qcow2(magic)) d = TRY(Qcow2Disk::open(path, readonly));
  else d = TRY(RawDisk::open(path, readonly));
  return d;
}

}  // namespace vessel::vmm::disk
