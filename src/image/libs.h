// libarchive and libcrypto, loaded on first use with dlopen. Only the image
// verbs need them; linking them would make every container start pay for
// loading them (and libxml2 and ICU behind libarchive) twice, as vessel
// re-executes itself before starting a container.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include <memory>
#include <string_view>

#include "common/error.h"

namespace vessel::image {

// The libarchive calls vessel makes; each member has the name and type of the function.
struct LibArchive {
#define VESSEL_LA(fn) decltype(&::fn) fn;
#include "image/libarchive_functions.inc"
#undef VESSEL_LA
};

struct LibCrypto {
  decltype(&::EVP_MD_CTX_new) EVP_MD_CTX_new;
  decltype(&::EVP_MD_CTX_free) EVP_MD_CTX_free;
  decltype(&::EVP_DigestInit_ex) EVP_DigestInit_ex;
  decltype(&::EVP_DigestUpdate) EVP_DigestUpdate;
  decltype(&::EVP_DigestFinal_ex) EVP_DigestFinal_ex;
  decltype(&::EVP_sha256) EVP_sha256;
};

// Loads the library once; an error names the missing library or symbol.
Result<const LibArchive*> load_libarchive();
Result<const LibCrypto*> load_libcrypto();

// The loaded tables for code that already checked the load; they end the process
// with a message if the library cannot be loaded.
const LibArchive& la();
const LibCrypto& crypto();

// Owning pointers of libarchive objects.
struct ArchiveReadDeleter {
  void operator()(archive* a) const { la().archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(archive* a) const { la().archive_write_free(a); }
};
struct ArchiveEntryDeleter {
  void operator()(archive_entry* e) const { la().archive_entry_free(e); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryDeleter>;

// libarchive's last error on `a` as an Error: "<what>: <message>".
Error archive_error(archive* a, std::string_view what);

}  // namespace vessel::image
