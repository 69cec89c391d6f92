#include "vmm/migration/protocol.h"

#include <bit>
#include <cstring>

#include "common/crc32c.h"
#include "common/strings.h"
#include "vmm/snapshot/state_file.h"

namespace vessel::vmm::migration {

namespace {
// Little-endian writer and bounded reader (x86 only, so plain memcpy).
struct Writer {
  std::vector<uint8_t>& out;
  template <class T>
  void put(T v) {
    size_t at = out.size();
    out.resize(at + sizeof v);
    std::memcpy(out.data() + at, &v, sizeof v);
  }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
};

struct Reader {
  std::span<const uint8_t> in;
  size_t pos = 0;
  const char* what;
  size_t left() const { return in.size() - pos; }
  template <class T>
  Result<T> get(const char* field) {
    if (left() < sizeof(T)) return Error::invalid(cat(what, ": truncated at ", field));
    T v;
    std::memcpy(&v, in.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  Result<std::span<const uint8_t>> take(size_t n, const char* field) {
    if (left() < n) return Error::invalid(cat(what, ": truncated at ", field));
    auto s = in.subspan(pos, n);
    pos += n;
    return s;
  }
};

constexpr uint32_t kFlagMemfd = 1;
constexpr uint32_t kFlagPostcopy = 2;
constexpr uint32_t kFlagCopyDisks = 4;
constexpr size_t kDiskHeader = 4 + 4 + 8 + 8;
constexpr uint32_t kMaxVersionString = 256;
constexpr uint32_t kMaxCpuidEntries = 256;
constexpr size_t kMaxText = 4096;
constexpr uint32_t kMaxCpus = 254;
// A machine spec of 64 devices with every string at its 4 KiB bound is ~1.1 MiB.
constexpr uint64_t kMaxMachineSpec = 2ULL << 20;

uint64_t bitmap_bytes(uint32_t count) { return (count + 7) / 8; }
}  // namespace

std::string frame_name(uint32_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHello: return "HELLO";
    case FrameType::kPages: return "PAGES";
    case FrameType::kState: return "STATE";
    case FrameType::kMemfd: return "MEMFD";
    case FrameType::kEnd: return "END";
    case FrameType::kMachine: return "MACHINE";
    case FrameType::kReady: return "READY";
    case FrameType::kPostcopy: return "POSTCOPY";
    case FrameType::kComplete: return "COMPLETE";
    case FrameType::kTap: return "TAP";
    case FrameType::kVsock: return "VSOCK";
    case FrameType::kDisk: return "DISK";
    case FrameType::kRequest: return "REQUEST";
    case FrameType::kDone: return "DONE";
    case FrameType::kAccept: return "ACCEPT";
    case FrameType::kRefuse: return "REFUSE";
    case FrameType::kRunning: return "RUNNING";
    case FrameType::kError: return "ERROR";
  }
  return cat("type ", type);
}

uint64_t max_payload(FrameType type) {
  switch (type) {
    case FrameType::kHello:
      return 8 + 4 + 4 + kMaxVersionString + 8 + 4 + 4 + 4 + 4 + kMaxCpuidEntries * sizeof(kvm_cpuid_entry2);
    case FrameType::kPages: return 8 + 4 + 2 * bitmap_bytes(kMaxWindowPages) + kMaxRunPages * kPageSize;
    case FrameType::kState: return snapshot::kMaxStateFile;
    case FrameType::kMemfd: return 8;
    case FrameType::kTap:
    case FrameType::kVsock: return 4;
    case FrameType::kMachine: return kMaxMachineSpec;
    case FrameType::kDisk: return kDiskHeader + kMaxDiskData;
    case FrameType::kReady: return 16;
    case FrameType::kPostcopy: return page_bitmap_bytes(kMaxGuestMemory);
    case FrameType::kRequest: return 8;
    case FrameType::kComplete:
    case FrameType::kDone:
    case FrameType::kEnd:
    case FrameType::kAccept:
    case FrameType::kRunning: return 0;
    case FrameType::kRefuse:
    case FrameType::kError: return kMaxText;
  }
  return 0;
}

Result<FrameHeader> decode_frame_header(std::span<const uint8_t> bytes) {
  if (bytes.size() != kFrameHeaderSize) return Error::invalid("migration frame: short header");
  uint32_t type, reserved;
  uint64_t length;
  std::memcpy(&type, bytes.data(), 4);
  std::memcpy(&reserved, bytes.data() + 4, 4);
  std::memcpy(&length, bytes.data() + 8, 8);
  std::string name = frame_name(type);
  if (name.starts_with("type ")) return Error::invalid(cat("migration frame: unknown frame ", name));
  if (reserved != 0) return Error::invalid(cat("migration frame ", name, ": reserved field is ", reserved, ", not 0"));
  uint64_t bound = max_payload(static_cast<FrameType>(type));
  if (length > bound)
    return Error::invalid(cat("migration frame ", name, ": length ", length, " exceeds its bound of ", bound));
  return FrameHeader{static_cast<FrameType>(type), length};
}

std::vector<uint8_t> encode_frame(FrameType type, std::span<const uint8_t> payload) {
  std::vector<uint8_t> out;
  out.reserve(kFrameHeaderSize + payload.size() + kFrameTrailerSize);
  Writer w{out};
  w.put(static_cast<uint32_t>(type));
  w.put(uint32_t{0});
  w.put(static_cast<uint64_t>(payload.size()));
  w.bytes(payload.data(), payload.size());
  uint32_t crc = crc32c(payload, crc32c(std::span<const uint8_t>(out.data(), kFrameHeaderSize)));
  w.put(crc);
  return out;
}

Status check_frame_crc(std::span<const uint8_t> header, std::span<const uint8_t> payload, uint32_t crc) {
  uint32_t want = crc32c(payload, crc32c(header));
  if (want != crc) {
    uint32_t type = 0;
    if (header.size() >= 4) std::memcpy(&type, header.data(), 4);
    return Error::invalid(cat("migration frame ", frame_name(type), ": corrupted (CRC-32C mismatch)"));
  }
  return ok();
}

std::vector<uint8_t> encode_hello(const Hello& h) {
  std::vector<uint8_t> out;
  Writer w{out};
  w.bytes(kMagic, sizeof kMagic);
  w.put(h.version);
  std::string v = h.vessel_version.substr(0, kMaxVersionString);
  w.put(static_cast<uint32_t>(v.size()));
  w.bytes(v.data(), v.size());
  w.put(h.memory_size);
  w.put(h.page_size);
  w.put(h.cpus);
  w.put((h.memfd ? kFlagMemfd : 0u) | (h.postcopy ? kFlagPostcopy : 0u) | (h.copy_disks ? kFlagCopyDisks : 0u));
  size_t n = std::min<size_t>(h.host_cpuid.size(), kMaxCpuidEntries);
  w.put(static_cast<uint32_t>(n));
  w.bytes(h.host_cpuid.data(), n * sizeof(kvm_cpuid_entry2));
  return out;
}

Result<Hello> decode_hello(std::span<const uint8_t> payload) {
  Reader r{payload, 0, "migration HELLO"};
  auto magic = TRY(r.take(sizeof kMagic, "magic"));
  if (std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0)
    return Error::invalid("migration HELLO: not a vessel migration stream (bad magic)");
  Hello h;
  h.version = TRY(r.get<uint32_t>("version"));
  uint32_t vlen = TRY(r.get<uint32_t>("vessel version length"));
  if (vlen > kMaxVersionString) return Error::invalid(cat("migration HELLO: vessel version length ", vlen, " is too long"));
  auto vs = TRY(r.take(vlen, "vessel version"));
  h.vessel_version.assign(vs.begin(), vs.end());
  for (char& c : h.vessel_version)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  if (h.version < kMinStreamVersion || h.version > kStreamVersion)
    return Error::invalid(cat("migration HELLO: stream version ", h.version, " (from vessel ", h.vessel_version,
                              ") is not one this vessel takes (", kMinStreamVersion, " to ", kStreamVersion, ")"));
  h.memory_size = TRY(r.get<uint64_t>("memory size"));
  h.page_size = TRY(r.get<uint32_t>("page size"));
  h.cpus = TRY(r.get<uint32_t>("vCPU count"));
  uint32_t flags = TRY(r.get<uint32_t>("flags"));
  uint32_t n = TRY(r.get<uint32_t>("CPUID entry count"));
  if (h.page_size != kPageSize) return Error::invalid(cat("migration HELLO: page size ", h.page_size, " is not 4096"));
  if (h.memory_size == 0 || h.memory_size % kPageSize != 0 || h.memory_size > kMaxGuestMemory)
    return Error::invalid(cat("migration HELLO: memory size ", h.memory_size, " is not a page multiple of 4 KiB to 1 TiB"));
  if (h.cpus == 0 || h.cpus > kMaxCpus) return Error::invalid(cat("migration HELLO: vCPU count ", h.cpus, " is not 1 to 254"));
  const uint32_t known = kFlagMemfd | kFlagPostcopy | (h.version >= kCopyDisksStreamVersion ? kFlagCopyDisks : 0u);
  if (flags & ~known)
    return Error::invalid(cat("migration HELLO: unknown flags ", std::to_string(flags), " for stream version ", h.version));
  h.memfd = flags & kFlagMemfd;
  h.postcopy = flags & kFlagPostcopy;
  h.copy_disks = flags & kFlagCopyDisks;
  if (h.memfd && h.postcopy) return Error::invalid("migration HELLO: a memfd migration cannot be post-copy");
  if (h.memfd && h.copy_disks) return Error::invalid("migration HELLO: a memfd migration does not copy disks (same host)");
  if (n > kMaxCpuidEntries) return Error::invalid(cat("migration HELLO: ", n, " CPUID entries (at most 256)"));
  auto ents = TRY(r.take(static_cast<size_t>(n) * sizeof(kvm_cpuid_entry2), "CPUID entries"));
  h.host_cpuid.resize(n);
  if (n) std::memcpy(h.host_cpuid.data(), ents.data(), ents.size());
  if (r.left() != 0) return Error::invalid(cat("migration HELLO: ", r.left(), " bytes after the last field"));
  return h;
}

std::vector<uint8_t> encode_disk(const DiskChunk& c) {
  std::vector<uint8_t> out;
  out.reserve(kDiskHeader + c.data.size());
  Writer w{out};
  w.put(c.device);
  w.put(static_cast<uint32_t>(c.op));
  w.put(c.offset);
  w.put(c.op == DiskOp::kData ? static_cast<uint64_t>(c.data.size()) : c.length);
  if (c.op == DiskOp::kData) w.bytes(c.data.data(), c.data.size());
  return out;
}

Result<DiskChunk> decode_disk(std::span<const uint8_t> payload) {
  Reader r{payload, 0, "migration DISK"};
  DiskChunk c;
  c.device = TRY(r.get<uint32_t>("device"));
  uint32_t op = TRY(r.get<uint32_t>("op"));
  c.offset = TRY(r.get<uint64_t>("offset"));
  c.length = TRY(r.get<uint64_t>("length"));
  switch (op) {
    case static_cast<uint32_t>(DiskOp::kSize):
      if (c.length != 0 || r.left() != 0) return Error::invalid("migration DISK: a SIZE with a length or data");
      if (c.offset > kMaxDiskFile) return Error::invalid(cat("migration DISK: file size ", c.offset, " exceeds 16 TiB"));
      break;
    case static_cast<uint32_t>(DiskOp::kData):
      if (c.length == 0 || c.length > kMaxDiskData || c.length != r.left())
        return Error::invalid(cat("migration DISK: DATA length ", c.length, " with ", r.left(), " bytes of data (1 byte to 1 MiB)"));
      c.data = TRY(r.take(c.length, "data"));
      break;
    case static_cast<uint32_t>(DiskOp::kZero):
      if (c.length == 0 || c.length > kMaxDiskData || r.left() != 0)
        return Error::invalid(cat("migration DISK: ZERO length ", c.length, " with ", r.left(),
                                  " bytes of data (1 byte to 1 MiB, no data)"));
      break;
    default: return Error::invalid(cat("migration DISK: unknown op ", op));
  }
  c.op = static_cast<DiskOp>(op);
  if (c.op != DiskOp::kSize && (c.offset > kMaxDiskFile || c.length > kMaxDiskFile - c.offset))
    return Error::invalid(cat("migration DISK: bytes ", c.offset, " + ", c.length, " lie past 16 TiB"));
  return c;
}

bool is_zero_page(const uint8_t* p) {
  // Eight words at a time, OR-ed: stops at the first non-zero 64 bytes.
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < kPageSize / 8; i += 8)
    if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7]) return false;
  return true;
}

