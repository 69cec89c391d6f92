// The live migration stream: what a sending VMM and a receiving VMM say to
// each other over one connected socket (TCP or unix).
//
// Every message is a frame:
//   u32 type | u32 reserved (0) | u64 payload length | payload | u32 CRC-32C of all bytes before it
// (little endian). The sender speaks first:
//   HELLO (magic "VESSELMG", stream version, vessel version, guest RAM size,
//          page size, vCPU count, the source host's KVM CPUID, memfd flag)
//   <- ACCEPT | REFUSE(reason)
//   [MEMFD (the guest RAM's memfd travels with it by SCM_RIGHTS; unix sockets only)]
//   PAGES* (a run of up to kMaxRunPages pages at a RAM offset: a bitmap says
//           which carry 4 KiB of data; the others are zero pages, sent as one bit)
//   STATE (a snapshot state file: vCPUs, irqchip, clock, devices; see snapshot/state_file.h)
//   END (the source is paused; nothing more comes)
//   <- RUNNING (the destination runs the guest: the source may let go) | ERROR(reason)
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
// Bumped on any change of the frames or their payloads.
inline constexpr uint32_t kStreamVersion = 1;
inline constexpr uint64_t kPageSize = 4096;
// Pages in one PAGES frame (1 MiB of data at most).
inline constexpr uint32_t kMaxRunPages = 256;
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
  // Receiver -> sender.
  kAccept = 16,
  kRefuse = 17,
  kRunning = 18,
  kError = 19,
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
  std::vector<kvm_cpuid_entry2> host_cpuid;  // the source host's KVM_GET_SUPPORTED_CPUID
};
std::vector<uint8_t> encode_hello(const Hello& h);
// Checks the magic and the version first (another version: an error naming
// both and the sender's vessel version), then every field.
Result<Hello> decode_hello(std::span<const uint8_t> payload);

// One page run to send: `count` pages at RAM offset `offset`; `page(i)`
// gives the bytes of page i (nullptr or all zero: a zero page).
std::vector<uint8_t> encode_pages(uint64_t offset, uint32_t count, const std::function<const uint8_t*(uint32_t)>& page);
// Whether a 4 KiB page is all zero.
bool is_zero_page(const uint8_t* p);

// Where received pages go (guest RAM, or a buffer in tests and the fuzzer).
class MemorySink {
 public:
  virtual ~MemorySink() = default;
  // Writes one page of data at RAM offset `offset` (checked: inside RAM, aligned).
  virtual Status write_page(uint64_t offset, const uint8_t* data) = 0;
  // Makes [offset, offset + count pages) read as zero.
  virtual Status zero_pages(uint64_t offset, uint64_t count) = 0;
};

// Checks a PAGES payload against RAM of `memory_size` bytes and applies it.
// Returns the number of data pages (the rest were zero pages).
Result<uint64_t> apply_pages(std::span<const uint8_t> payload, uint64_t memory_size, MemorySink& sink);

// A short text payload (REFUSE, ERROR): bounded, printable.
std::vector<uint8_t> encode_text(const std::string& s);
std::string decode_text(std::span<const uint8_t> payload);

// The receiving side's checks, frame by frame, without any I/O: what the
// receiver and the fuzzer feed. The order is HELLO, [MEMFD], PAGES*, STATE, END.
class StreamReceiver {
 public:
  struct Limits {
    uint64_t max_memory = kMaxGuestMemory;
  };
  // `on_hello` checks the HELLO (host CPU, memory) and returns where pages go
  // (it is called once; an error refuses the stream).
  using HelloFn = std::function<Result<MemorySink*>(const Hello&)>;
  StreamReceiver(Limits limits, HelloFn on_hello) : limits_(limits), on_hello_(std::move(on_hello)) {}

  // One frame, as read: its checked header and payload. `has_fd`: a file
  // descriptor came with it (only a MEMFD frame may carry one).
  Status on_frame(const FrameHeader& h, std::span<const uint8_t> payload, bool has_fd = false);
  bool finished() const { return phase_ == Phase::kDone; }
  const Hello& hello() const { return hello_; }
  // The decoded STATE (valid once finished()).
  snapshot::SnapshotState& state() { return state_; }
  uint64_t data_pages() const { return data_pages_; }
  uint64_t zero_pages() const { return zero_pages_; }
  bool got_memfd() const { return got_memfd_; }

 private:
  enum class Phase { kHello, kMemory, kStated, kDone };
  Status check_state();
  Limits limits_;
  HelloFn on_hello_;
  Phase phase_ = Phase::kHello;
  Hello hello_;
  MemorySink* sink_ = nullptr;
  snapshot::SnapshotState state_;
  bool got_memfd_ = false;
  bool got_pages_ = false;
  uint64_t data_pages_ = 0, zero_pages_ = 0;
};

}  // namespace vessel::vmm::migration
