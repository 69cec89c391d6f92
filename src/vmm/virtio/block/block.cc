#include "vmm/virtio/block/block.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {

namespace {
// Calls fn(host, disk_offset_delta, n) over `len` bytes of one direction's segments, after skipping `skip`.
template <class Fn>
Status for_each_data(const DescriptorChain& c, bool writable, uint64_t skip, uint64_t len, Fn fn) {
  uint64_t done = 0;
  for (const Segment& s : c.segments) {
    if (done == len) break;
    if (s.writable != writable) continue;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    uint64_t n = std::min<uint64_t>(s.len - skip, len - done);
    TRY(fn(s.host + skip, done, n));
    done += n;
    skip = 0;
  }
  return ok();
}

struct DiscardSegment {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};
static_assert(sizeof(DiscardSegment) == 16);
}  // namespace

Result<std::unique_ptr<BlockDevice>> BlockDevice::create(std::unique_ptr<disk::DiskImage> disk, BlockOptions opts) {
  if (!opts.readonly && disk->readonly()) opts.readonly = true;
  std::unique_ptr<BlockDevice> d(new BlockDevice(std::move(disk), std::move(opts)));
  TRY(d->limiter_.init(true));  // always a timer: PATCH /drives may limit it later
  return d;
}

uint32_t BlockDevice::device_type() const { return kTypeBlock; }

uint64_t BlockDevice::device_features() const {
  uint64_t f = bit(blk::kFSegMax) | bit(blk::kFBlkSize) | bit(blk::kFFlush);
  if (opts_.readonly) f |= bit(blk::kFRo);
  else f |= bit(blk::kFDiscard) | bit(blk::kFWriteZeroes);
  return f;
}

void BlockDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
  uint8_t cfg[60] = {};
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(cfg + at, &v, 4); };
  uint64_t cap = capacity_sectors();
  std::memcpy(cfg, &cap, 8);
  put32(12, blk::kSegMax);
  put32(20, blk::kSectorSize);                 // blk_size
  put32(36, blk::kMaxDiscardSectors);          // max_discard_sectors
  put32(40, 1);                                // max_discard_seg
  put32(44, 1);                                // discard_sector_alignment
  put32(48, blk::kMaxDiscardSectors);          // max_write_zeroes_sectors
  put32(52, 1);                                // max_write_zeroes_seg
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof cfg ? cfg[offset + i] : 0;
}

std::vector<int> BlockDevice::event_fds() const {
  if (limiter_.timer_fd() >= 0) return {limiter_.timer_fd()};
  return {};
}

Status BlockDevice::process_event(DeviceHost& host, int fd) {
  if (fd == limiter_.timer_fd()) {
    limiter_.timer_fired();
    return process_queue(host, 0);
  }
  return ok();
}

void BlockDevice::report_metrics(const MetricFn& put) const {
  put("read_count", read_count_.get());
  put("read_bytes", read_bytes_.get());
  put("write_count", write_count_.get());
  put("write_bytes", write_bytes_.get());
  put("flush_count", flush_count_.get());
  put("queue_event_count", queue_event_count_.get());
  put("invalid_reqs_count", invalid_reqs_count_.get());
  put("rate_limiter_throttled_events", limiter_.throttled());
  put("update_count", update_count_.get());
}

Status BlockDevice::replace_disk(std::unique_ptr<disk::DiskImage> disk) {
  if (copying_) return Error(EBUSY, "a migration is copying this drive's image (--copy-disks): it cannot be replaced now");
  TRYC(disk_->flush(), "flush the old image");
  disk_ = std::move(disk);
  update_count_.add();
  return ok();
}

void BlockDevice::set_rate_limits(uint64_t bytes_per_sec, uint64_t ops_per_sec) {
  opts_.bandwidth = bytes_per_sec;
  opts_.iops = ops_per_sec;
  limiter_.set_rates(bytes_per_sec, ops_per_sec);
  update_count_.add();
}

Status BlockDevice::process_queue(DeviceHost& host, unsigned index) {
  Queue& q = host.queue(index);
  queue_event_count_.add();
  bool used = false;
  bool more = true;
  while (more) {
    while (limiter_.admit(RateLimiter::now_ns())) {
      auto chain = TRY(q.pop(host.memory()));
      if (!chain) break;
      uint32_t written = TRY(handle_request(*chain));
      TRY(q.add_used(chain->head, written));
      used = true;
    }
    more = !limiter_.blocked() && q.enable_notification();
  }
  if (used) host.notify_used(index);
  return ok();
}

