#include "vmm/disk/qcow2.h"

#include <endian.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fs.h"
#include "common/strings.h"
#include "vmm/disk/raw.h"

namespace vessel::vmm::disk {

namespace {
constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ULL;
constexpr uint64_t kCopied = 1ULL << 63;
constexpr uint64_t kCompressed = 1ULL << 62;
constexpr uint64_t kZeroFlag = 1;
constexpr uint32_t kExtEnd = 0;

uint32_t be32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return be32toh(v); }
uint64_t be64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return be64toh(v); }

Status write_be64(int fd, uint64_t offset, uint64_t v) {
  uint64_t b = htobe64(v);
  return pwrite_full(fd, offset, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&b), 8));
}
}  // namespace

bool is_qcow2(std::span<const uint8_t> b) { return b.size() >= 4 && be32(b.data()) == kMagic; }

Result<Qcow2Header> parse_qcow2_header(std::span<const uint8_t> b) {
  if (b.size() < 72 || !is_qcow2(b)) return Error::invalid("not a qcow2 image");
  const uint8_t* p = b.data();
  Qcow2Header h;
  h.version = be32(p + 4);
  h.backing_file_offset = be64(p + 8);
  h.backing_file_size = be32(p + 16);
  h.cluster_bits = be32(p + 20);
  h.size = be64(p + 24);
  h.crypt_method = be32(p + 32);
  h.l1_size = be32(p + 36);
  h.l1_table_offset = be64(p + 40);
  h.refcount_table_offset = be64(p + 48);
  h.refcount_table_clusters = be32(p + 56);
  h.nb_snapshots = be32(p + 60);
  if (h.version != 2 && h.version != 3) return Error::invalid(cat("qcow2 version ", h.version, " is not supported"));
  if (h.version == 3) {
    if (b.size() < 104) return Error::invalid("truncated qcow2 v3 header");
    h.incompatible_features = be64(p + 72);
    h.autoclear_features = be64(p + 88);
    h.refcount_order = be32(p + 96);
    h.header_length = be32(p + 100);
    if (h.header_length < 104 || h.header_length > b.size()) return Error::invalid("bad qcow2 header length");
  }
  if (h.cluster_bits < 9 || h.cluster_bits > 21) return Error::invalid(cat("bad qcow2 cluster_bits ", h.cluster_bits));
  if (h.crypt_method != 0) return Error::invalid("encrypted qcow2 images are not supported");
  if (h.incompatible_features != 0)
    return Error::invalid(cat("qcow2 incompatible features ", h.incompatible_features, " are not supported (dirty, corrupt, external data, compression type or extended L2)"));
  if (h.refcount_order != 4) return Error::invalid("only 16-bit qcow2 refcounts are supported");
  const uint64_t cs = 1ULL << h.cluster_bits;
  if (h.l1_table_offset % cs || h.refcount_table_offset % cs) return Error::invalid("misaligned qcow2 tables");
  if (h.l1_size > (32u << 20) / 8 || h.refcount_table_clusters > 256) return Error::invalid("qcow2 tables too large");
  const uint64_t l2_bits = h.cluster_bits - 3;
  if (h.size > (uint64_t{h.l1_size} << (h.cluster_bits + l2_bits))) return Error::invalid("qcow2 L1 table too small for the size");
  if (h.backing_file_size > 1023) return Error::invalid("qcow2 backing file name too long");
  return h;
}

