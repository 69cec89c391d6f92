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

Result<std::unique_ptr<SerialSink>> SerialSink::open(const std::string& mode, const std::string& log_path) {
  TRY(check_detached_serial(mode));
  std::unique_ptr<SerialSink> s(new SerialSink());
  s->mode_ = mode;
  if (mode == "log") {
    s->log_path_ = log_path;
    s->file_ = TRYC(open_file(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600), "serial log");
  } else if (starts_with(mode, "file:")) {
    s->file_ = TRYC(open_file(mode.substr(5), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), "--serial file");
  }
  return s;
}

void SerialSink::rotate() {
  std::string old = log_path_ + ".1";
  ::rename(log_path_.c_str(), old.c_str());
  int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600);
  file_.reset(fd);  // on failure (-1) output is dropped from now on
  file_size_ = 0;
}

void SerialSink::put(uint8_t b) {
  bytes_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (file_) {
    while (::write(file_.get(), &b, 1) < 0 && errno == EINTR) {
    }
    if (!log_path_.empty() && ++file_size_ >= kSerialLogMax) rotate();
  }
  if (console_ >= 0) (void)!::send(console_, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void SerialSink::set_console(int fd) {
  std::lock_guard lock(mu_);
  console_ = fd;
}

}  // namespace vessel::vmm
