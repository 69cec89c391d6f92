// Tap: a host tap device opened through /dev/net/tun with a virtio-net
// header on each frame (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), non-blocking.
#pragma once

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::vmm::net {

// TUN_F_* offload flags (linux/if_tun.h).
inline constexpr unsigned kTunCsum = 0x01, kTunTso4 = 0x02, kTunTso6 = 0x04, kTunTsoEcn = 0x08, kTunUfo = 0x10;

class Tap {
 public:
  // Opens (or creates, with CAP_NET_ADMIN) tap `name` with `vnet_hdr_size`-byte headers.
  static Result<Tap> open(const std::string& name, int vnet_hdr_size);
  // Takes over an open tap file `fd` of tap `name` (handed over by another
  // VMM on this host: the interface and its address stay), with `vnet_hdr_size`.
  static Result<Tap> adopt(UniqueFd fd, const std::string& name, int vnet_hdr_size);
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  // TUNSETOFFLOAD: which offloads frames written *to* the guest may use.
  Status set_offload(unsigned flags);
  // Whether the kernel accepts these offload flags (probed, then reset to none).
  bool supports_offload(unsigned flags);

 private:
  UniqueFd fd_;
  std::string name_;
};

}  // namespace vessel::vmm::net