Result<std::unique_ptr<Qcow2Disk>> Qcow2Disk::open(const std::string& path, bool readonly) {
  std::unique_ptr<Qcow2Disk> d(new Qcow2Disk());
  d->readonly_ = readonly;
  d->fd_ = TRY(open_file(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  int fd = d->fd_.get();
  std::vector<uint8_t> hdr(4096);
  TRYC(pread_full(fd, 0, hdr), path);
  d->h_ = TRYC(parse_qcow2_header(hdr), path);
  const Qcow2Header& h = d->h_;
  if (!readonly && h.nb_snapshots != 0) return Error::invalid(cat(path, ": writing qcow2 images with internal snapshots is not supported"));
  d->cluster_size_ = 1ULL << h.cluster_bits;
  d->l2_entries_ = d->cluster_size_ / 8;

  std::vector<uint8_t> raw(uint64_t{h.l1_size} * 8);
  TRYC(pread_full(fd, h.l1_table_offset, raw), cat(path, ": L1 table"));
  for (uint32_t i = 0; i < h.l1_size; ++i) d->l1_.push_back(be64(&raw[i * 8]));
  raw.assign(uint64_t{h.refcount_table_clusters} * d->cluster_size_, 0);
  TRYC(pread_full(fd, h.refcount_table_offset, raw), cat(path, ": refcount table"));
  for (size_t i = 0; i < raw.size() / 8; ++i) d->refcount_table_.push_back(be64(&raw[i * 8]) & ~0x1ffULL);

  // Backing file: the name, and its format from the header extension (else probed).
  if (h.backing_file_offset != 0 && h.backing_file_size != 0) {
    std::string name(h.backing_file_size, '\0');
    TRYC(pread_full(fd, h.backing_file_offset, std::span<uint8_t>(reinterpret_cast<uint8_t*>(name.data()), name.size())),
         cat(path, ": backing file name"));
    std::string format;
    for (uint64_t off = h.header_length; off + 8 <= hdr.size();) {
      uint32_t type = be32(&hdr[off]), len = be32(&hdr[off + 4]);
      if (type == kExtEnd || off + 8 + len > hdr.size()) break;
      if (type == kQcow2ExtBackingFormat) format.assign(reinterpret_cast<const char*>(&hdr[off + 8]), len);
      off += 8 + ((len + 7) & ~7u);
    }
    if (!format.empty() && format != "raw" && format != "qcow2")
      return Error::invalid(cat(path, ": backing format ", format, " is not supported"));
    if (name[0] != '/') {
      auto slash = path.rfind('/');
      if (slash != std::string::npos) name = path.substr(0, slash + 1) + name;
    }
    if (format == "raw") d->backing_ = TRYC(RawDisk::open(name, true), cat(path, ": backing file"));
    else d->backing_ = TRYC(open_disk(name, true), cat(path, ": backing file"));
  }
  // New clusters go after the last one in use (by refcount, so a block
  // device or a file with trailing space works as well as a tight file).
  d->next_free_ = TRYC(d->end_of_used_clusters(), path);
  if (!readonly && h.version == 3 && h.autoclear_features != 0) {
    // Features we do not maintain must be cleared before we modify the image.
    TRY(write_be64(fd, 88, 0));
    d->h_.autoclear_features = 0;
  }
  return d;
}

Result<uint64_t> Qcow2Disk::end_of_used_clusters() {
  const uint64_t per_block = cluster_size_ / 2;
  std::vector<uint8_t> block(cluster_size_);
  for (size_t b = refcount_table_.size(); b-- > 0;) {
    if (refcount_table_[b] == 0) continue;
    if (refcount_table_[b] % cluster_size_) return Error::invalid("misaligned qcow2 refcount block");
    TRYC(pread_full(fd_.get(), refcount_table_[b], block), "read refcount block");
    for (uint64_t i = per_block; i-- > 0;)
      if (block[2 * i] | block[2 * i + 1]) return (b * per_block + i + 1) << h_.cluster_bits;
  }
  return Error::invalid("qcow2 image has no clusters in use");
}

Result<std::vector<uint64_t>*> Qcow2Disk::l2_table(uint64_t offset) {
  auto it = l2_cache_.find(offset);
  if (it != l2_cache_.end()) return &it->second;
  if (offset % cluster_size_) return Error::invalid("misaligned qcow2 L2 table");
  std::vector<uint8_t> raw(cluster_size_);
  TRYC(pread_full(fd_.get(), offset, raw), "read L2 table");
  std::vector<uint64_t> t(l2_entries_);
  for (uint64_t i = 0; i < l2_entries_; ++i) t[i] = be64(&raw[i * 8]);
  return &l2_cache_.emplace(offset, std::move(t)).first->second;
}

Result<uint64_t> Qcow2Disk::lookup(uint64_t vaddr) {
  uint64_t l1i = vaddr >> (h_.cluster_bits + h_.cluster_bits - 3);
  uint64_t l2i = (vaddr >> h_.cluster_bits) & (l2_entries_ - 1);
  if (l1i >= l1_.size()) return kUnallocated;
  uint64_t l2_off = l1_[l1i] & kOffsetMask;
  if (l2_off == 0) return kUnallocated;
  auto* t = TRY(l2_table(l2_off));
  uint64_t e = (*t)[l2i];
  if (e & kCompressed) return Error::invalid("compressed qcow2 clusters are not supported");
  if (h_.version == 3 && (e & kZeroFlag)) return kZero;
  uint64_t off = e & kOffsetMask;
  if (off == 0) return kUnallocated;
  if (off % cluster_size_) return Error::invalid("misaligned qcow2 data cluster");
  return off;
}

Status Qcow2Disk::read_backing(uint64_t vaddr, std::span<uint8_t> out) {
  uint64_t have = 0;
  if (backing_ && vaddr < backing_->size()) {
    have = std::min<uint64_t>(out.size(), backing_->size() - vaddr);
    TRYC(backing_->read(vaddr, out.first(have)), "backing file");
  }
  std::memset(out.data() + have, 0, out.size() - have);
  return ok();
}

Status Qcow2Disk::read(uint64_t offset, std::span<uint8_t> out) {
  if (offset > h_.size || out.size() > h_.size - offset) return Error::invalid("read past the end of the disk");
  for (size_t done = 0; done < out.size();) {
    uint64_t v = offset + done;
    uint64_t in = v & (cluster_size_ - 1);
    size_t n = std::min<uint64_t>(cluster_size_ - in, out.size() - done);
    auto part = out.subspan(done, n);
    uint64_t where = TRY(lookup(v));
    if (where == kUnallocated) TRY(read_backing(v, part));
    else if (where == kZero) std::memset(part.data(), 0, n);
    else TRY(pread_full(fd_.get(), where + in, part));
    done += n;
  }
  return ok();
}

Result<uint16_t> Qcow2Disk::refcount(uint64_t cluster_index) {
  const uint64_t per_block = cluster_size_ / 2;
  uint64_t block = cluster_index / per_block;
  if (block >= refcount_table_.size() || refcount_table_[block] == 0) return uint16_t{0};
  uint16_t v;
  TRY(pread_full(fd_.get(), refcount_table_[block] + (cluster_index % per_block) * 2,
                 std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 2)));
  return be16toh(v);
}

Status Qcow2Disk::put(uint64_t offset, std::span<const uint8_t> data) {
  Status s = pwrite_full(fd_.get(), offset, data);
  note_write(offset, data.size());  // a failed write may have changed part of it
  return s;
}

Status Qcow2Disk::put_be64(uint64_t offset, uint64_t v) {
  uint64_t b = htobe64(v);
  return put(offset, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&b), 8));
}

