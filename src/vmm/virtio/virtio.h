// Constants of the virtio 1.x specification used by the transport and the
// devices: device types, status bits, feature bits.
#pragma once

#include <cstdint>

namespace vessel::vmm::virtio {

// Device IDs (virtio 1.2, section 5).
inline constexpr uint32_t kTypeNet = 1;
inline constexpr uint32_t kTypeBlock = 2;
inline constexpr uint32_t kTypeRng = 4;

// Device status bits (2.1).
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 64;
inline constexpr uint32_t kStatusFailed = 128;

// Transport-level feature bits (6).
inline constexpr unsigned kFIndirectDesc = 28;
inline constexpr unsigned kFEventIdx = 29;
inline constexpr unsigned kFVersion1 = 32;

inline constexpr uint64_t bit(unsigned n) { return 1ULL << n; }

// Interrupt status bits of virtio-mmio.
inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

}  // namespace vessel::vmm::virtio
