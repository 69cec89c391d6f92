// The compiled-filter cache behind compile_seccomp_cached().
#include <seccomp.h>
#include <unistd.h>

#include <cstring>

#include "common/fs.h"
#include "common/strings.h"
#include "container/seccomp.h"

namespace vessel::container {
namespace {

// Version 2: programs start with the -ENOSYS prefix (enosys_stub); version 1 files are recompiled.
constexpr char kMagic[8] = {'V', 'S', 'B', 'P', 'F', '2', '\n', '\0'};

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// magic | flags u32 | notify u8 | source length u64 | source | bpf
std::string serialize(const SeccompProgram& p, const std::string& source) {
  std::string out(kMagic, sizeof kMagic);
  uint32_t flags = p.flags;
  uint8_t notify = p.notify;
  uint64_t len = source.size();
  out.append(reinterpret_cast<const char*>(&flags), 4);
  out.append(reinterpret_cast<const char*>(&notify), 1);
  out.append(reinterpret_cast<const char*>(&len), 8);
  out += source;
  out.append(reinterpret_cast<const char*>(p.bpf.data()), p.bpf.size() * sizeof(sock_filter));
  return out;
}

std::optional<SeccompProgram> deserialize(const std::string& data, const std::string& source) {
  size_t head = sizeof kMagic + 4 + 1 + 8;
  if (data.size() < head || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  SeccompProgram p;
  uint8_t notify;
  uint64_t len;
  std::memcpy(&p.flags, data.data() + sizeof kMagic, 4);
  std::memcpy(&notify, data.data() + sizeof kMagic + 4, 1);
  std::memcpy(&len, data.data() + sizeof kMagic + 5, 8);
  if (len != source.size() || data.size() < head + len || data.compare(head, len, source) != 0) return std::nullopt;
  size_t bytes = data.size() - head - len;
  if (bytes == 0 || bytes % sizeof(sock_filter) != 0) return std::nullopt;
  p.notify = notify;
  p.bpf.resize(bytes / sizeof(sock_filter));
  std::memcpy(p.bpf.data(), data.data() + head + len, bytes);
  return p;
}

}  // namespace

Result<SeccompProgram> compile_seccomp_cached(const oci::Seccomp& profile, const std::string& cache_dir) {
  const scmp_version* v = ::seccomp_version();
  // The same profile compiles differently with another libseccomp.
  std::string key_text = cat(profile.source, "|", v ? v->major : 0, ".", v ? v->minor : 0, ".", v ? v->micro : 0);
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.bpf", static_cast<unsigned long long>(fnv1a(key_text)));
  std::string path = path_join(cache_dir, name);
  if (auto data = read_file(path)) {
    if (auto p = deserialize(*data, key_text)) return *p;
  }
  auto prog = TRY(compile_seccomp(profile));
  if (mkdir_p(cache_dir, 0700)) (void)write_file_atomic(path, serialize(prog, key_text), 0600);
  return prog;
}

}  // namespace vessel::container