Status Qcow2Disk::set_refcount(uint64_t cluster_index, uint16_t value) {
  const uint64_t per_block = cluster_size_ / 2;
  uint64_t block = cluster_index / per_block;
  if (block >= refcount_table_.size() || refcount_table_[block] == 0) return Error::invalid("no refcount block");
  uint16_t v = htobe16(value);
  return put(refcount_table_[block] + (cluster_index % per_block) * 2,
                     std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 2));
}

Result<uint64_t> Qcow2Disk::allocate_cluster() {
  const uint64_t per_block = cluster_size_ / 2;
  std::vector<uint8_t> zero(cluster_size_, 0);
  for (;;) {
    uint64_t off = next_free_;
    uint64_t index = off >> h_.cluster_bits;
    uint64_t block = index / per_block;
    if (block >= refcount_table_.size()) return Error(ENOSPC, "qcow2 refcount table is full");
    if (refcount_table_[block] == 0) {
      // This cluster becomes the refcount block that covers it.
      TRY(put(off, zero));
      TRY(put_be64(h_.refcount_table_offset + block * 8, off));
      refcount_table_[block] = off;
      next_free_ += cluster_size_;
      TRY(set_refcount(index, 1));
      continue;
    }
    next_free_ += cluster_size_;
    if (TRY(refcount(index)) != 0) continue;  // in use (should not happen past the end of the file)
    TRY(put(off, zero));   // extends the file
    TRY(set_refcount(index, 1));
    return off;
  }
}

