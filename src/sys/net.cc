#include "sys/net.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "common/strings.h"
#include "common/unique_fd.h"

namespace vessel::sys {

Status set_link_up(const std::string& name) {
  struct ifreq ifr{};
  if (name.empty() || name.size() >= sizeof ifr.ifr_name) return Error::invalid(cat("interface name \"", name, "\""));
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::from_errno("socket(AF_INET)");
  UniqueFd guard(fd);
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) return Error::from_errno(cat("get the flags of ", name));
  if (ifr.ifr_flags & IFF_UP) return ok();
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) return Error::from_errno(cat("set ", name, " up"));
  return ok();
}

}  // namespace vessel::sys
