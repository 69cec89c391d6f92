#include "common/error.h"

#include <cstring>

namespace vessel {

Error Error::from_errno(std::string_view what) { return from_errno(errno, what); }

Error Error::from_errno(int err, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Error(err, std::move(msg));
}

}  // namespace vessel
