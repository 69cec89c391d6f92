// The destination's side of post-copy: the guest runs before all of its
// memory came. The missing pages (the POSTCOPY bitmap) are made holes of
// the guest-RAM memfd and the RAM mapping is registered with userfaultfd
// (missing-page mode), so a vCPU (through KVM), a device or the VMM itself
// touching a hole waits in the kernel while this class's fault thread
// resolves it:
//   - a page the source still has to send: asked for once (REQUEST, through
//     `ask`), and installed with UFFDIO_COPY when it comes (write_page();
//     the waiting threads wake then);
//   - any other hole (a page the source sent as a zero page, which the
//     receiver never wrote): a zero page, at once (UFFDIO_ZEROPAGE).
// Pages that come from the stream unasked are installed the same way; a
// page already in place is left as it is. The memory must be a shared memfd
// in 4 KiB pages (GuestMemory::create with small pages): a hole punched in
// a huge page may be zeroed in place instead of removed, and would never
// fault.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/kvm/memory.h"
#include "vmm/migration/protocol.h"

namespace vessel::vmm::migration {

class PostcopyPager : public MemorySink {
 public:
  // Sends a REQUEST for the page at RAM offset `offset` (from the fault thread).
  using AskFn = std::function<Status(uint64_t offset)>;

  // Punches the missing pages out of `mem`'s memfd, registers its mapping
  // with a new userfaultfd and starts the fault thread. `missing`: one bit
  // per page of `mem`.
  static Result<std::unique_ptr<PostcopyPager>> start(GuestMemory& mem, std::vector<uint64_t> missing, AskFn ask);
  ~PostcopyPager() override;

  Status write_page(uint64_t offset, const uint8_t* data) override;
  Status zero_pages(uint64_t offset, uint64_t count) override;

  // Pages still missing, asked for by faults, and holes filled with zeroes by the fault thread.
  uint64_t missing() const { return missing_count_.load(); }
  uint64_t requested() const { return requested_count_.load(); }
  uint64_t zero_filled() const { return zero_filled_.load(); }
  // The fault thread's first error (a REQUEST that could not be sent, a
  // userfaultfd call that failed), if any.
  Status fault_error() const;
  // Ends the fault thread and closes the userfaultfd: every thread still
  // waiting on a hole goes on with a zero page there, so after a failure the
  // VM must be stopped first (its vCPUs then see a kick, not the zero page,
  // unless they were waiting).
  void stop();
  // After a failure: makes guest RAM inaccessible (PROT_NONE), then stop()s,
  // so that a vCPU or device waiting on a missing page gets a fault (KVM:
  // EFAULT) instead of a zero page it would act on, e.g. write to a disk.
  void fence();

 private:
  PostcopyPager(const GuestMemory& mem, std::vector<uint64_t> missing, AskFn ask);
  void fault_loop();
  Status on_fault(uint64_t offset);
  bool is_missing(uint64_t page) const { return (missing_[page / 64].load() >> (page % 64)) & 1; }
  // Clears page's missing bit; whether it was set.
  bool clear_missing(uint64_t page);
  // UFFDIO_COPY / UFFDIO_ZEROPAGE of one page (EEXIST: it is in place already).
  Status copy_in(uint64_t offset, const uint8_t* data);
  Status zero_in(uint64_t offset, uint64_t len);
  Status wake(uint64_t offset);

  uint8_t* base_;  // the RAM mapping (not the GuestMemory: a failed restore may free it first)
  uint64_t size_;
  std::unique_ptr<std::atomic<uint64_t>[]> missing_;
  std::unique_ptr<std::atomic<uint64_t>[]> requested_;
  size_t words_ = 0;
  AskFn ask_;
  UniqueFd uffd_;
  UniqueFd stop_event_;
  std::thread thread_;
  std::atomic<uint64_t> missing_count_{0}, requested_count_{0}, zero_filled_{0};
  std::mutex stop_mu_;
  mutable std::mutex error_mu_;
  std::optional<Error> error_;
};

}  // namespace vessel::vmm::migration
