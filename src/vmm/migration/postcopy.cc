#include "vmm/migration/postcopy.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bit>
#include <cerrno>

#include "common/strings.h"

namespace vessel::vmm::migration {

namespace {
// Hole faults next to each other (a guest reading its memory in order) are
// filled this many pages at a time, stopping at a missing page.
constexpr uint64_t kZeroRunPages = 16;
}  // namespace

PostcopyPager::PostcopyPager(const GuestMemory& mem, std::vector<uint64_t> missing, AskFn ask)
    : base_(mem.linear(0)), size_(mem.size()), words_(missing.size()), ask_(std::move(ask)) {
  missing_ = std::make_unique<std::atomic<uint64_t>[]>(words_);
  requested_ = std::make_unique<std::atomic<uint64_t>[]>(words_);
  uint64_t n = 0;
  for (size_t i = 0; i < words_; ++i) {
    missing_[i].store(missing[i]);
    requested_[i].store(0);
    n += static_cast<uint64_t>(std::popcount(missing[i]));
  }
  missing_count_.store(n);
}

Result<std::unique_ptr<PostcopyPager>> PostcopyPager::start(GuestMemory& mem, std::vector<uint64_t> missing, AskFn ask) {
  uint64_t pages = mem.size() / kPageSize;
  if (missing.size() != (pages + 63) / 64) return Error::invalid("post-copy: the missing-page bitmap does not fit guest RAM");
  if (mem.fd() < 0 || mem.file_backed()) return Error::invalid("post-copy needs guest RAM in a memfd");
  std::unique_ptr<PostcopyPager> p(new PostcopyPager(mem, std::move(missing), std::move(ask)));
  // The missing pages become holes (the stream may have written an older
  // copy of them in an earlier round).
  for (uint64_t page = 0; page < pages;) {
    if (!p->is_missing(page)) {
      ++page;
      continue;
    }
    uint64_t end = page;
    while (end < pages && p->is_missing(end)) ++end;
    if (::fallocate(mem.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(page * kPageSize),
                    static_cast<off_t>((end - page) * kPageSize)) < 0)
      return Error::from_errno("post-copy: punch the missing pages out of guest RAM");
    page = end;
  }
  p->uffd_.reset(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (!p->uffd_) return Error::from_errno("post-copy: userfaultfd (a kernel without CONFIG_USERFAULTFD, or no privilege?)");
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_MISSING_SHMEM;
  if (::ioctl(p->uffd_.get(), UFFDIO_API, &api) < 0)
    return Error::from_errno("post-copy: UFFDIO_API (missing-page faults on shared memory need Linux 4.11+)");
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uint64_t>(mem.linear(0));
  reg.range.len = mem.size();
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (::ioctl(p->uffd_.get(), UFFDIO_REGISTER, &reg) < 0)
    return Error::from_errno("post-copy: register guest RAM with userfaultfd");
  const uint64_t need = (1ULL << _UFFDIO_COPY) | (1ULL << _UFFDIO_ZEROPAGE) | (1ULL << _UFFDIO_WAKE);
  if ((reg.ioctls & need) != need) return Error::invalid("post-copy: userfaultfd cannot copy or zero pages of guest RAM here");
  int ev = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ev < 0) return Error::from_errno("post-copy: eventfd");
  p->stop_event_.reset(ev);
  p->thread_ = std::thread([q = p.get()] { q->fault_loop(); });
  return p;
}

PostcopyPager::~PostcopyPager() { stop(); }

void PostcopyPager::fence() {
  (void)::mprotect(base_, size_, PROT_NONE);
  stop();
}

void PostcopyPager::stop() {
  std::lock_guard lock(stop_mu_);
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_event_.get(), &one, sizeof one);
    thread_.join();
  }
  uffd_.reset();  // wakes whatever still waits; the mapping is unregistered
}

Status PostcopyPager::fault_error() const {
  std::lock_guard lock(error_mu_);
  if (error_) return *error_;
  return ok();
}

bool PostcopyPager::clear_missing(uint64_t page) {
  uint64_t bit = 1ULL << (page % 64);
  bool was = missing_[page / 64].fetch_and(~bit) & bit;
  if (was) missing_count_.fetch_sub(1);
  return was;
}