Status Qcow2Disk::write_cluster(uint64_t v, std::span<const uint8_t> data) {
  uint64_t in = v & (cluster_size_ - 1);
  uint64_t base = v - in;
  uint64_t where = TRY(lookup(v));
  if (where != kUnallocated && where != kZero) {
    uint64_t l1i = v >> (h_.cluster_bits + h_.cluster_bits - 3);
    auto* t = TRY(l2_table(l1_[l1i] & kOffsetMask));
    if ((*t)[(v >> h_.cluster_bits) & (l2_entries_ - 1)] & kCopied) return put(where + in, data);
    return Error::invalid("qcow2 cluster shared with a snapshot: not supported");
  }
  // Copy on write: the whole cluster from the backing file (or zeroes), then the new bytes.
  std::vector<uint8_t> buf(cluster_size_, 0);
  uint64_t len = std::min<uint64_t>(cluster_size_, h_.size - base);
  if (where == kUnallocated) TRY(read_backing(base, std::span<uint8_t>(buf.data(), len)));
  std::memcpy(buf.data() + in, data.data(), data.size());

  uint64_t l1i = v >> (h_.cluster_bits + h_.cluster_bits - 3);
  if (l1i >= l1_.size()) return Error::invalid("write past the qcow2 L1 table");
  if ((l1_[l1i] & kOffsetMask) == 0) {
    uint64_t l2 = TRY(allocate_cluster());
    l2_cache_[l2] = std::vector<uint64_t>(l2_entries_, 0);
    l1_[l1i] = l2 | kCopied;
    TRY(put_be64(h_.l1_table_offset + l1i * 8, l1_[l1i]));
  }
  uint64_t data_off = TRY(allocate_cluster());
  TRY(put(data_off, buf));
  uint64_t l2_off = l1_[l1i] & kOffsetMask;
  auto* t = TRY(l2_table(l2_off));
  uint64_t l2i = (v >> h_.cluster_bits) & (l2_entries_ - 1);
  (*t)[l2i] = data_off | kCopied;
  return put_be64(l2_off + l2i * 8, (*t)[l2i]);
}

Status Qcow2Disk::write(uint64_t offset, std::span<const uint8_t> data) {
  if (readonly_) return Error(EROFS, "read-only disk");
  if (offset > h_.size || data.size() > h_.size - offset) return Error::invalid("write past the end of the disk");
  for (size_t done = 0; done < data.size();) {
    uint64_t v = offset + done;
    size_t n = std::min<uint64_t>(cluster_size_ - (v & (cluster_size_ - 1)), data.size() - done);
    TRY(write_cluster(v, data.subspan(done, n)));
    done += n;
  }
  return ok();
}

Status Qcow2Disk::write_zeroes(uint64_t offset, uint64_t len) {
  std::vector<uint8_t> zero(std::min<uint64_t>(len, 1 << 20), 0);
  for (uint64_t done = 0; done < len;) {
    size_t n = std::min<uint64_t>(zero.size(), len - done);
    TRY(write(offset + done, std::span<const uint8_t>(zero.data(), n)));
    done += n;
  }
  return ok();
}

Status Qcow2Disk::flush() {
  if (readonly_) return ok();
  if (::fdatasync(fd_.get()) < 0) return Error::from_errno("fdatasync");
  return ok();
}

}  // namespace vessel::vmm::disk
