#include "image/digest.h"

#include <openssl/evp.h>

#include "image/libs.h"

#include <cstdio>

namespace vessel::image {

bool Digest::valid_hex(std::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<Digest> Digest::parse(std::string_view s) {
  constexpr std::string_view kPrefix = "sha256:";
  if (s.substr(0, kPrefix.size()) != kPrefix || !valid_hex(s.substr(kPrefix.size())))
    return Error::invalid("invalid digest \"" + std::string(s) + "\" (want sha256:<64 hex digits>)");
  return Digest{std::string(s.substr(kPrefix.size()))};
}

struct Sha256::Impl {
  EVP_MD_CTX* ctx = crypto().EVP_MD_CTX_new();
  ~Impl() { crypto().EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) { crypto().EVP_DigestInit_ex(impl_->ctx, crypto().EVP_sha256(), nullptr); }
Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t n) { crypto().EVP_DigestUpdate(impl_->ctx, data, n); }

Digest Sha256::digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  crypto().EVP_DigestFinal_ex(impl_->ctx, md, &len);
  Digest d;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    d.hex += buf;
  }
  return d;
}

Digest sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.digest();
}

}  // namespace vessel::image
