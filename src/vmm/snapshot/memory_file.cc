#include "vmm/snapshot/memory_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"

namespace vessel::vmm::snapshot {

namespace {
constexpr uint64_t kPage = GuestMemory::kPageSize;

bool zero_page(const uint8_t* p) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t acc = 0;
  for (size_t i = 0; i < kPage / 8; i += 8)
    acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
  return acc == 0;
}

Status pwrite_all(int fd, const uint8_t* p, uint64_t len, uint64_t off, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, p, std::min<uint64_t>(len, 1ULL << 30), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::from_errno(cat("write ", path));
    p += n;
    off += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
  }
  return ok();
}

// A temporary file next to `path`, renamed over it by commit(), removed otherwise.
struct TempFile {
  std::string path, tmp;
  UniqueFd fd;
  bool done = false;
  static Result<TempFile> create(const std::string& path, uint64_t size) {
    TempFile t;
    t.path = path;
    t.tmp = cat(path, ".tmp.", ::getpid());
    t.fd = TRY(open_file(t.tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (::ftruncate(t.fd.get(), static_cast<off_t>(size)) < 0) {
      ::unlink(t.tmp.c_str());
      return Error::from_errno(cat("size ", t.tmp, " to ", size, " bytes"));
    }
    return t;
  }
  TempFile() = default;
  TempFile(TempFile&& o) noexcept : path(std::move(o.path)), tmp(std::move(o.tmp)), fd(std::move(o.fd)), done(o.done) {
    o.done = true;
  }
  ~TempFile() {
    if (!done) ::unlink(tmp.c_str());
  }
  Status commit() {
    if (::rename(tmp.c_str(), path.c_str()) < 0) return Error::from_errno(cat("rename ", tmp, " to ", path));
    done = true;
    return ok();
  }
};

// Writes the non-zero pages of [off, off+len) of `mem` at the same offsets of `fd`.
Status write_range(const GuestMemory& mem, int fd, uint64_t off, uint64_t len, const std::string& path,
                   MemoryWriteStats& st) {
  uint64_t run = 0, run_len = 0;
  for (uint64_t p = off; p < off + len; p += kPage) {
    if (!zero_page(mem.linear(p))) {
      if (run_len == 0) run = p;
      run_len += kPage;
      continue;
    }
    if (run_len) TRY(pwrite_all(fd, mem.linear(run), run_len, run, path));
    st.written += run_len;
    run_len = 0;
  }
  if (run_len) TRY(pwrite_all(fd, mem.linear(run), run_len, run, path));
  st.written += run_len;
  st.scanned += len;
  return ok();
}
}  // namespace

Result<MemoryWriteStats> write_full_memory(const GuestMemory& mem, const std::string& path) {
  auto ranges = TRYC(mem.populated_ranges(), "find the guest's memory");
  auto t = TRY(TempFile::create(path, mem.size()));
  MemoryWriteStats st;
  for (const auto& [off, len] : ranges) TRY(write_range(mem, t.fd.get(), off, len, t.tmp, st));
  TRY(t.commit());
  return st;
}

Result<MemoryWriteStats> write_diff_memory(const GuestMemory& mem, const Ranges& ranges, const std::string& path) {
  auto t = TRY(TempFile::create(path, mem.size()));
  MemoryWriteStats st;
  for (const auto& [off, len] : ranges) {
    if (off + len > mem.size()) return Error::invalid("dirty range past the end of guest memory");
    TRY(write_range(mem, t.fd.get(), off, len, t.tmp, st));
  }
  TRY(t.commit());
  return st;
}

Ranges bitmap_ranges(const std::vector<uint64_t>& bits, uint64_t pages) {
  Ranges out;
  uint64_t p = 0;
  while (p < pages) {
    if (p / 64 < bits.size() && bits[p / 64] == 0) {
      p = (p / 64 + 1) * 64;
      continue;
    }
    if (p / 64 >= bits.size() || !((bits[p / 64] >> (p % 64)) & 1)) {
      ++p;
      continue;
    }
    uint64_t start = p;
    while (p < pages && ((bits[p / 64] >> (p % 64)) & 1)) ++p;
    out.emplace_back(start * kPage, (p - start) * kPage);
  }
  return out;
}

Status merge_memory(const std::string& base_path, const std::string& diff_path, const Ranges& ranges, uint64_t size,
                    const std::string& out_path) {
  UniqueFd base = TRY(open_file(base_path, O_RDONLY | O_CLOEXEC));
  UniqueFd diff = TRY(open_file(diff_path, O_RDONLY | O_CLOEXEC));
  for (auto [fd, path] : {std::pair<int, const std::string*>{base.get(), &base_path}, {diff.get(), &diff_path}}) {
    struct stat st {};
    if (::fstat(fd, &st) < 0) return Error::from_errno(cat("stat ", *path));
    if (static_cast<uint64_t>(st.st_size) != size)
      return Error::invalid(cat("memory file ", *path, " is ", st.st_size, " bytes, the snapshot's guest has ", size));
  }
  auto t = TRY(TempFile::create(out_path, size));
  // Copy the base's data extents (holes stay holes).
  off_t pos = 0;
  while (static_cast<uint64_t>(pos) < size) {
    off_t data = ::lseek(base.get(), pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;
      return Error::from_errno(cat("SEEK_DATA in ", base_path));
    }
    off_t hole = ::lseek(base.get(), data, SEEK_HOLE);
    if (hole < 0) return Error::from_errno(cat("SEEK_HOLE in ", base_path));
    off_t in = data, out = data;
    while (in < hole) {
      ssize_t n = ::copy_file_range(base.get(), &in, t.fd.get(), &out, static_cast<size_t>(hole - in), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Error::from_errno(cat("copy ", base_path));
    }
    pos = hole;
  }
  // Then the diff's pages: zero ones punch holes.
  std::vector<uint8_t> buf(1 << 20);
  for (const auto& [off, len] : ranges) {
    if (off + len > size) return Error::invalid("diff range past the end of memory");
    for (uint64_t done = 0; done < len;) {
      uint64_t n = std::min<uint64_t>(buf.size(), len - done);
      ssize_t got = ::pread(diff.get(), buf.data(), n, static_cast<off_t>(off + done));
      if (got != static_cast<ssize_t>(n)) return Error::from_errno(cat("read ", diff_path));
      for (uint64_t p = 0; p < n; p += kPage) {
        uint64_t at = off + done + p;
        if (zero_page(buf.data() + p)) {
          if (::fallocate(t.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(at), kPage) < 0) {
            static const uint8_t kZero[kPage] = {};
            TRY(pwrite_all(t.fd.get(), kZero, kPage, at, t.tmp));
          }
        } else {
          TRY(pwrite_all(t.fd.get(), buf.data() + p, kPage, at, t.tmp));
        }
      }
      done += n;
    }
  }
  TRY(t.commit());
  return ok();
}

}  // namespace vessel::vmm::snapshot
