// Qcow2Disk: a qcow2 (version 2 or 3) image, as `qemu-img create -f qcow2
// [-b base -F raw|qcow2]` makes it. Unallocated clusters read from the
// backing file (or as zeroes); a write allocates a cluster at the end of the
// file (copying the rest of the cluster from the backing file) and sets its
// refcount to 1, so `qemu-img check` stays clean. Not supported: compressed
// clusters, encryption, internal snapshots (for writing), external data
// files, extended L2 entries, refcount widths other than 16 bits, images
// whose refcount table would have to grow.
#pragma once

#include <unordered_map>
#include <vector>

#include "common/unique_fd.h"
#include "vmm/disk/disk.h"

namespace vessel::vmm::disk {

// Header extension type of the backing file's format name ("raw", "qcow2").
inline constexpr uint32_t kQcow2ExtBackingFormat = 0xe2792aca;

// The parts of the header we use (host byte order).
struct Qcow2Header {
  uint32_t version = 0;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 0;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t incompatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = 72;
};

// Parses and checks a header (the first bytes of the file).
Result<Qcow2Header> parse_qcow2_header(std::span<const uint8_t> bytes);
bool is_qcow2(std::span<const uint8_t> first_bytes);

class Qcow2Disk : public DiskImage {
 public:
  static Result<std::unique_ptr<Qcow2Disk>> open(const std::string& path, bool readonly);

  uint64_t size() const override { return h_.size; }
  bool readonly() const override { return readonly_; }
  Status read(uint64_t offset, std::span<uint8_t> out) override;
  Status write(uint64_t offset, std::span<const uint8_t> data) override;
  Status flush() override;
  // A hint only: clusters stay allocated.
  Status discard(uint64_t offset, uint64_t len) override { return ok(); }
  Status write_zeroes(uint64_t offset, uint64_t len) override;

 private:
  Qcow2Disk() = default;
  // Where a guest cluster is: kUnallocated, kZero, or a host offset.
  static constexpr uint64_t kUnallocated = 0, kZero = 1;
  Result<uint64_t> lookup(uint64_t vaddr);
  Result<std::vector<uint64_t>*> l2_table(uint64_t offset);
  // Reads guest bytes of one cluster from the backing file (zeroes past its end).
  Status read_backing(uint64_t vaddr, std::span<uint8_t> out);
  // Writes within one guest cluster.
  Status write_cluster(uint64_t vaddr, std::span<const uint8_t> data);
  Result<uint64_t> allocate_cluster();
  Result<uint64_t> end_of_used_clusters();
  Result<uint16_t> refcount(uint64_t cluster_index);
  Status set_refcount(uint64_t cluster_index, uint16_t value);
  // Every change of the file goes through these (pwrite, then note_write).
  Status put(uint64_t offset, std::span<const uint8_t> data);
  Status put_be64(uint64_t offset, uint64_t v);

  UniqueFd fd_;
  bool readonly_ = true;
  Qcow2Header h_;
  uint64_t cluster_size_ = 0;
  uint64_t l2_entries_ = 0;
  std::vector<uint64_t> l1_;
  std::vector<uint64_t> refcount_table_;
  std::unordered_map<uint64_t, std::vector<uint64_t>> l2_cache_;
  std::unique_ptr<DiskImage> backing_;
  uint64_t next_free_ = 0;
};

}  // namespace vessel::vmm::disk
