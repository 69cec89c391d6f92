// The snapshot state file: SnapshotState as bytes.
//
//   magic "VESSELSN" | u32 format version | str vessel version | u64 payload length
//   | payload: sections { u32 tag, u64 length, body } | u32 CRC-32C of all bytes before it
//
// Sections: SPEC (machine), DISK (image files), VMST (irqchip, PIT, clock),
// VCPU (one per vCPU, in order), DEVS (platform and virtio devices), MEMF
// (the memory file), IDS (snapshot id and parent), CONF (optional: the
// VMM's JSON config of the VM, opaque here). Every length and count is
// checked against what is left and against a bound; a section must be read
// to its end. Errors say what is wrong: not a snapshot, another format
// version (naming the vessel that wrote it), truncated, corrupted (checksum),
// or which field of which section is bad.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/snapshot/state.h"

namespace vessel::vmm::snapshot {

inline constexpr char kMagic[8] = {'V', 'E', 'S', 'S', 'E', 'L', 'S', 'N'};
// Version 2 added SPEC's VM generation ID address; version 3 the balloon and
// vsock devices (their options in SPEC, their state in DEVS); version 4 the
// RTC's offset from the host clock (a guest that set its clock keeps it).
// Versions 1 to 3 are still read (as machines without VMGENID, balloon or
// vsock, and an RTC on the host's time).
inline constexpr uint32_t kFormatVersion = 4;
// The largest RTC offset read (seconds either way: ~10,000 years, what the
// RTC's century and year registers can express).
inline constexpr int64_t kMaxRtcOffset = 320000000000LL;
inline constexpr uint32_t kMinFormatVersion = 1;
// Largest state file read (a 254-vCPU machine with large XSAVE areas is ~2 MiB).
inline constexpr size_t kMaxStateFile = 64ULL << 20;

// Encodes `s` (its vessel_version is replaced by `vessel_version`).
// `format_version` below kFormatVersion writes an older format (tests of
// reading old files): the VMGENID address is left out before 2; a balloon or
// vsock device before 3 gives a file no reader accepts.
std::vector<uint8_t> encode_state(const SnapshotState& s, const std::string& vessel_version,
                                  uint32_t format_version = kFormatVersion);
// Decodes and validates a whole state file.
Result<SnapshotState> decode_state(std::span<const uint8_t> file);
// Decodes only the payload (the sections) of a file of format `version`,
// skipping header and checksum (fuzzing reaches deeper this way).
Result<SnapshotState> decode_payload(std::span<const uint8_t> payload, uint32_t version = kFormatVersion);

// Encodes and decodes a state of the shape a machine of `spec` gives (its
// vCPUs, devices and memory, the registers all zero) and drops it. A live
// migration runs the codec in the downtime, where the first run of its code
// costs: the binary's pages are faulted in (from disk, for a `vm upgrade` to
// a new binary), and under emulation (the VM harness) each block of it is
// translated, which took 15-40 ms of a 60 ms downtime there. So the sender
// rehearses before the pause and the receiver while the pages come.
Status rehearse_state_codec(const VmSpec& spec);

// The machine description alone, as the body of a SPEC section (format
// kFormatVersion, no framing: the caller checks integrity): what a live
// migration sends ahead of the memory, so that the destination builds the
// machine while the pages still flow. decode_spec() checks every field and
// that nothing follows; errors name the field ("machine spec: ...").
std::vector<uint8_t> encode_spec(const VmSpec& s);
Result<VmSpec> decode_spec(std::span<const uint8_t> bytes);

// Reads (bounded by kMaxStateFile) and decodes a state file; errors name the path.
Result<SnapshotState> read_state_file(const std::string& path);
// Writes a state file atomically (temporary file + rename).
Status write_state_file(const std::string& path, const SnapshotState& s, const std::string& vessel_version);

}  // namespace vessel::vmm::snapshot
