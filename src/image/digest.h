// Content digests ("sha256:<64 hex>") and a streaming SHA-256 (OpenSSL libcrypto).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace vessel::image {

// A validated OCI content digest; only sha256 is supported.
struct Digest {
  std::string hex;  // 64 lowercase hex digits

  // "sha256:<hex>"
  std::string str() const { return "sha256:" + hex; }
  bool operator==(const Digest& o) const { return hex == o.hex; }
  bool operator<(const Digest& o) const { return hex < o.hex; }

  // Parses "sha256:<64 lowercase hex>"; anything else is an error naming `s`.
  static Result<Digest> parse(std::string_view s);
  // True when `hex` is 64 lowercase hex digits (safe as a file name).
  static bool valid_hex(std::string_view hex);
};

// Incremental SHA-256: update() any number of times, then digest() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// SHA-256 of a whole buffer.
Digest sha256(std::string_view data);

}  // namespace vessel::image
