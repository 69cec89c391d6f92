// Parsing of the --disk and --net device option strings of `vessel vm run`
// (pure functions, unit-tested):
//   --disk PATH[,readonly][,serial=S][,bandwidth=BYTES_PER_SEC][,iops=N]
//   --net tap=NAME[,mac=52:54:00:12:34:56][,bandwidth=BYTES_PER_SEC][,iops=N]
//   --balloon SIZE[,deflate_on_oom][,stats=SECONDS][,reporting]
//   --vsock cid=N,uds=PATH
#pragma once

#include <string>

#include "common/error.h"
#include "vmm/virtio/balloon/balloon.h"
#include "vmm/virtio/block/block.h"
#include "vmm/virtio/net/net.h"
#include "vmm/virtio/vsock/vsock.h"

namespace vessel::vmm {

struct DiskSpec {
  std::string path;
  virtio::BlockOptions options;
};

Result<DiskSpec> parse_disk_spec(const std::string& spec);
Result<virtio::NetOptions> parse_net_spec(const std::string& spec);
Result<virtio::MacAddress> parse_mac(const std::string& s);
// SIZE is the balloon's initial size (the memory taken from the guest), e.g. 0 or 256M.
Result<virtio::BalloonOptions> parse_balloon_spec(const std::string& spec);
Result<virtio::VsockOptions> parse_vsock_spec(const std::string& spec);

}  // namespace vessel::vmm
