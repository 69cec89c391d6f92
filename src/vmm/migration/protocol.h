// The live migration stream: what a sending VMM and a receiving VMM say to
// each other over one connected socket (TCP or unix).
//
// Every message is a frame:
//   u32 type | u32 reserved (0) | u64 payload length | payload | u32 CRC-32C of all bytes before it
// (little endian). The sender speaks first:
//   HELLO (magic "VESSELMG", stream version, vessel version, guest RAM size,
//          page size, vCPU count, the source host's KVM CPUID, memfd flag)
//   <- ACCEPT | REFUSE(reason)
//   MACHINE (the machine spec: vCPUs, memory, irqchip, devices; snapshot::encode_spec)
//   [MEMFD (the guest RAM's memfd travels with it by SCM_RIGHTS; unix sockets only)]
//   <- READY (the destination built the machine: KVM VM, irqchip, memory
//            slots, vCPUs, over the RAM the pages go into; it says how long
//            that took and how long it expects its final restore to take).
//            It may come while PAGES flow; the sender waits for it before it
//            pauses the guest, so that building is not part of the downtime.
//   PAGES* (up to kMaxRunPages pages of a window of up to kMaxWindowPages at a
//           RAM offset: bitmaps say which are sent and which of those carry 4 KiB
//           of data; the others are zero pages, sent as one bit)
//   [DISK* (--copy-disks, when the HELLO says so: the image files of the
//          writable disks: u32 device index | u32 op | u64 offset | u64 length
//          | data; op SIZE (the file's size: the first DISK of a device creates
//          its file), DATA (bytes at a file offset), ZERO (a range reads as
//          zero). All of each file while the guest runs, then what the guest
//          changed, round after round, and after the pause the rest)]
//   [POSTCOPY (post-copy, when the HELLO allowed it: the bitmap of the pages
//             the destination does not have yet; the guest runs there
//             before they come)]
//   [TAP* (memfd migrations, after the pause: u32 NIC index, the NIC's open
//         tap file by SCM_RIGHTS: a tap cannot be opened twice, and closing
//         it would take the interface and its addresses away)]
//   [VSOCK (memfd migrations, after the pause: u32 0, the vsock device's
//          listening unix socket by SCM_RIGHTS: its path cannot be bound
//          twice, and host programs keep connecting to the same path)]
//   STATE (a snapshot state file: vCPUs, irqchip, clock, devices; see snapshot/state_file.h)
//   END (the source is paused; nothing more comes, except after a POSTCOPY:)
//   <- RUNNING (the destination runs the guest: the source may let go) | ERROR(reason)
// (ERROR may also come instead of READY.)
// After a POSTCOPY, the destination runs the guest at once and each page the
// guest (or a device) touches before it came is asked for:
//   <- REQUEST* (u64 RAM offset of a missing page the guest waits for)
//   PAGES* (the missing pages: those asked for first, the rest in order)
//   COMPLETE (every missing page was sent)
//   <- DONE (every page is in place: the source may let go)
//
// The stream is untrusted input: the receiver (StreamReceiver) checks every
// frame's type, length bound and CRC, the order of the frames, that each page
// run lies inside guest RAM, and decodes the state with the snapshot decoder
// (its own CRC and bounds). Errors name the frame and field.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/snapshot/state.h"