Status PostcopyPager::copy_in(uint64_t offset, const uint8_t* data) {
  for (int tries = 0;; ++tries) {
    uffdio_copy c{};
    c.dst = reinterpret_cast<uint64_t>(base_ + offset);
    c.src = reinterpret_cast<uint64_t>(data);
    c.len = kPageSize;
    if (::ioctl(uffd_.get(), UFFDIO_COPY, &c) == 0 || errno == EEXIST) return ok();
    if (errno != EAGAIN || tries >= 100) return Error::from_errno(cat("post-copy: install the page at ", offset));
  }
}

Status PostcopyPager::zero_in(uint64_t offset, uint64_t len) {
  for (int tries = 0;; ++tries) {
    uffdio_zeropage z{};
    z.range.start = reinterpret_cast<uint64_t>(base_ + offset);
    z.range.len = len;
    if (::ioctl(uffd_.get(), UFFDIO_ZEROPAGE, &z) == 0) return ok();
    // A page of the run is in place already: the ones before it were
    // filled (and woken); make sure the first one's waiters go on.
    if (errno == EEXIST) return wake(offset);
    if (errno != EAGAIN || tries >= 100) return Error::from_errno(cat("post-copy: zero-fill the page at ", offset));
  }
}

Status PostcopyPager::wake(uint64_t offset) {
  uffdio_range r{reinterpret_cast<uint64_t>(base_ + offset), kPageSize};
  if (::ioctl(uffd_.get(), UFFDIO_WAKE, &r) < 0) return Error::from_errno(cat("post-copy: wake the page at ", offset));
  return ok();
}

Status PostcopyPager::write_page(uint64_t offset, const uint8_t* data) {
  if (offset % kPageSize || offset >= size_) return Error::invalid("page outside guest RAM");
  uint64_t page = offset / kPageSize;
  if (!is_missing(page)) return ok();  // sent twice (asked for and in order): in place
  TRY(copy_in(offset, data));
  clear_missing(page);
  return ok();
}

Status PostcopyPager::zero_pages(uint64_t offset, uint64_t count) {
  if (offset % kPageSize || offset > size_ || count > (size_ - offset) / kPageSize)
    return Error::invalid("pages outside guest RAM");
  for (uint64_t page = offset / kPageSize, end = page + count; page < end; ++page) {
    if (!is_missing(page)) continue;
    TRY(zero_in(page * kPageSize, kPageSize));
    clear_missing(page);
  }
  return ok();
}

Status PostcopyPager::on_fault(uint64_t offset) {
  uint64_t page = offset / kPageSize;
  if (is_missing(page)) {
    uint64_t bit = 1ULL << (page % 64);
    if (!(requested_[page / 64].fetch_or(bit) & bit)) {
      requested_count_.fetch_add(1);
      TRY(ask_(offset));
    }
    // Installed meanwhile: its waiters may have queued after the copy's wake.
    if (!is_missing(page)) TRY(wake(offset));
    return ok();
  }
  // A hole the source sent as a zero page: zero it, and the holes after it
  // up to the next missing page.
  uint64_t pages = size_ / kPageSize, end = page + 1;
  while (end < pages && end - page < kZeroRunPages && !is_missing(end)) ++end;
  zero_filled_.fetch_add(end - page);
  return zero_in(offset, (end - page) * kPageSize);
}

void PostcopyPager::fault_loop() {
  uint64_t base = reinterpret_cast<uint64_t>(base_);
  uffd_msg msgs[16];
  for (;;) {
    pollfd fds[2] = {{uffd_.get(), POLLIN, 0}, {stop_event_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    ssize_t n = ::read(uffd_.get(), msgs, sizeof msgs);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      std::lock_guard lock(error_mu_);
      error_ = Error::from_errno("post-copy: read userfaultfd");
      break;
    }
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); ++i) {
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
      uint64_t addr = msgs[i].arg.pagefault.address;
      if (addr < base || addr - base >= size_) continue;
      Status s = on_fault((addr - base) & ~(kPageSize - 1));
      if (!s) {
        std::lock_guard lock(error_mu_);
        if (!error_) error_ = s.error();
      }
    }
  }
}

}  // namespace vessel::vmm::migration
