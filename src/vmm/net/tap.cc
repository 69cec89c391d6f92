#include "vmm/net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

#include "common/strings.h"

namespace vessel::vmm::net {

Result<Tap> Tap::open(const std::string& name, int vnet_hdr_size) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Error::invalid(cat("bad tap name '", name, "'"));
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error::from_errno("open /dev/net/tun");
  Tap t;
  t.fd_.reset(fd);
  t.name_ = name;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) return Error::from_errno(cat("TUNSETIFF ", name));
  if (::ioctl(fd, TUNSETVNETHDRSZ, &vnet_hdr_size) < 0) return Error::from_errno(cat("TUNSETVNETHDRSZ ", name));
  return t;
}

Result<Tap> Tap::adopt(UniqueFd fd, const std::string& name, int vnet_hdr_size) {
  ifreq ifr{};
  if (::ioctl(fd.get(), TUNGETIFF, &ifr) < 0) return Error::from_errno(cat("the handed-over fd of tap ", name, " is not a tap"));
  if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR))
    return Error::invalid(cat("the handed-over fd of tap ", name, " is not a tap with virtio-net headers"));
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &vnet_hdr_size) < 0) return Error::from_errno(cat("TUNSETVNETHDRSZ ", name));
  Tap t;
  t.fd_ = std::move(fd);
  t.name_ = std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  return t;
}

Status Tap::set_offload(unsigned flags) {
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) < 0)
    return Error::from_errno(cat("TUNSETOFFLOAD ", name_));
  return ok();
}

bool Tap::supports_offload(unsigned flags) {
  bool ok_ = ::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) == 0;
  (void)::ioctl(fd_.get(), TUNSETOFFLOAD, 0UL);
  return ok_;
}

}  // namespace vessel::vmm::net