namespace vessel::vmm::migration {

inline constexpr char kMagic[8] = {'V', 'E', 'S', 'S', 'E', 'L', 'M', 'G'};
// Bumped on any change of the frames or their payloads (2: MACHINE and READY;
// 3: post-copy; 4: VSOCK; 5: PAGES windows of up to kMaxWindowPages; 6: DISK). A
// receiver also takes streams from kMinStreamVersion on (an older vessel's `vm
// upgrade` to this one): 3 and 4 differ from 5 only by a frame 3 never sends and
// narrower windows. A sender says 6 only when it copies disks, else 5, which a
// receiver of vessel's previous stream version takes too.
inline constexpr uint32_t kStreamVersion = 6;
inline constexpr uint32_t kCopyDisksStreamVersion = 6;
inline constexpr uint32_t kPlainStreamVersion = 5;
inline constexpr uint32_t kMinStreamVersion = 3;
inline constexpr uint64_t kPageSize = 4096;
// Pages sent in one PAGES frame (1 MiB of data at most).
inline constexpr uint32_t kMaxRunPages = 256;
// The window one PAGES frame covers (128 MiB of RAM; its two bitmaps 4 KiB each), so
// that scattered dirty pages share frames (stream version 5; 4 and 3: kMaxRunPages).
inline constexpr uint32_t kMaxWindowPages = 32768;
// Largest guest RAM a receiver accepts (1 TiB), before its own limit.
inline constexpr uint64_t kMaxGuestMemory = 1ULL << 40;
inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr size_t kFrameTrailerSize = 4;

enum class FrameType : uint32_t {
  kHello = 1,
  kPages = 2,
  kState = 3,
  kMemfd = 4,
  kEnd = 5,
  kMachine = 6,
  kPostcopy = 7,
  kComplete = 8,
  kTap = 9,
  kVsock = 10,
  kDisk = 11,
  // Receiver -> sender.
  kAccept = 16,
  kRefuse = 17,
  kRunning = 18,
  kError = 19,
  kReady = 20,
  kRequest = 21,
  kDone = 22,
};
// "HELLO", "PAGES" ... (or "type N" for an unknown one).
std::string frame_name(uint32_t type);

// The largest payload a frame of `type` may carry (0 for an unknown type).
uint64_t max_payload(FrameType type);

// The fixed part of a frame, checked: a known type, reserved 0, a length
// within the type's bound.
struct FrameHeader {
  FrameType type;
  uint64_t length;
};
Result<FrameHeader> decode_frame_header(std::span<const uint8_t> bytes);

// A whole frame's bytes (header, payload, CRC).
std::vector<uint8_t> encode_frame(FrameType type, std::span<const uint8_t> payload);
// Checks the CRC-32C trailer of a frame (header and payload as received).
Status check_frame_crc(std::span<const uint8_t> header, std::span<const uint8_t> payload, uint32_t crc);

// What the sender announces first.
struct Hello {
  uint32_t version = kStreamVersion;
  std::string vessel_version;
  uint64_t memory_size = 0;
  uint32_t page_size = kPageSize;
  uint32_t cpus = 1;
  bool memfd = false;  // guest RAM comes as a memfd (MEMFD frame) instead of PAGES
  bool postcopy = false;  // the sender may switch to post-copy (POSTCOPY frame)
  bool copy_disks = false;  // the writable disks' image files come in DISK frames (version 6 on)
  std::vector<kvm_cpuid_entry2> host_cpuid;  // the source host's KVM_GET_SUPPORTED_CPUID
};
std::vector<uint8_t> encode_hello(const Hello& h);
// Checks the magic and the version first (another version: an error naming
// both and the sender's vessel version), then every field.
Result<Hello> decode_hello(std::span<const uint8_t> payload);

// What the receiver says once its machine is built (READY).
struct Ready {
  uint64_t build_us = 0;             // how long building the machine took
  uint64_t restore_estimate_us = 0;  // its expected END-to-running time
};
// At most this long an estimate may be (10 minutes).
inline constexpr uint64_t kMaxRestoreEstimateUs = 600ULL * 1000 * 1000;
std::vector<uint8_t> encode_ready(const Ready& r);
// Checks the length (16 bytes) and the bound of each field.
Result<Ready> decode_ready(std::span<const uint8_t> payload);

// A PAGES payload: u64 RAM offset | u32 count (1..kMaxWindowPages) | "sent"
// bitmap | "data" bitmap (each (count + 7) / 8 bytes) | 4 KiB per data page
// (at most kMaxRunPages). A page of the window [offset, offset + count pages)
// whose sent bit is clear is left as it is (so that scattered dirty pages share
// a frame); a sent page without its data bit is a zero page; data bits lie
// within sent.

// Encodes a window of `count` pages at RAM offset `offset` where every page
// is sent: `page(i)` gives the bytes of page i (nullptr or all zero: a zero
// page). Tests and tools; the sender builds frames with PagesFrameBuilder.
std::vector<uint8_t> encode_pages(uint64_t offset, uint32_t count, const std::function<const uint8_t*(uint32_t)>& page);
// Whether a 4 KiB page is all zero.
bool is_zero_page(const uint8_t* p);

// A PAGES frame built in place (header, payload, CRC) in a buffer reused
// from window to window: the page data is copied once, the CRC taken over
// the copy (the guest may write its RAM meanwhile).
class PagesFrameBuilder {
 public:
  // Encodes the window of `count` pages at `offset`: `page(i)` gives page i
  // (nullptr: not sent); each sent page is tested for zero. The frame is
  // bytes() until the next build; data_pages() and zero_pages() count what
  // it carries.
  void build(uint64_t offset, uint32_t count, const std::function<const uint8_t*(uint32_t)>& page);
  // The same for the pages `sent` of the window (ascending indexes below
  // `count`, at most kMaxRunPages of them: the receiver takes no more), the
  // page at index i at `base` + i * 4 KiB.
  void build(uint64_t offset, uint32_t count, std::span<const uint32_t> sent, const uint8_t* base);
  std::span<const uint8_t> bytes() const { return {buf_.data(), size_}; }
  // The payload alone (without header and CRC).
  std::span<const uint8_t> payload() const { return bytes().subspan(kFrameHeaderSize, size_ - kFrameHeaderSize - kFrameTrailerSize); }
  uint32_t data_pages() const { return data_count_; }
  uint32_t zero_pages() const { return zero_count_; }

