// ByteWriter / ByteReader: the little-endian encoding of snapshot state
// files. The reader is bounded: every read checks what is left and fails
// with the name of the field, so a truncated or hostile file is an Error,
// never a read past the buffer.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace vessel::vmm::snapshot {

class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { raw(&v, 2); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  // A u32 length, then the bytes.
  void bytes(std::span<const uint8_t> b);
  void str(std::string_view s) { bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size())); }
  // A kernel struct as a length-prefixed blob (the reader checks the length against its sizeof).
  template <class T>
  void blob(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), sizeof v));
  }
  void raw(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::vector<uint8_t>& data() { return out_; }
  size_t size() const { return out_.size(); }

 private:
  std::vector<uint8_t> out_;
};

class ByteReader {
 public:
  // `what` names the buffer in errors ("section VCPU").
  ByteReader(std::span<const uint8_t> in, std::string what) : in_(in), what_(std::move(what)) {}

  Result<uint8_t> u8(std::string_view field);
  Result<uint16_t> u16(std::string_view field);
  Result<uint32_t> u32(std::string_view field);
  Result<uint64_t> u64(std::string_view field);
  // 0 or 1, else an error.
  Result<bool> boolean(std::string_view field);
  // A length-prefixed byte string of at most `max` bytes.
  Result<std::span<const uint8_t>> bytes(std::string_view field, size_t max);
  Result<std::string> str(std::string_view field, size_t max);
  // The next `n` bytes, no length prefix.
  Result<std::span<const uint8_t>> bytes_raw(size_t n);
  template <class T>
  Result<T> blob(std::string_view field) {
    static_assert(std::is_trivially_copyable_v<T>);
    auto b = TRY(bytes(field, sizeof(T)));
    if (b.size() != sizeof(T)) return bad(field, "is " + std::to_string(b.size()) + " bytes, expected " + std::to_string(sizeof(T)));
    T v;
    std::memcpy(&v, b.data(), sizeof v);
    return v;
  }
  // A count that is at most `max` (and whose items fit in what is left, at `min_item` bytes each).
  Result<uint32_t> count(std::string_view field, uint32_t max, size_t min_item = 1);
  size_t left() const { return in_.size() - pos_; }
  // An error unless everything was read.
  Status finish() const;
  Error bad(std::string_view field, std::string_view problem) const;

 private:
  Status need(std::string_view field, size_t n) const;
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace vessel::vmm::snapshot
