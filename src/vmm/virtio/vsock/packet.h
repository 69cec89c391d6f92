// The virtio-vsock packet header and constants (virtio 1.2, 5.10).
#pragma once

#include <cstdint>

namespace vessel::vmm::virtio::vsock {

inline constexpr uint32_t kTypeVsock = 19;

// The host's context ID (VMADDR_CID_HOST); guests get 3 and up.
inline constexpr uint64_t kHostCid = 2;
inline constexpr uint64_t kMinGuestCid = 3;
// CIDs above this are reserved (VMADDR_CID_ANY is 0xffffffff).
inline constexpr uint64_t kMaxGuestCid = 0xfffffffeULL;

inline constexpr uint16_t kTypeStream = 1;

enum Op : uint16_t {
  kOpInvalid = 0,
  kOpRequest = 1,
  kOpResponse = 2,
  kOpRst = 3,
  kOpShutdown = 4,
  kOpRw = 5,
  kOpCreditUpdate = 6,
  kOpCreditRequest = 7,
};

// SHUTDOWN flags: the sender will receive / send no more.
inline constexpr uint32_t kShutdownRcv = 1;
inline constexpr uint32_t kShutdownSend = 2;

// Event queue: the only event, after a snapshot restore (connections are gone).
inline constexpr uint32_t kEventTransportReset = 0;

// virtio_vsock_hdr, little endian, packed.
struct __attribute__((packed)) Header {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
static_assert(sizeof(Header) == 44);

// Largest payload accepted in one packet (Linux sends at most 64 KiB).
inline constexpr uint32_t kMaxPayload = 64 * 1024;

}  // namespace vessel::vmm::virtio::vsock
