#include "vmm/instance/serial_sink.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "common/fs.h"
#include "common/strings.h"
#include "vmm/instance/state_dir.h"

namespace vessel::vmm {

Status check_detached_serial(const std::string& mode) {
  if (mode == "log" || mode == "none" || (starts_with(mode, "file:") && mode.size() > 5)) return ok();
  if (mode == "stdio")
    return Error::invalid("--serial stdio needs a foreground VM: a detached VM logs COM1 (read it with vm console)");
  return Error::invalid(cat("--serial must be log, none or file:PATH for a detached VM, not '", mode, "'"));
}

Result<std::unique_ptr<SerialSink>> SerialSink::open(const std::string& mode, int dir_fd, const std::string& log_name) {
  TRY(check_detached_serial(mode));
  std::unique_ptr<SerialSink> s(new SerialSink());
  s->mode_ = mode;
  if (mode == "log") {
    int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return Error::from_errno("serial log: duplicate the state directory's fd");
    s->dir_.reset(dup);
    s->log_name_ = log_name;
    int fd = ::openat(dup, log_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600);
    if (fd < 0) return Error::from_errno(cat("serial log: open ", log_name, " in the state directory"));
    s->file_.reset(fd);
  } else if (starts_with(mode, "file:")) {
    s->file_ = TRYC(open_file(mode.substr(5), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), "--serial file");
  }
  return s;
}

void SerialSink::rotate() {
  // Relative to the directory's fd, not its path: after `vm upgrade` the
  // path this VMM started in (<id>.upgrade) is gone or another VMM's.
  std::string old = log_name_ + ".1";
  ::renameat(dir_.get(), log_name_.c_str(), dir_.get(), old.c_str());
  int fd = ::openat(dir_.get(), log_name_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600);
  file_.reset(fd);  // on failure (-1) output is dropped from now on
  file_size_ = 0;
}

void SerialSink::put(uint8_t b) {
  bytes_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (file_) {
    while (::write(file_.get(), &b, 1) < 0 && errno == EINTR) {
    }
    if (dir_ && ++file_size_ >= kSerialLogMax) rotate();
  }
  if (console_ >= 0) (void)!::send(console_, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void SerialSink::set_console(int fd) {
  std::lock_guard lock(mu_);
  console_ = fd;
}

}  // namespace vessel::vmm