 private:
  // Starts a frame of `count` pages with room for `most` data pages.
  void begin(uint64_t offset, uint32_t count, size_t most);
  // Marks page `i` sent and copies it unless it is a zero page.
  void add(uint32_t i, const uint8_t* p);
  // Writes the length and the CRC.
  void finish();
  std::vector<uint8_t> buf_;
  size_t size_ = 0;
  uint8_t *sent_bits_ = nullptr, *data_bits_ = nullptr, *data_ = nullptr;
  uint32_t data_count_ = 0, zero_count_ = 0;
};

// Where received pages go (guest RAM, or a buffer in tests and the fuzzer).
class MemorySink {
 public:
  virtual ~MemorySink() = default;
  // Writes one page of data at RAM offset `offset` (checked: inside RAM, aligned).
  virtual Status write_page(uint64_t offset, const uint8_t* data) = 0;
  // Makes [offset, offset + count pages) read as zero.
  virtual Status zero_pages(uint64_t offset, uint64_t count) = 0;
};

// A DISK frame (--copy-disks): a piece of the image file of the MACHINE's
// device `device` (a writable virtio-blk).
inline constexpr uint64_t kMaxDiskData = 1ULL << 20;     // a DATA (or ZERO) frame covers at most 1 MiB
inline constexpr uint64_t kMaxDiskFile = 1ULL << 44;     // an image file of at most 16 TiB
enum class DiskOp : uint32_t { kSize = 0, kData = 1, kZero = 2 };
struct DiskChunk {
  uint32_t device = 0;
  DiskOp op = DiskOp::kSize;
  uint64_t offset = 0;  // kSize: the file's size
  uint64_t length = 0;  // kData: data.size(); kZero: bytes
  std::span<const uint8_t> data;
};
std::vector<uint8_t> encode_disk(const DiskChunk& c);
// Checks the layout and the bounds (op, lengths, offset + length within
// kMaxDiskFile, data length); the device is checked by the StreamReceiver.
Result<DiskChunk> decode_disk(std::span<const uint8_t> payload);

// Where copied image files go on the receiving side.
class DiskSink {
 public:
  virtual ~DiskSink() = default;
  // The file of device `device` has `size` bytes (the first call creates it).
  virtual Status set_size(uint32_t device, uint64_t size) = 0;
  virtual Status write(uint32_t device, uint64_t offset, std::span<const uint8_t> data) = 0;
  // [offset, offset + len) reads as zero.
  virtual Status zero(uint32_t device, uint64_t offset, uint64_t len) = 0;
};

// What one PAGES frame carried.
struct PagesApplied {
  uint64_t data = 0, zero = 0;
};
// Checks a PAGES payload against RAM of `memory_size` bytes (offset, count,
// bitmaps, data length: nothing is written unless all of it is right) and
// applies it.
Result<PagesApplied> apply_pages(std::span<const uint8_t> payload, uint64_t memory_size, MemorySink& sink);

// The pages of a guest RAM of `memory_size` bytes, and the bytes of a bitmap of them.
inline uint64_t ram_pages(uint64_t memory_size) { return memory_size / kPageSize; }
inline uint64_t page_bitmap_bytes(uint64_t memory_size) { return (ram_pages(memory_size) + 7) / 8; }

// A POSTCOPY payload: one bit per page of guest RAM (LSB first within each
// byte), set for the pages the destination does not have yet.
std::vector<uint8_t> encode_postcopy(const std::vector<uint64_t>& missing, uint64_t memory_size);
// Checks the length (exactly one bit per page) and that no bit lies past the
// last page; returns the bitmap as 64-bit words.
Result<std::vector<uint64_t>> decode_postcopy(std::span<const uint8_t> payload, uint64_t memory_size);

// A REQUEST payload: the RAM offset of one page.
std::vector<uint8_t> encode_request(uint64_t offset);
// Checks the length, the alignment and that the page lies in guest RAM.
Result<uint64_t> decode_request(std::span<const uint8_t> payload, uint64_t memory_size);

// A short text payload (REFUSE, ERROR): bounded, printable.
std::vector<uint8_t> encode_text(const std::string& s);
std::string decode_text(std::span<const uint8_t> payload);

// The receiving side's checks, frame by frame, without any I/O: what the
// receiver and the fuzzer feed. The order is HELLO, MACHINE, [MEMFD],
// PAGES*, [POSTCOPY], STATE, END, and after a POSTCOPY: PAGES*, COMPLETE.
class StreamReceiver {
 public:
  struct Limits {
    uint64_t max_memory = kMaxGuestMemory;
  };
  // `on_hello` checks the HELLO (host CPU, memory); an error refuses the
  // stream. `on_machine` gets the checked MACHINE spec (its vCPUs and memory
  // those of the HELLO) and returns where pages go: the RAM of the machine it
  // builds (nullptr in a memfd migration: the MEMFD brings the RAM). Each is
  // called once.
  using HelloFn = std::function<Status(const Hello&)>;
  using MachineFn = std::function<Result<MemorySink*>(const snapshot::VmSpec&)>;
  StreamReceiver(Limits limits, HelloFn on_hello, MachineFn on_machine)
      : limits_(limits), on_hello_(std::move(on_hello)), on_machine_(std::move(on_machine)) {}

