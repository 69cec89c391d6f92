// --copy-disks: the writable disks' image files travel with the VM, for
// hosts that share no storage.
//
// The sender (DiskCopier) copies each file while the guest runs (its data
// extents, SEEK_DATA/SEEK_HOLE, all-zero pieces left out: the destination's
// file starts as a hole) with the block device noting every change of the file
// meanwhile (disk::FileWriteLog: data, and a qcow2 overlay's own metadata, at
// file offsets), resends the changed 64 KiB chunks each round, and after the
// pause the last ones. The files are copied as they are: a qcow2 overlay stays
// an overlay whose backing file (by the path in its header) must be reachable
// on the destination too. Read-only disks are not copied.
//
// The receiver (CopiedDisks) creates each file in its disk directory under the
// source file's name (never replacing a file there; the source does not choose
// the directory), and removes them again unless the migration completes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/disk/write_log.h"
#include "vmm/machine.h"
#include "vmm/migration/protocol.h"
#include "vmm/migration/transport.h"
#include "vmm/snapshot/state.h"

namespace vessel::vmm::migration {

// One image file's copy (device `device` of the MACHINE): all of it the first
// time, then what changed since (as marked in log()).
class FileCopier {
 public:
  // Sends one DISK payload.
  using SendFn = std::function<Status(std::span<const uint8_t> payload)>;
  static Result<FileCopier> open(uint32_t device, const std::string& path);
  // Where the image's changes must be marked (DiskImage::set_write_log) before the first send.
  const std::shared_ptr<disk::FileWriteLog>& log() const { return log_; }
  Status send(const SendFn& send);
  uint32_t device() const { return device_; }
  const std::string& path() const { return path_; }
  uint64_t bytes_sent() const { return bytes_; }

 private:
  FileCopier() = default;
  Status send_whole(const SendFn& send);
  Status send_changed(const SendFn& send);
  Status send_size(const SendFn& send, uint64_t size);
  // Bytes [offset, offset + len): DATA pieces of up to 1 MiB, ZERO for
  // all-zero ones (or none when `skip_zero`: the destination has zeroes there).
  Status send_range(const SendFn& send, uint64_t offset, uint64_t len, bool skip_zero);
  uint32_t device_ = 0;
  std::string path_;
  UniqueFd fd_;
  std::shared_ptr<disk::FileWriteLog> log_;
  uint64_t size_ = UINT64_MAX;  // as last sent
  bool whole_sent_ = false;
  std::vector<uint8_t> buf_;
  uint64_t bytes_ = 0;
};

// The machine's writable disks, each a FileCopier whose log its block device fills.
class DiskCopier {
 public:
  // Starts noting the changes of the machine's writable disks (the devices
  // of `spec` that are writable virtio-blk). Stops in the destructor.
  static Result<std::unique_ptr<DiskCopier>> start(Machine& m, const snapshot::VmSpec& spec);
  ~DiskCopier();
  DiskCopier(const DiskCopier&) = delete;
  DiskCopier& operator=(const DiskCopier&) = delete;

  // Every file whole (the first call), or what changed since the last call.
  Status send(Connection& conn);
  size_t disks() const { return files_.size(); }
  uint64_t bytes_sent() const;

 private:
  explicit DiskCopier(Machine& m) : m_(m) {}
  Machine& m_;
  std::vector<FileCopier> files_;
};

class CopiedDisks : public DiskSink {
 public:
  // Files go into directory `dir` (it must exist), named after the source
  // files of the devices of `spec`.
  static Result<std::unique_ptr<CopiedDisks>> open(const std::string& dir);
  ~CopiedDisks() override;  // removes the files unless commit() came

  // The device specs the MACHINE frame brought (for the file names).
  void set_spec(const snapshot::VmSpec& spec) { spec_ = spec; }
  Status set_size(uint32_t device, uint64_t size) override;
  Status write(uint32_t device, uint64_t offset, std::span<const uint8_t> data) override;
  Status zero(uint32_t device, uint64_t offset, uint64_t len) override;

  // Makes the files durable, and points the state's devices (and its disk
  // records, which restore compares with the files) at them.
  Status finish(snapshot::SnapshotState& s);
  // The migration completed: the files stay.
  void commit() { committed_ = true; }
  uint64_t bytes_written() const { return bytes_; }

 private:
  struct File {
    std::string name;  // in the directory, as created
    std::string path;
    UniqueFd fd;
  };
  CopiedDisks() = default;
  Result<File*> file(uint32_t device);
  std::string dir_;
  UniqueFd dir_fd_;
  snapshot::VmSpec spec_;
  std::vector<File> files_;  // by device
  uint64_t bytes_ = 0;
  bool committed_ = false;
};

}  // namespace vessel::vmm::migration
