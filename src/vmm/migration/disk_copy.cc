#include "vmm/migration/disk_copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fs.h"
#include "common/strings.h"
#include "vmm/disk/raw.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/virtio/block/block.h"

namespace vessel::vmm::migration {

namespace {
constexpr uint64_t kChunk = disk::FileWriteLog::kChunk;

bool all_zero(std::span<const uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

Result<uint64_t> file_size(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return Error::from_errno(cat("disk ", path));
  return static_cast<uint64_t>(st.st_size);
}

// The block device of transport `i` (nullptr: another kind).
virtio::BlockDevice* block_of(Machine& m, size_t i) {
  return dynamic_cast<virtio::BlockDevice*>(&m.virtio_transport(i).device());
}
}  // namespace

// ---- sender -------------------------------------------------------------------------

Result<FileCopier> FileCopier::open(uint32_t device, const std::string& path) {
  FileCopier f;
  f.device_ = device;
  f.path_ = path;
  f.fd_ = TRYC(open_file(path, O_RDONLY | O_CLOEXEC), cat("disk ", path));
  struct stat st {};
  if (::fstat(f.fd_.get(), &st) < 0) return Error::from_errno(cat("disk ", path));
  if (!S_ISREG(st.st_mode))
    return Error::invalid(cat("disk ", path, " is not a regular file (a block device?): --copy-disks copies image files"));
  f.log_ = std::make_shared<disk::FileWriteLog>();
  return f;
}

Status FileCopier::send(const SendFn& send) {
  if (!whole_sent_) return send_whole(send).context(cat("copy disk ", path_));
  return send_changed(send).context(cat("copy disk ", path_));
}

Status FileCopier::send_size(const SendFn& send, uint64_t size) {
  if (size > kMaxDiskFile) return Error::invalid(cat("the file has ", size, " bytes (at most 16 TiB are copied)"));
  DiskChunk c;
  c.device = device_;
  c.op = DiskOp::kSize;
  c.offset = size;
  TRY(send(encode_disk(c)));
  size_ = size;
  return ok();
}

Status FileCopier::send_whole(const SendFn& send) {
  log_->take();  // what changed before is read now
  uint64_t size = TRY(file_size(fd_.get(), path_));
  TRY(send_size(send, size));
  // The data extents only (a sparse file's holes read as zero on the destination too).
  for (uint64_t at = 0; at < size;) {
    off_t data = ::lseek(fd_.get(), static_cast<off_t>(at), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data after `at`
      if (errno != EINVAL) return Error::from_errno("lseek SEEK_DATA");
      data = static_cast<off_t>(at);  // no SEEK_DATA here: all of it
    }
    off_t hole = ::lseek(fd_.get(), data, SEEK_HOLE);
    uint64_t end = hole < 0 ? size : std::min<uint64_t>(static_cast<uint64_t>(hole), size);
    if (static_cast<uint64_t>(data) >= end) break;
    TRY(send_range(send, static_cast<uint64_t>(data), end - static_cast<uint64_t>(data), true));
    at = end;
  }
  whole_sent_ = true;
  return ok();
}

Status FileCopier::send_changed(const SendFn& send) {
  std::vector<uint64_t> bits = log_->take();
  uint64_t size = TRY(file_size(fd_.get(), path_));
  if (size != size_) TRY(send_size(send, size));
  const uint64_t chunks = (size + kChunk - 1) / kChunk;
  auto set = [&](uint64_t i) { return i / 64 < bits.size() && ((bits[i / 64] >> (i % 64)) & 1); };
  for (uint64_t i = 0; i < chunks;) {
    if (!set(i)) {
      ++i;
      continue;
    }
    uint64_t run = i;
    while (run < chunks && set(run) && run - i < kMaxDiskData / kChunk) ++run;
    uint64_t offset = i * kChunk;
    TRY(send_range(send, offset, std::min(run * kChunk, size) - offset, false));
    i = run;
  }
  return ok();
}

Status FileCopier::send_range(const SendFn& send, uint64_t offset, uint64_t len, bool skip_zero) {
  buf_.resize(kMaxDiskData);
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kMaxDiskData, len - done));
    std::span<uint8_t> piece(buf_.data(), n);
    TRY(disk::pread_full(fd_.get(), offset + done, piece));  // past EOF (shrunk meanwhile): zeroes
    DiskChunk c;
    c.device = device_;
    c.offset = offset + done;
    if (all_zero(piece)) {
      if (!skip_zero) {
        c.op = DiskOp::kZero;
        c.length = n;
        TRY(send(encode_disk(c)));
      }
    } else {
      c.op = DiskOp::kData;
      c.data = piece;
      TRY(send(encode_disk(c)));
      bytes_ += n;
    }
    done += n;
  }
  return ok();
}