Result<uint32_t> BlockDevice::handle_request(const DescriptorChain& c) {
  if (c.writable_bytes == 0) return Error::invalid("block request without a status byte");
  uint8_t hdr[16];
  uint32_t written = 0;
  uint8_t status;
  if (c.readable_bytes < sizeof hdr) {
    status = blk::kSIoErr;
  } else {
    copy_from_chain(c, 0, hdr);
    uint32_t type;
    uint64_t sector;
    std::memcpy(&type, hdr, 4);
    std::memcpy(&sector, hdr + 8, 8);
    status = serve(type, sector, c, 0, written);
  }
  // The status is the last writable byte.
  copy_to_chain(c, c.writable_bytes - 1, std::span<const uint8_t>(&status, 1));
  return written + 1;
}

uint8_t BlockDevice::serve(uint32_t type, uint64_t sector, const DescriptorChain& c, uint64_t, uint32_t& written) {
  const uint64_t size = disk_->size();
  auto in_range = [&](uint64_t sec, uint64_t bytes) {
    return sec <= size / blk::kSectorSize && bytes <= size - sec * blk::kSectorSize;
  };
  auto fail = [&](const Error& e) {
    log::debug("virtio-blk", e.message());
    return blk::kSIoErr;
  };
  switch (type) {
    case blk::kTIn: {
      uint64_t len = c.writable_bytes - 1;
      if (len % blk::kSectorSize || !in_range(sector, len)) return blk::kSIoErr;
      limiter_.consume(len);
      uint64_t base = sector * blk::kSectorSize;
      auto st = for_each_data(c, true, 0, len, [&](uint8_t* p, uint64_t at, uint64_t n) {
        return disk_->read(base + at, std::span<uint8_t>(p, n));
      });
      if (!st) return fail(st.error());
      written = static_cast<uint32_t>(len);
      read_count_.add();
      read_bytes_.add(len);
      return blk::kSOk;
    }
    case blk::kTOut: {
      if (opts_.readonly) return blk::kSIoErr;
      uint64_t len = c.readable_bytes - 16;
      if (len % blk::kSectorSize || !in_range(sector, len)) return blk::kSIoErr;
      limiter_.consume(len);
      uint64_t base = sector * blk::kSectorSize;
      auto st = for_each_data(c, false, 16, len, [&](uint8_t* p, uint64_t at, uint64_t n) {
        return disk_->write(base + at, std::span<const uint8_t>(p, n));
      });
      if (!st) return fail(st.error());
      write_count_.add();
      write_bytes_.add(len);
      return blk::kSOk;
    }
    case blk::kTFlush: {
      limiter_.consume(0);
      flush_count_.add();
      auto st = disk_->flush();
      return st ? blk::kSOk : fail(st.error());
    }
    case blk::kTGetId: {
      uint8_t id[blk::kIdBytes] = {};
      std::memcpy(id, opts_.serial.data(), std::min(opts_.serial.size(), sizeof id));
      uint64_t len = std::min<uint64_t>(c.writable_bytes - 1, sizeof id);
      copy_to_chain(c, 0, std::span<const uint8_t>(id, len));
      written = static_cast<uint32_t>(len);
      return blk::kSOk;
    }
    case blk::kTDiscard:
    case blk::kTWriteZeroes: {
      if (opts_.readonly) return blk::kSIoErr;
      if (c.readable_bytes - 16 != sizeof(DiscardSegment)) return blk::kSUnsupp;  // max_*_seg is 1
      DiscardSegment seg;
      uint8_t raw[sizeof seg];
      copy_from_chain(c, 16, raw);
      std::memcpy(&seg, raw, sizeof seg);
      uint64_t bytes = uint64_t{seg.num_sectors} * blk::kSectorSize;
      if (seg.num_sectors > blk::kMaxDiscardSectors || !in_range(seg.sector, bytes)) return blk::kSIoErr;
      if (seg.flags & ~1u) return blk::kSUnsupp;
      limiter_.consume(bytes);
      uint64_t off = seg.sector * blk::kSectorSize;
      auto st = type == blk::kTDiscard ? disk_->discard(off, bytes) : disk_->write_zeroes(off, bytes);
      return st ? blk::kSOk : fail(st.error());
    }
    default:
      invalid_reqs_count_.add();
      return blk::kSUnsupp;
  }
}

}  // namespace vessel::vmm::virtio