std::vector<uint8_t> encode_ready(const Ready& r) {
  std::vector<uint8_t> out;
  Writer w{out};
  w.put(r.build_us);
  w.put(r.restore_estimate_us);
  return out;
}

Result<Ready> decode_ready(std::span<const uint8_t> payload) {
  Reader r{payload, 0, "migration READY"};
  Ready out;
  out.build_us = TRY(r.get<uint64_t>("build time"));
  out.restore_estimate_us = TRY(r.get<uint64_t>("restore estimate"));
  if (r.left() != 0) return Error::invalid(cat("migration READY: ", r.left(), " bytes after the last field"));
  if (out.build_us > kMaxRestoreEstimateUs)
    return Error::invalid(cat("migration READY: build time ", out.build_us, " us exceeds ", kMaxRestoreEstimateUs));
  if (out.restore_estimate_us > kMaxRestoreEstimateUs)
    return Error::invalid(cat("migration READY: restore estimate ", out.restore_estimate_us, " us exceeds ",
                              kMaxRestoreEstimateUs));
  return out;
}

void PagesFrameBuilder::begin(uint64_t offset, uint32_t count, size_t most) {
  size_t bitmap = bitmap_bytes(count);
  size_t fixed = kFrameHeaderSize + 12 + 2 * bitmap;
  size_t need = fixed + most * kPageSize + kFrameTrailerSize;
  if (buf_.size() < need) buf_.resize(need);
  uint8_t* b = buf_.data();
  uint32_t type = static_cast<uint32_t>(FrameType::kPages), reserved = 0;
  std::memcpy(b, &type, 4);
  std::memcpy(b + 4, &reserved, 4);
  std::memcpy(b + kFrameHeaderSize, &offset, 8);
  std::memcpy(b + kFrameHeaderSize + 8, &count, 4);
  sent_bits_ = b + kFrameHeaderSize + 12;
  data_bits_ = sent_bits_ + bitmap;
  std::memset(sent_bits_, 0, 2 * bitmap);
  data_count_ = zero_count_ = 0;
  data_ = b + fixed;
}