Result<std::unique_ptr<DiskCopier>> DiskCopier::start(Machine& m, const snapshot::VmSpec& spec) {
  std::unique_ptr<DiskCopier> c(new DiskCopier(m));
  for (size_t i = 0; i < spec.devices.size() && i < m.virtio_count(); ++i) {
    const auto& d = spec.devices[i];
    if (d.kind != snapshot::DeviceSpec::Kind::kBlock || d.block.readonly) continue;
    if (!block_of(m, i)) return Error::invalid(cat("device ", i, " (", d.path, ") is not the virtio-blk its spec says"));
    c->files_.push_back(TRY(FileCopier::open(static_cast<uint32_t>(i), d.path)));
  }
  // Only now that every file is open: noting starts, before the first read.
  for (auto& f : c->files_) {
    auto log = f.log();
    TRYC(m.virtio_transport(f.device()).update_device([&](virtio::VirtioDevice& dev) {
      static_cast<virtio::BlockDevice&>(dev).set_write_log(log);
      return ok();
    }),
         cat("disk ", f.path()));
  }
  return c;
}

DiskCopier::~DiskCopier() {
  for (auto& f : files_)
    (void)m_.virtio_transport(f.device()).update_device([](virtio::VirtioDevice& dev) {
      static_cast<virtio::BlockDevice&>(dev).set_write_log(nullptr);
      return ok();
    });
}

Status DiskCopier::send(Connection& conn) {
  for (auto& f : files_)
    TRY(f.send([&](std::span<const uint8_t> payload) { return conn.send(FrameType::kDisk, payload); }));
  return ok();
}

uint64_t DiskCopier::bytes_sent() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f.bytes_sent();
  return n;
}

// ---- receiver -----------------------------------------------------------------------

Result<std::unique_ptr<CopiedDisks>> CopiedDisks::open(const std::string& dir) {
  std::unique_ptr<CopiedDisks> c(new CopiedDisks());
  c->dir_ = absolute_path(dir);
  c->dir_fd_ = TRYC(open_file(c->dir_, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "disk directory");
  return c;
}

CopiedDisks::~CopiedDisks() {
  if (committed_) return;
  for (auto& f : files_)
    if (f.fd) (void)::unlinkat(dir_fd_.get(), f.name.c_str(), 0);
}

Result<CopiedDisks::File*> CopiedDisks::file(uint32_t device) {
  if (device >= files_.size() || !files_[device].fd) return Error::invalid(cat("disk of device ", device, ": not created"));
  return &files_[device];
}

Status CopiedDisks::set_size(uint32_t device, uint64_t size) {
  if (device >= spec_.devices.size()) return Error::invalid(cat("disk of device ", device, ": no such device"));
  if (files_.size() < spec_.devices.size()) files_.resize(spec_.devices.size());
  File& f = files_[device];
  if (!f.fd) {
    // The source file's name (the source's directories mean nothing here).
    const std::string& src = spec_.devices[device].path;
    std::string name = src.substr(src.find_last_of('/') + 1);
    if (name.empty() || name == "." || name == "..")
      return Error::invalid(cat("disk of device ", device, ": '", src, "' names no file"));
    for (const auto& other : files_)
      if (other.fd && other.path == path_join(dir_, name))
        return Error::invalid(cat("disks of two devices are both named '", name, "'"));
    int fd = ::openat(dir_fd_.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return Error::from_errno(cat("create the copy of disk ", src, " as ", path_join(dir_, name)));
    f.fd = UniqueFd(fd);
    f.name = name;
    f.path = path_join(dir_, name);
  }
  if (::ftruncate(f.fd.get(), static_cast<off_t>(size)) < 0) return Error::from_errno(cat("resize ", f.path));
  return ok();
}

Status CopiedDisks::write(uint32_t device, uint64_t offset, std::span<const uint8_t> data) {
  File* f = TRY(file(device));
  TRYC(disk::pwrite_full(f->fd.get(), offset, data), f->path);
  bytes_ += data.size();
  return ok();
}

Status CopiedDisks::zero(uint32_t device, uint64_t offset, uint64_t len) {
  File* f = TRY(file(device));
  if (::fallocate(f->fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(len)) == 0)
    return ok();
  std::vector<uint8_t> zeroes(static_cast<size_t>(std::min<uint64_t>(len, kMaxDiskData)), 0);
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeroes.size(), len - done));
    TRYC(disk::pwrite_full(f->fd.get(), offset + done, std::span<const uint8_t>(zeroes.data(), n)), f->path);
    done += n;
  }
  return ok();
}

Status CopiedDisks::finish(snapshot::SnapshotState& s) {
  for (size_t i = 0; i < files_.size(); ++i) {
    File& f = files_[i];
    if (!f.fd) continue;
    if (::fsync(f.fd.get()) < 0) return Error::from_errno(cat("fsync ", f.path));
    if (i >= s.spec.devices.size() || s.spec.devices[i].kind != snapshot::DeviceSpec::Kind::kBlock)
      return Error::invalid(cat("the state's device ", i, " is not the disk that was copied"));
    const std::string old = s.spec.devices[i].path;
    s.spec.devices[i].path = f.path;
    snapshot::DiskRecord now = TRY(snapshot::disk_record(f.path));
    for (auto& r : s.disks)
      if (r.path == old) r = now;
  }
  return ok();
}

}  // namespace vessel::vmm::migration
