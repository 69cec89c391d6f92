#include "vmm/snapshot/codec.h"

#include "common/strings.h"

namespace vessel::vmm::snapshot {

void ByteWriter::bytes(std::span<const uint8_t> b) {
  u32(static_cast<uint32_t>(b.size()));
  out_.insert(out_.end(), b.begin(), b.end());
}

Error ByteReader::bad(std::string_view field, std::string_view problem) const {
  return Error::invalid(cat(what_, ": ", field, " ", problem));
}

Status ByteReader::need(std::string_view field, size_t n) const {
  if (left() < n) return bad(field, cat("is cut short (", n, " bytes needed, ", left(), " left)"));
  return ok();
}

Result<uint8_t> ByteReader::u8(std::string_view field) {
  TRY(need(field, 1));
  return in_[pos_++];
}

#define VESSEL_READ_LE(T, N)          \
  TRY(need(field, N));                \
  T v;                                \
  std::memcpy(&v, in_.data() + pos_, N); \
  pos_ += N;                          \
  return v;

Result<uint16_t> ByteReader::u16(std::string_view field) { VESSEL_READ_LE(uint16_t, 2) }
Result<uint32_t> ByteReader::u32(std::string_view field) { VESSEL_READ_LE(uint32_t, 4) }
Result<uint64_t> ByteReader::u64(std::string_view field) { VESSEL_READ_LE(uint64_t, 8) }
#undef VESSEL_READ_LE

Result<bool> ByteReader::boolean(std::string_view field) {
  uint8_t v = TRY(u8(field));
  if (v > 1) return bad(field, cat("is ", unsigned{v}, ", not a boolean"));
  return v == 1;
}

Result<std::span<const uint8_t>> ByteReader::bytes(std::string_view field, size_t max) {
  uint32_t n = TRY(u32(field));
  if (n > max) return bad(field, cat("is ", n, " bytes, more than ", max));
  TRY(need(field, n));
  auto out = in_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Result<std::span<const uint8_t>> ByteReader::bytes_raw(size_t n) {
  TRY(need("data", n));
  auto out = in_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Result<std::string> ByteReader::str(std::string_view field, size_t max) {
  auto b = TRY(bytes(field, max));
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

Result<uint32_t> ByteReader::count(std::string_view field, uint32_t max, size_t min_item) {
  uint32_t n = TRY(u32(field));
  if (n > max) return bad(field, cat("count ", n, " is more than ", max));
  if (min_item > 0 && n > left() / min_item) return bad(field, cat("count ", n, " does not fit in the ", left(), " bytes left"));
  return n;
}

Status ByteReader::finish() const {
  if (left() != 0) return Error::invalid(cat(what_, ": ", left(), " unexpected bytes at the end"));
  return ok();
}

}  // namespace vessel::vmm::snapshot
