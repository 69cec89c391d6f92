#include "vmm/disk/qcow2_create.h"

#include <endian.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "vmm/disk/disk.h"
#include "vmm/disk/qcow2.h"
#include "vmm/disk/raw.h"

namespace vessel::vmm::disk {

namespace {
constexpr uint32_t kClusterBits = 16;
constexpr uint64_t kCluster = 1ULL << kClusterBits;
constexpr uint32_t kHeaderLength = 104;

void be32_at(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  v = htobe32(v);
  std::memcpy(b.data() + off, &v, 4);
}
void be64_at(std::vector<uint8_t>& b, size_t off, uint64_t v) {
  v = htobe64(v);
  std::memcpy(b.data() + off, &v, 8);
}
}  // namespace

Status create_qcow2_overlay(const std::string& path, const std::string& backing) {
  if (backing.empty() || backing[0] != '/') return Error::invalid(cat("backing file '", backing, "' is not an absolute path"));
  if (backing.size() > 1023) return Error::invalid("backing file path is longer than 1023 bytes");
  uint64_t size = 0;
  std::string format = "raw";
  {
    auto base = TRYC(open_disk(backing, /*readonly=*/true), cat("backing file ", backing));
    size = base->size();
    UniqueFd fd = TRY(open_file(backing, O_RDONLY | O_CLOEXEC));
    uint8_t magic[4] = {};
    TRYC(pread_full(fd.get(), 0, magic), backing);
    if (is_qcow2(magic)) format = "qcow2";
  }
  // Clusters: 0 header (+ extensions + backing name), 1 refcount table,
  // 2 the refcount block covering the first 2 GiB, 3.. the L1 table.
  const uint64_t l2_entries = kCluster / 8;
  const uint64_t l1_size = (size + kCluster * l2_entries - 1) / (kCluster * l2_entries);
  const uint64_t l1_clusters = std::max<uint64_t>(1, (l1_size * 8 + kCluster - 1) / kCluster);
  const uint64_t clusters = 3 + l1_clusters;
  if (clusters > kCluster / 2) return Error::invalid(cat("a disk of ", size, " bytes is too large for an overlay"));

  std::vector<uint8_t> img(clusters * kCluster, 0);
  be32_at(img, 0, 0x514649fb);  // "QFI\xfb"
  be32_at(img, 4, 3);
  be32_at(img, 20, kClusterBits);
  be64_at(img, 24, size);
  be32_at(img, 36, static_cast<uint32_t>(l1_size));
  be64_at(img, 40, 3 * kCluster);  // L1 table
  be64_at(img, 48, 1 * kCluster);  // refcount table
  be32_at(img, 56, 1);             // refcount table clusters
  be32_at(img, 96, 4);             // refcount order: 16 bits
  be32_at(img, 100, kHeaderLength);
  // Header extensions: the backing format, then the end marker; the backing name after them.
  size_t at = kHeaderLength;
  be32_at(img, at, kQcow2ExtBackingFormat);
  be32_at(img, at + 4, static_cast<uint32_t>(format.size()));
  std::memcpy(img.data() + at + 8, format.data(), format.size());
  at += 8 + ((format.size() + 7) & ~size_t(7));
  at += 8;  // end of extensions (type 0, length 0)
  be64_at(img, 8, at);
  be32_at(img, 16, static_cast<uint32_t>(backing.size()));
  std::memcpy(img.data() + at, backing.data(), backing.size());
  // Refcount table entry 0 -> block at cluster 2; every metadata cluster has refcount 1.
  be64_at(img, 1 * kCluster, 2 * kCluster);
  for (uint64_t c = 0; c < clusters; ++c) {
    uint16_t one = htobe16(1);
    std::memcpy(img.data() + 2 * kCluster + c * 2, &one, 2);
  }

  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Error::from_errno(cat("create ", path));
  UniqueFd f(fd);
  if (auto s = pwrite_full(fd, 0, img); !s || ::fsync(fd) < 0) {
    (void)::unlink(path.c_str());
    return s ? Error::from_errno(cat("write ", path)) : std::move(s).error().context(cat("write ", path));
  }
  return ok();
}

}  // namespace vessel::vmm::disk
