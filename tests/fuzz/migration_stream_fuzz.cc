// libFuzzer target: the receiving side of a live migration stream. The input
// is a sequence of frames (header, payload, CRC-32C) fed to StreamReceiver
// as the receiver reads them; the first byte picks whether each frame's CRC
// is taken as is or recomputed (so that mutations reach the HELLO, MACHINE,
// PAGES, DISK and STATE decoders past the checksum). Guest RAM is a 1 MiB buffer,
// copied disk files are checked bounds only: nothing may crash, write outside
// RAM or a disk's announced size, hang or allocate without bound.
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/crc32c.h"
#include "vmm/migration/protocol.h"

using namespace vessel;
using namespace vessel::vmm::migration;

namespace {
class BufferSink : public MemorySink {
 public:
  explicit BufferSink(uint64_t size) : mem_(size) {}
  Status write_page(uint64_t offset, const uint8_t* data) override {
    if (offset % kPageSize || offset + kPageSize > mem_.size()) __builtin_trap();
    std::memcpy(mem_.data() + offset, data, kPageSize);
    return ok();
  }
  Status zero_pages(uint64_t offset, uint64_t count) override {
    if (offset % kPageSize || offset > mem_.size() || count > (mem_.size() - offset) / kPageSize) __builtin_trap();
    std::memset(mem_.data() + offset, 0, count * kPageSize);
    return ok();
  }

 private:
  std::vector<uint8_t> mem_;
};

// A disk write must lie within the size its SIZE announced.
class BoundsDisks : public DiskSink {
 public:
  Status set_size(uint32_t device, uint64_t size) override {
    if (size > kMaxDiskFile) __builtin_trap();
    if (sizes_.size() <= device) sizes_.resize(device + 1, UINT64_MAX);
    sizes_[device] = size;
    return ok();
  }
  Status write(uint32_t device, uint64_t offset, std::span<const uint8_t> data) override {
    check(device, offset, data.size());
    return ok();
  }
  Status zero(uint32_t device, uint64_t offset, uint64_t len) override {
    check(device, offset, len);
    return ok();
  }

 private:
  void check(uint32_t device, uint64_t offset, uint64_t len) {
    if (device >= sizes_.size() || sizes_[device] == UINT64_MAX || offset > sizes_[device] ||
        len > sizes_[device] - offset)
      __builtin_trap();
  }
  std::vector<uint64_t> sizes_;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  bool fix_crc = data[0] & 1;
  std::span<const uint8_t> in(data + 1, size - 1);
  BufferSink* sink_ptr = nullptr;
  std::unique_ptr<BufferSink> sink;
  StreamReceiver::Limits limits;
  limits.max_memory = 1 << 20;
  bool memfd = false;
  StreamReceiver sr(
      limits,
      [&](const Hello& h) -> Status {
        memfd = h.memfd;
        return ok();
      },
      [&](const vessel::vmm::snapshot::VmSpec& spec) -> Result<MemorySink*> {
        if (spec.memory > limits.max_memory) __builtin_trap();  // checked against the HELLO's before
        if (memfd) return static_cast<MemorySink*>(nullptr);
        sink = std::make_unique<BufferSink>(spec.memory);
        sink_ptr = sink.get();
        return static_cast<MemorySink*>(sink_ptr);
      });
  BoundsDisks disks;
  sr.set_disk_sink(&disks);
  // Post-copy: the missing pages go into a second buffer after END.
  std::unique_ptr<BufferSink> post;
  sr.set_postcopy([&](std::vector<uint64_t> missing) -> Result<MemorySink*> {
    if (!sink_ptr || missing.size() * 64 * kPageSize < sr.hello().memory_size) __builtin_trap();
    post = std::make_unique<BufferSink>(sr.hello().memory_size);
    return static_cast<MemorySink*>(post.get());
  });
  size_t pos = 0;
  while (pos + kFrameHeaderSize <= in.size()) {
    auto hdr = in.subspan(pos, kFrameHeaderSize);
    auto h = decode_frame_header(hdr);
    if (!h) return 0;
    pos += kFrameHeaderSize;
    if (in.size() - pos < h->length + 4) return 0;
    auto payload = in.subspan(pos, h->length);
    pos += h->length;
    uint32_t crc;
    std::memcpy(&crc, in.data() + pos, 4);
    pos += 4;
    if (fix_crc) crc = crc32c(payload, crc32c(hdr));
    if (!check_frame_crc(hdr, payload, crc)) return 0;
    // A hand-over frame may say an fd came with it (a flag of the input).
    bool handover = h->type == FrameType::kMemfd || h->type == FrameType::kTap || h->type == FrameType::kVsock;
    if (!sr.on_frame(*h, payload, handover && (data[0] & 2))) return 0;
    if (sr.finished()) return 0;
  }
  return 0;
}
