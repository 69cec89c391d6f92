#include "vmm/disk/raw.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"

namespace vessel::vmm::disk {

Status pread_full(int fd, uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(cat("read at ", offset + done));
    if (n == 0) {
      std::memset(out.data() + done, 0, out.size() - done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return ok();
}

Status pwrite_full(int fd, uint64_t offset, std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(cat("write at ", offset + done));
    done += static_cast<size_t>(n);
  }
  return ok();
}

Result<std::unique_ptr<RawDisk>> RawDisk::open(const std::string& path, bool readonly) {
  UniqueFd fd = TRY(open_file(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Error::from_errno(cat("stat ", path));
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode) && ::ioctl(fd.get(), BLKGETSIZE64, &size) < 0) return Error::from_errno(cat("size of ", path));
  return std::make_unique<RawDisk>(std::move(fd), size, readonly);
}

Status RawDisk::read(uint64_t offset, std::span<uint8_t> out) { return pread_full(fd_.get(), offset, out); }

Status RawDisk::write(uint64_t offset, std::span<const uint8_t> data) {
  if (readonly_) return Error(EROFS, "read-only disk");
  Status s = pwrite_full(fd_.get(), offset, data);
  note_write(offset, data.size());  // a failed write may have changed part of it
  return s;
}

Status RawDisk::flush() {
  if (::fdatasync(fd_.get()) < 0 && errno != EINVAL) return Error::from_errno("fdatasync");
  return ok();
}

Status RawDisk::discard(uint64_t offset, uint64_t len) {
  if (readonly_) return Error(EROFS, "read-only disk");
  int r = ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                      static_cast<off_t>(len));
  int err = errno;
  note_write(offset, len);
  if (r < 0 && err != EOPNOTSUPP) return Error(err, "punch hole");
  return ok();
}

Status RawDisk::write_zeroes(uint64_t offset, uint64_t len) {
  if (readonly_) return Error(EROFS, "read-only disk");
  ScopeExit noted([&] { note_write(offset, len); });
  if (::fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0) return ok();
  std::vector<uint8_t> zero(std::min<uint64_t>(len, 1 << 20), 0);
  for (uint64_t done = 0; done < len;) {
    size_t n = std::min<uint64_t>(zero.size(), len - done);
    TRY(pwrite_full(fd_.get(), offset + done, std::span<const uint8_t>(zero.data(), n)));
    done += n;
  }
  return ok();
}

}  // namespace vessel::vmm::disk