void PagesFrameBuilder::add(uint32_t i, const uint8_t* p) {
  sent_bits_[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  if (is_zero_page(p)) {
    ++zero_count_;
    return;
  }
  data_bits_[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  std::memcpy(data_, p, kPageSize);
  data_ += kPageSize;
  ++data_count_;
}

void PagesFrameBuilder::finish() {
  uint8_t* b = buf_.data();
  uint64_t length = static_cast<uint64_t>(data_ - (b + kFrameHeaderSize));
  std::memcpy(b + 8, &length, 8);
  uint32_t crc = crc32c(std::span<const uint8_t>(b, static_cast<size_t>(data_ - b)));
  std::memcpy(data_, &crc, 4);
  size_ = static_cast<size_t>(data_ - b) + kFrameTrailerSize;
}

void PagesFrameBuilder::build(uint64_t offset, uint32_t count, const std::function<const uint8_t*(uint32_t)>& page) {
  begin(offset, count, count);
  for (uint32_t i = 0; i < count; ++i)
    if (const uint8_t* p = page(i)) add(i, p);
  finish();
}

void PagesFrameBuilder::build(uint64_t offset, uint32_t count, std::span<const uint32_t> sent, const uint8_t* base) {
  begin(offset, count, sent.size());
  for (uint32_t i : sent) add(i, base + static_cast<size_t>(i) * kPageSize);
  finish();
}

std::vector<uint8_t> encode_pages(uint64_t offset, uint32_t count, const std::function<const uint8_t*(uint32_t)>& page) {
  static const uint8_t kZero[kPageSize] = {};
  PagesFrameBuilder b;
  b.build(offset, count, [&](uint32_t i) {
    const uint8_t* p = page(i);
    return p ? p : kZero;
  });
  auto p = b.payload();
  return std::vector<uint8_t>(p.begin(), p.end());
}

Result<PagesApplied> apply_pages(std::span<const uint8_t> payload, uint64_t memory_size, MemorySink& sink) {
  Reader r{payload, 0, "migration PAGES"};
  uint64_t offset = TRY(r.get<uint64_t>("offset"));
  uint32_t count = TRY(r.get<uint32_t>("count"));
  if (count == 0 || count > kMaxWindowPages)
    return Error::invalid(cat("migration PAGES: page count ", count, " is not 1 to ", kMaxWindowPages));
  if (offset % kPageSize != 0) return Error::invalid(cat("migration PAGES: offset ", offset, " is not page aligned"));
  if (offset >= memory_size || (memory_size - offset) / kPageSize < count)
    return Error::invalid(cat("migration PAGES: pages ", offset, " + ", count, " x 4096 lie outside guest RAM of ",
                              memory_size, " bytes"));
  auto sent = TRY(r.take(bitmap_bytes(count), "sent bitmap"));
  auto data_bits = TRY(r.take(bitmap_bytes(count), "data bitmap"));
  if (count % 8 != 0 && ((sent.back() >> (count % 8)) != 0 || (data_bits.back() >> (count % 8)) != 0))
    return Error::invalid("migration PAGES: bitmap bits set past the page count");
  PagesApplied out;
  for (size_t i = 0; i < sent.size(); ++i) {
    if (data_bits[i] & ~sent[i]) return Error::invalid("migration PAGES: a data page that is not marked sent");
    out.data += static_cast<uint64_t>(std::popcount(static_cast<unsigned>(data_bits[i])));
    out.zero += static_cast<uint64_t>(std::popcount(static_cast<unsigned>(sent[i] & ~data_bits[i])));
  }
  if (out.data > kMaxRunPages)
    return Error::invalid(cat("migration PAGES: ", out.data, " data pages, more than ", kMaxRunPages, " in a frame"));
  if (r.left() != out.data * kPageSize)
    return Error::invalid(cat("migration PAGES: ", r.left(), " bytes of page data for ", out.data, " data pages"));
  auto bit = [](std::span<const uint8_t> b, uint32_t i) { return (b[i / 8] >> (i % 8)) & 1; };
  uint32_t zero_run = 0;
  auto flush_zero = [&](uint32_t end) -> Status {
    if (zero_run) TRY(sink.zero_pages(offset + (end - zero_run) * kPageSize, zero_run));
    zero_run = 0;
    return ok();
  };
  for (uint32_t i = 0; i < count; ++i) {
    if (i % 8 == 0 && sent[i / 8] == 0) {  // eight pages not sent: a wide window is mostly such
      TRY(flush_zero(i));
      i += 7;
      continue;
    }
    if (bit(data_bits, i)) {
      TRY(flush_zero(i));
      auto p = TRY(r.take(kPageSize, "page data"));
      TRY(sink.write_page(offset + i * kPageSize, p.data()));
    } else if (bit(sent, i)) {
      ++zero_run;
    } else {
      TRY(flush_zero(i));
    }
  }
  TRY(flush_zero(count));
  return out;
}

std::vector<uint8_t> encode_postcopy(const std::vector<uint64_t>& missing, uint64_t memory_size) {
  std::vector<uint8_t> out(page_bitmap_bytes(memory_size));
  std::memcpy(out.data(), missing.data(), std::min(out.size(), missing.size() * 8));
  uint64_t pages = ram_pages(memory_size);
  if (pages % 8) out.back() &= static_cast<uint8_t>((1u << (pages % 8)) - 1);
  return out;
}

Result<std::vector<uint64_t>> decode_postcopy(std::span<const uint8_t> payload, uint64_t memory_size) {
  uint64_t want = page_bitmap_bytes(memory_size);
  if (payload.size() != want)
    return Error::invalid(cat("migration POSTCOPY: bitmap of ", payload.size(), " bytes, the guest's RAM needs ", want));
  uint64_t pages = ram_pages(memory_size);
  if (pages % 8 && (payload.back() >> (pages % 8)))
    return Error::invalid("migration POSTCOPY: a page past the end of guest RAM is marked missing");
  std::vector<uint64_t> bits((pages + 63) / 64);
  std::memcpy(bits.data(), payload.data(), payload.size());
  return bits;
}

std::vector<uint8_t> encode_request(uint64_t offset) {
  std::vector<uint8_t> out;
  Writer w{out};
  w.put(offset);
  return out;
}

Result<uint64_t> decode_request(std::span<const uint8_t> payload, uint64_t memory_size) {
  Reader r{payload, 0, "migration REQUEST"};
  uint64_t off = TRY(r.get<uint64_t>("offset"));
  if (r.left() != 0) return Error::invalid(cat("migration REQUEST: ", r.left(), " bytes after the offset"));
  if (off % kPageSize || off >= memory_size)
    return Error::invalid(cat("migration REQUEST: offset ", off, " is not a page of guest RAM"));
  return off;
}

std::vector<uint8_t> encode_text(const std::string& s) {
  std::string t = s.substr(0, kMaxText);
  return std::vector<uint8_t>(t.begin(), t.end());
}

std::string decode_text(std::span<const uint8_t> payload) {
  std::string s(payload.begin(), payload.begin() + static_cast<long>(std::min(payload.size(), kMaxText)));
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return s;
}

Status StreamReceiver::check_state() {
  const auto& s = state_;
  if (s.spec.memory != hello_.memory_size)
    return Error::invalid(cat("migration STATE: machine memory ", s.spec.memory, " differs from the HELLO's ", hello_.memory_size));
  if (s.spec.cpus != hello_.cpus || s.vcpus.size() != hello_.cpus)
    return Error::invalid(cat("migration STATE: ", s.vcpus.size(), " vCPU states for ", hello_.cpus, " vCPUs"));
  if (s.memory.diff) return Error::invalid("migration STATE: a diff snapshot state (memory comes in PAGES)");
  if (s.spec.irqchip != spec_.irqchip)
    return Error::invalid(cat("migration STATE: irqchip ", s.spec.irqchip ? "on" : "off", " differs from the MACHINE's (",
                              spec_.irqchip ? "on" : "off", ")"));
  // The machine is restored with the STATE's devices: they must be the MACHINE's
  // (the copied disks, and the checks of the DISK frames, are by the MACHINE's).
  if (s.spec.devices.size() != spec_.devices.size())
    return Error::invalid(cat("migration STATE: ", s.spec.devices.size(), " devices, the MACHINE had ", spec_.devices.size()));
  for (size_t i = 0; i < spec_.devices.size(); ++i) {
    const auto &a = s.spec.devices[i], &b = spec_.devices[i];
    if (a.kind != b.kind || (b.kind == snapshot::DeviceSpec::Kind::kBlock &&
                             (a.path != b.path || a.block.readonly != b.block.readonly)))
      return Error::invalid(cat("migration STATE: device ", i, " differs from the MACHINE's"));
  }
  if (hello_.copy_disks)
    for (size_t i = 0; i < spec_.devices.size(); ++i) {
      const auto& d = spec_.devices[i];
      if (d.kind == snapshot::DeviceSpec::Kind::kBlock && !d.block.readonly &&
          (i >= disk_sizes_.size() || disk_sizes_[i] == UINT64_MAX))
        return Error::invalid(cat("migration STATE: the disk of device ", i, " (", d.path, ") was not copied"));
    }
  return ok();
}

Status StreamReceiver::on_disk_frame(std::span<const uint8_t> payload) {
  if (!hello_.copy_disks) return Error::invalid("migration stream: a DISK frame, but the HELLO copies no disks");
  if (!disk_sink_) return Error::invalid("migration stream: a DISK frame, but this receiver takes no disks");
  DiskChunk c = TRY(decode_disk(payload));
  if (c.device >= spec_.devices.size())
    return Error::invalid(cat("migration DISK: device ", c.device, ", the machine has ", spec_.devices.size()));
  const auto& d = spec_.devices[c.device];
  if (d.kind != snapshot::DeviceSpec::Kind::kBlock || d.block.readonly)
    return Error::invalid(cat("migration DISK: device ", c.device, " is not a writable virtio-blk"));
  disk_sizes_.resize(spec_.devices.size(), UINT64_MAX);
  uint64_t& size = disk_sizes_[c.device];
  if (c.op == DiskOp::kSize) {
    TRY(disk_sink_->set_size(c.device, c.offset));
    size = c.offset;
    return ok();
  }
  if (size == UINT64_MAX) return Error::invalid(cat("migration DISK: device ", c.device, ": data before its SIZE"));
  if (c.offset > size || c.length > size - c.offset)
    return Error::invalid(cat("migration DISK: device ", c.device, ": bytes ", c.offset, " + ", c.length,
                              " lie past its file's ", size));
  if (c.op == DiskOp::kData) return disk_sink_->write(c.device, c.offset, c.data);
  return disk_sink_->zero(c.device, c.offset, c.length);
}

Status StreamReceiver::on_machine_frame(std::span<const uint8_t> payload) {
  spec_ = TRYC(snapshot::decode_spec(payload), "migration MACHINE");
  if (spec_.memory != hello_.memory_size)
    return Error::invalid(cat("migration MACHINE: memory size ", spec_.memory, " differs from the HELLO's ", hello_.memory_size));
  if (spec_.cpus != hello_.cpus)
    return Error::invalid(cat("migration MACHINE: vCPU count ", spec_.cpus, " differs from the HELLO's ", hello_.cpus));
  sink_ = TRY(on_machine_(spec_));
  if (!sink_ && !hello_.memfd) return Error::invalid("migration MACHINE: the receiver has no memory for the pages");
  return ok();
}

Status StreamReceiver::on_frame(const FrameHeader& h, std::span<const uint8_t> payload, bool has_fd) {
  std::string name = frame_name(static_cast<uint32_t>(h.type));
  if (payload.size() != h.length) return Error::invalid(cat("migration frame ", name, ": payload length mismatch"));
  if (has_fd && h.type != FrameType::kMemfd && h.type != FrameType::kTap && h.type != FrameType::kVsock)
    return Error::invalid(cat("migration frame ", name, ": carries a file descriptor (only MEMFD, TAP and VSOCK may)"));
  auto out_of_order = [&]() { return Error::invalid(cat("migration stream: unexpected ", name, " frame here")); };
  switch (phase_) {
    case Phase::kHello: {
      if (h.type != FrameType::kHello) return Error::invalid(cat("migration stream: starts with ", name, ", not HELLO"));
      hello_ = TRY(decode_hello(payload));
      if (hello_.memory_size > limits_.max_memory)
        return Error::invalid(cat("migration HELLO: guest memory of ", hello_.memory_size,
                                  " bytes exceeds this receiver's limit of ", limits_.max_memory));
      TRY(on_hello_(hello_));
      phase_ = Phase::kMachine;
      return ok();
    }
    case Phase::kMachine:
      if (h.type != FrameType::kMachine) return Error::invalid(cat("migration stream: ", name, " before MACHINE"));
      TRY(on_machine_frame(payload));
      phase_ = Phase::kMemory;
      return ok();
    case Phase::kMemory:
      if (h.type == FrameType::kPages) {
        if (hello_.memfd) return Error::invalid("migration stream: PAGES in a memfd migration");
        auto applied = TRY(apply_pages(payload, hello_.memory_size, *sink_));
        data_pages_ += applied.data;
        zero_pages_ += applied.zero;
        got_pages_ = true;
        return ok();
      }
      if (h.type == FrameType::kMemfd) {
        if (!hello_.memfd || got_memfd_ || got_pages_) return out_of_order();
        if (!has_fd) return Error::invalid("migration MEMFD: no file descriptor came with it");
        if (payload.size() != 8) return Error::invalid("migration MEMFD: payload is not 8 bytes");
        uint64_t size;
        std::memcpy(&size, payload.data(), 8);
        if (size != hello_.memory_size)
          return Error::invalid(cat("migration MEMFD: size ", size, " differs from the HELLO's ", hello_.memory_size));
        got_memfd_ = true;
        return ok();
      }
      if (h.type == FrameType::kTap || h.type == FrameType::kVsock) {
        // A hand-over (memfd migrations): u32 index of the device among those
        // of its kind, its fd with it, each device once.
        if (!got_memfd_) return out_of_order();
        if (!has_fd) return Error::invalid(cat("migration ", name, ": no file descriptor came with it"));
        if (payload.size() != 4) return Error::invalid(cat("migration ", name, ": payload is not 4 bytes"));
        bool tap = h.type == FrameType::kTap;
        auto kind = tap ? snapshot::DeviceSpec::Kind::kNet : snapshot::DeviceSpec::Kind::kVsock;
        const char* device = tap ? "NIC" : "vsock device";
        uint32_t index;
        std::memcpy(&index, payload.data(), 4);
        size_t count = 0;
        for (const auto& d : spec_.devices) count += d.kind == kind;
        if (index >= count) return Error::invalid(cat("migration ", name, ": ", device, " ", index, ", the machine has ", count));
        std::vector<bool>& seen = tap ? tap_seen_ : vsock_seen_;
        seen.resize(count);
        if (seen[index]) return Error::invalid(cat("migration ", name, ": ", device, " ", index, " twice"));
        seen[index] = true;
        if (tap) last_tap_nic_ = index;
        return ok();
      }
      if (h.type == FrameType::kDisk) return on_disk_frame(payload);
      if (h.type == FrameType::kPostcopy) {
        if (!hello_.postcopy || postcopy_) return out_of_order();
        auto missing = TRY(decode_postcopy(payload, hello_.memory_size));
        if (!on_postcopy_) return Error::invalid("migration POSTCOPY: this receiver does not take post-copy");
        sink_ = TRY(on_postcopy_(std::move(missing)));
        postcopy_ = true;
        return ok();
      }
      if (h.type == FrameType::kState) {
        if (hello_.memfd && !got_memfd_) return Error::invalid("migration stream: STATE before the MEMFD");
        state_ = TRYC(snapshot::decode_state(payload), "migration STATE");
        TRY(check_state());
        phase_ = Phase::kStated;
        return ok();
      }
      return out_of_order();
    case Phase::kStated:
      if (h.type != FrameType::kEnd) return out_of_order();
      phase_ = postcopy_ ? Phase::kPostcopy : Phase::kDone;
      return ok();
    case Phase::kPostcopy:
      if (h.type == FrameType::kPages) {
        auto applied = TRY(apply_pages(payload, hello_.memory_size, *sink_));
        data_pages_ += applied.data;
        zero_pages_ += applied.zero;
        return ok();
      }
      if (h.type != FrameType::kComplete) return out_of_order();
      phase_ = Phase::kDone;
      return ok();
    case Phase::kDone:
      return Error::invalid(cat("migration stream: ", name, " frame after ", postcopy_ ? "COMPLETE" : "END"));
  }
  return out_of_order();
}

}  // namespace vessel::vmm::migration
