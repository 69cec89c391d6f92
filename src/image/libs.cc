#include "image/libs.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/strings.h"

namespace vessel::image {
namespace {

template <class T>
Status resolve(void* handle, const char* lib, const char* name, T& out) {
  out = reinterpret_cast<T>(::dlsym(handle, name));
  if (!out) return Error(ENOENT, cat(lib, ": no symbol ", name));
  return ok();
}

Result<void*> open_lib(const char* name, const char* package) {
  void* h = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!h) return Error(ENOENT, cat("load ", name, " (apt-get install ", package, "): ", ::dlerror()));
  return h;
}

template <class T>
const T& or_die(const Result<const T*>& r) {
  if (!r) {
    std::fprintf(stderr, "vessel: %s\n", r.error().message().c_str());
    std::exit(1);
  }
  return **r;
}

}  // namespace

Result<const LibArchive*> load_libarchive() {
  static LibArchive table;
  static Status status = [] () -> Status {
    void* h = TRY(open_lib("libarchive.so.13", "libarchive13"));
#define VESSEL_LA(fn) TRY(resolve(h, "libarchive.so.13", #fn, table.fn));
#include "image/libarchive_functions.inc"
#undef VESSEL_LA
    return ok();
  }();
  if (!status) return status.error();
  return &table;
}

Result<const LibCrypto*> load_libcrypto() {
  static LibCrypto table;
  static Status status = [] () -> Status {
    void* h = TRY(open_lib("libcrypto.so.3", "libssl3"));
    TRY(resolve(h, "libcrypto.so.3", "EVP_MD_CTX_new", table.EVP_MD_CTX_new));
    TRY(resolve(h, "libcrypto.so.3", "EVP_MD_CTX_free", table.EVP_MD_CTX_free));
    TRY(resolve(h, "libcrypto.so.3", "EVP_DigestInit_ex", table.EVP_DigestInit_ex));
    TRY(resolve(h, "libcrypto.so.3", "EVP_DigestUpdate", table.EVP_DigestUpdate));
    TRY(resolve(h, "libcrypto.so.3", "EVP_DigestFinal_ex", table.EVP_DigestFinal_ex));
    TRY(resolve(h, "libcrypto.so.3", "EVP_sha256", table.EVP_sha256));
    return ok();
  }();
  if (!status) return status.error();
  return &table;
}

const LibArchive& la() { return or_die(load_libarchive()); }

Error archive_error(archive* a, std::string_view what) {
  int e = la().archive_errno(a);
  const char* s = la().archive_error_string(a);
  return Error(e > 0 ? e : EIO, cat(what, ": ", s ? s : "unknown archive error"));
}
const LibCrypto& crypto() { return or_die(load_libcrypto()); }

}  // namespace vessel::image
