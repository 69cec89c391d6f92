// libFuzzer target: the snapshot state file parser. The first byte picks the
// entry point: the whole file (magic, version, length, CRC-32C, sections) or,
// so that mutations reach the section decoders past the checksum, the file
// with its checksum recomputed, or the bare payload. Nothing may crash, hang,
// read out of bounds or allocate without bound; a decoded state re-encodes.
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/crc32c.h"
#include "vmm/snapshot/state_file.h"

using namespace vessel;
using namespace vessel::vmm::snapshot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::span<const uint8_t> in(data + 1, size - 1);
  Result<SnapshotState> r = Error::invalid("unset");
  switch (data[0] % 3) {
    case 0: r = decode_state(in); break;
    case 1: {
      std::vector<uint8_t> b(in.begin(), in.end());
      if (b.size() >= 4) {
        uint32_t c = crc32c(std::span<const uint8_t>(b.data(), b.size() - 4));
        std::memcpy(b.data() + b.size() - 4, &c, 4);
      }
      r = decode_state(b);
      break;
    }
    case 2: r = decode_payload(in); break;
  }
  if (r) {
    // What decodes must encode and decode to the same shape.
    auto again = decode_state(encode_state(*r, r->vessel_version));
    if (!again || again->vcpus.size() != r->vcpus.size() || again->spec.devices.size() != r->spec.devices.size()) abort();
  }
  return 0;
}