  // One frame, as read: its checked header and payload. `has_fd`: a file
  // descriptor came with it (only a MEMFD frame may carry one).
  Status on_frame(const FrameHeader& h, std::span<const uint8_t> payload, bool has_fd = false);
  // `on_postcopy` gets the checked POSTCOPY bitmap and returns where the
  // pages after END go; without it a POSTCOPY is refused.
  using PostcopyFn = std::function<Result<MemorySink*>(std::vector<uint64_t> missing)>;
  void set_postcopy(PostcopyFn fn) { on_postcopy_ = std::move(fn); }
  // Where DISK frames go (a HELLO with copy_disks needs one: its check
  // refuses the stream without). A DISK must name a writable virtio-blk of
  // the MACHINE, start with its SIZE, and stay within it; at STATE every
  // writable disk must have come.
  void set_disk_sink(DiskSink* sink) { disk_sink_ = sink; }
  // END came: the guest's state is in (after a POSTCOPY, pages still come).
  bool ended() const { return phase_ == Phase::kPostcopy || phase_ == Phase::kDone; }
  // Nothing more comes (END, or after a POSTCOPY, COMPLETE).
  bool finished() const { return phase_ == Phase::kDone; }
  bool postcopy() const { return postcopy_; }
  const Hello& hello() const { return hello_; }
  // The MACHINE's spec (valid once it came).
  const snapshot::VmSpec& spec() const { return spec_; }
  // The decoded STATE (valid once finished()).
  snapshot::SnapshotState& state() { return state_; }
  uint64_t data_pages() const { return data_pages_; }
  uint64_t zero_pages() const { return zero_pages_; }
  bool got_memfd() const { return got_memfd_; }
  // The NIC a TAP frame named (valid right after on_frame() took one).
  uint32_t last_tap_nic() const { return last_tap_nic_; }
  bool got_vsock() const { return !vsock_seen_.empty(); }

 private:
  enum class Phase { kHello, kMachine, kMemory, kStated, kPostcopy, kDone };
  Status check_state();
  Status on_machine_frame(std::span<const uint8_t> payload);
  Limits limits_;
  HelloFn on_hello_;
  MachineFn on_machine_;
  PostcopyFn on_postcopy_;
  DiskSink* disk_sink_ = nullptr;
  std::vector<uint64_t> disk_sizes_;  // by device; UINT64_MAX: no SIZE yet
  Status on_disk_frame(std::span<const uint8_t> payload);
  bool postcopy_ = false;
  Phase phase_ = Phase::kHello;
  Hello hello_;
  snapshot::VmSpec spec_;
  MemorySink* sink_ = nullptr;
  snapshot::SnapshotState state_;
  bool got_memfd_ = false;
  std::vector<bool> tap_seen_;
  uint32_t last_tap_nic_ = 0;
  std::vector<bool> vsock_seen_;
  bool got_pages_ = false;
  uint64_t data_pages_ = 0, zero_pages_ = 0;
};

}  // namespace vessel::vmm::migration
