// Block I/O: v1 blkio.*, v2 io.weight / io.bfq.weight / io.max.
#include "cgroups/controllers.h"
#include "common/log.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

std::string dev(int64_t major, int64_t minor) { return cat(major, ":", minor); }

Status write_throttles_v1(const CgroupDir& dir, const char* file, const std::vector<oci::LinuxThrottleDevice>& v) {
  for (const auto& d : v) TRY(dir.write(file, cat(dev(d.major, d.minor), " ", d.rate)));
  return ok();
}

Status write_throttles_v2(const CgroupDir& dir, const char* key, const std::vector<oci::LinuxThrottleDevice>& v) {
  // io.max takes any subset of its keys; 0 means no limit.
  for (const auto& d : v)
    TRY(dir.write("io.max", cat(dev(d.major, d.minor), " ", key, "=", d.rate ? std::to_string(d.rate) : "max")));
  return ok();
}

// The range of blkio.weight (CFQ) and of the spec's weight fields.
Status check_weight(const char* field, uint16_t weight) {
  if (weight < 10 || weight > 1000) return Error::invalid(cat(field, ": ", weight, " is outside [10, 1000]"));
  return ok();
}

Status check_weights(const oci::LinuxBlockIo& b) {
  if (b.weight) TRY(check_weight("linux.resources.blockIO.weight", *b.weight));
  if (b.leaf_weight) TRY(check_weight("linux.resources.blockIO.leafWeight", *b.leaf_weight));
  for (const auto& d : b.weight_device) {
    if (d.weight) TRY(check_weight("linux.resources.blockIO.weightDevice[].weight", *d.weight));
    if (d.leaf_weight) TRY(check_weight("linux.resources.blockIO.weightDevice[].leafWeight", *d.leaf_weight));
  }
  return ok();
}

}  // namespace

bool is_set(const oci::LinuxBlockIo& b) {
  return b.weight || b.leaf_weight || !b.weight_device.empty() || !b.throttle_read_bps_device.empty() ||
         !b.throttle_write_bps_device.empty() || !b.throttle_read_iops_device.empty() ||
         !b.throttle_write_iops_device.empty();
}

uint64_t blkio_weight_to_io_weight(uint64_t weight) {
  if (weight == 0) return 0;
  if (weight < 10) weight = 10;
  if (weight > 1000) weight = 1000;
  return 1 + (weight - 10) * 9999 / 990;
}

Status apply_blkio_v1(const CgroupDir& dir, const oci::LinuxBlockIo& b) {
  // CFQ's blkio.weight is gone from kernels >= 5.0; BFQ offers blkio.bfq.weight with the same range.
  TRY(check_weights(b));
  const bool cfq = dir.has("blkio.weight");
  const bool bfq = !cfq && dir.has("blkio.bfq.weight");
  if (b.weight) {
    if (!cfq && !bfq) return Error(ENOTSUP, "linux.resources.blockIO.weight: no CFQ or BFQ I/O scheduler weight file");
    TRY(dir.write(cfq ? "blkio.weight" : "blkio.bfq.weight", std::to_string(*b.weight)));
  }
  if (b.leaf_weight) TRY(dir.write("blkio.leaf_weight", std::to_string(*b.leaf_weight)));
  for (const auto& d : b.weight_device) {
    if (d.weight) {
      if (!cfq && !bfq)
        return Error(ENOTSUP, "linux.resources.blockIO.weightDevice: no CFQ or BFQ I/O scheduler weight file");
      TRY(dir.write(cfq ? "blkio.weight_device" : "blkio.bfq.weight_device",
                    cat(dev(d.major, d.minor), " ", *d.weight)));
    }
    if (d.leaf_weight) TRY(dir.write("blkio.leaf_weight_device", cat(dev(d.major, d.minor), " ", *d.leaf_weight)));
  }
  TRY(write_throttles_v1(dir, "blkio.throttle.read_bps_device", b.throttle_read_bps_device));
  TRY(write_throttles_v1(dir, "blkio.throttle.write_bps_device", b.throttle_write_bps_device));
  TRY(write_throttles_v1(dir, "blkio.throttle.read_iops_device", b.throttle_read_iops_device));
  TRY(write_throttles_v1(dir, "blkio.throttle.write_iops_device", b.throttle_write_iops_device));
  return ok();
}

Status apply_io_v2(const CgroupDir& dir, const oci::LinuxBlockIo& b) {
  // With BFQ, io.bfq.weight takes blkio's range [1, 1000] as is; else convert to io.weight.
  TRY(check_weights(b));
  const bool bfq = dir.has("io.bfq.weight");
  if (b.weight) {
    if (bfq) {
      TRY(dir.write("io.bfq.weight", std::to_string(*b.weight)));
    } else {
      TRY(dir.write("io.weight", std::to_string(blkio_weight_to_io_weight(*b.weight))));
    }
  }
  if (b.leaf_weight) log::warn("cgroups", "ignoring linux.resources.blockIO.leafWeight: not supported on cgroup v2");
  for (const auto& d : b.weight_device) {
    if (d.weight) {
      if (bfq) {
        TRY(dir.write("io.bfq.weight", cat(dev(d.major, d.minor), " ", *d.weight)));
      } else {
        TRY(dir.write("io.weight", cat(dev(d.major, d.minor), " ", blkio_weight_to_io_weight(*d.weight))));
      }
    }
    if (d.leaf_weight)
      log::warn("cgroups", "ignoring linux.resources.blockIO.weightDevice[].leafWeight: not supported on cgroup v2");
  }
  TRY(write_throttles_v2(dir, "rbps", b.throttle_read_bps_device));
  TRY(write_throttles_v2(dir, "wbps", b.throttle_write_bps_device));
  TRY(write_throttles_v2(dir, "riops", b.throttle_read_iops_device));
  TRY(write_throttles_v2(dir, "wiops", b.throttle_write_iops_device));
  return ok();
}

}  // namespace vessel::cgroups
