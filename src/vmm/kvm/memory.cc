#include "vmm/kvm/memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include <utility>

#include "common/strings.h"
#include "vmm/hex.h"

namespace vessel::vmm {

namespace {

// A RAM size and MMIO hole that the layout below can take.
Status check_layout(uint64_t size, uint64_t hole_start, uint64_t hole_end) {
  if (size == 0 || size % GuestMemory::kPageSize != 0)
    return Error::invalid(cat("guest memory size ", size, " is not a positive multiple of 4 KiB"));
  if (hole_start > hole_end || hole_start % GuestMemory::kPageSize != 0) return Error::invalid("bad MMIO hole");
  return ok();
}

// [0, size) when it ends below the hole, else [0, hole_start) and the rest from hole_end,
// both linear in the mapping at `base`.
std::vector<MemoryRegion> split_regions(uint8_t* base, uint64_t size, uint64_t hole_start, uint64_t hole_end) {
  uint64_t low = size <= hole_start ? size : hole_start;
  std::vector<MemoryRegion> r{{0, low, 0, base}};
  if (size > low) r.push_back({hole_end, size - low, low, base + low});
  return r;
}

// Asks for transparent huge pages on the guest-RAM memfd's mapping, as QEMU
// does on its RAM: where the host's administrator allows them for shared
// memory (/sys/kernel/mm/transparent_hugepage/shmem_enabled "advise" or
// "always"; vessel never changes it), KVM then maps the guest's memory in
// 2 MiB pages, 512x fewer nested page faults on the first touch (after a
// migration, every page). Under "never" (Debian's default) it changes nothing;
// a kernel without THP refuses it, which is not an error either.
void advise_huge_pages(void* p, uint64_t size) { (void)::madvise(p, size, MADV_HUGEPAGE); }

// The new mount API (Linux 5.2), by number: <linux/mount.h> clashes with glibc's <sys/mount.h>,
// which other files of a unity build include.
constexpr unsigned kRamFsopenCloexec = 1, kRamFsmountCloexec = 1;
constexpr unsigned kRamFsconfigSetString = 1, kRamFsconfigCmdCreate = 6;
constexpr unsigned kRamMountNosuid = 0x2, kRamMountNodev = 0x4, kRamMountNoexec = 0x8;

// Whether the host's administrator left transparent huge pages on ("always" or
// "madvise": vessel advises its RAM); "never" is respected.
bool thp_allowed() {
  int fd = ::open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);  // "always [madvise] never\n": bounded
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  return std::strstr(buf, "[never]") == nullptr;
}

// Guest RAM as an unlinked file on a tmpfs of its own with huge=within_size,
// which never appears in any mount table: fsopen() + fsmount() make a
// detached mount, the file is created in it with O_TMPFILE, and once the
// mount's fd is closed the tmpfs lives exactly as long as the file. Unlike
// a memfd, whose pages follow the host-wide shmem_enabled setting (Debian:
// "never", so 4 KiB pages), this gets 2 MiB pages where the kernel has
// them: KVM maps guest RAM with 512x fewer nested page faults. Host settings
// stay as they are. The file is a regular shmem file like a memfd (it can be
// handed to another VMM, holes punched in it). Needs CAP_SYS_ADMIN; without
// it, or on older kernels, nothing (the caller uses a memfd).
UniqueFd huge_page_ram_file(uint64_t size) {
  if (!thp_allowed()) return {};
  UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "tmpfs", kRamFsopenCloexec)));
  if (!fs) return {};
  auto set = [&](const char* key, const std::string& value) {
    return ::syscall(SYS_fsconfig, fs.get(), kRamFsconfigSetString, key, value.c_str(), 0) == 0;
  };
  // size: the file's, so the tmpfs never refuses a page of it (the default is half the host's RAM).
  if (!set("huge", "within_size") || !set("size", std::to_string(size)) || !set("nr_inodes", "4") ||
      !set("mode", "0700") || ::syscall(SYS_fsconfig, fs.get(), kRamFsconfigCmdCreate, nullptr, nullptr, 0) != 0)
    return {};
  UniqueFd mnt(static_cast<int>(
      ::syscall(SYS_fsmount, fs.get(), kRamFsmountCloexec, kRamMountNosuid | kRamMountNodev | kRamMountNoexec)));
  if (!mnt) return {};
  UniqueFd f(::openat(mnt.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  return f;
}

// The guest-RAM file of `size` bytes, all holes: a huge-page tmpfs file (when
// `huge`, where it can be made), else a memfd.
Result<UniqueFd> ram_file(uint64_t size, bool huge) {
  UniqueFd fd = huge ? huge_page_ram_file(size) : UniqueFd();
  if (!fd) {
    fd.reset(::memfd_create("vessel-guest-ram", MFD_CLOEXEC));
    if (!fd) return Error::from_errno("memfd_create guest RAM");
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) return Error::from_errno(cat("size guest RAM to ", size, " bytes"));
  return fd;
}

// A new guest-RAM file of `size` bytes (ram_file()) mapped shared, asking for
// huge pages, or (not `huge`) refusing them.
Result<std::pair<UniqueFd, uint8_t*>> map_ram_file(uint64_t size, bool huge) {
  UniqueFd fd = TRY(ram_file(size, huge));
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.get(), 0);
  if (p == MAP_FAILED) return Error::from_errno(cat("map ", size, " bytes of guest RAM"));
  if (huge) advise_huge_pages(p, size);
  else (void)::madvise(p, size, MADV_NOHUGEPAGE);
  return std::pair<UniqueFd, uint8_t*>(std::move(fd), static_cast<uint8_t*>(p));
}

}  // namespace

Result<GuestMemory> GuestMemory::create(uint64_t size, uint64_t hole_start, uint64_t hole_end, bool mergeable) {
  TRY(check_layout(size, hole_start, hole_end));
  GuestMemory m;
  void* p = nullptr;
  if (mergeable) {
    p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return Error::from_errno(cat("map ", size, " bytes of guest RAM"));
    if (::madvise(p, size, MADV_MERGEABLE) < 0) {
      int e = errno;
      ::munmap(p, size);
      return Error(e, "madvise(MADV_MERGEABLE) on guest RAM (a kernel without CONFIG_KSM?)");
    }
    m.mergeable_ = true;
  } else {
    auto [fd, base] = TRY(map_ram_file(size, true));
    m.fd_ = std::move(fd);
    p = base;
  }
  m.base_ = static_cast<uint8_t*>(p);
  m.size_ = size;
  m.regions_ = split_regions(m.base_, size, hole_start, hole_end);
  return m;
}

Result<GuestMemory> GuestMemory::create_small_pages(uint64_t size, uint64_t hole_start, uint64_t hole_end) {
  TRY(check_layout(size, hole_start, hole_end));
  GuestMemory m;
  auto [fd, base] = TRY(map_ram_file(size, false));
  m.fd_ = std::move(fd);
  m.base_ = base;
  m.size_ = size;
  m.regions_ = split_regions(m.base_, size, hole_start, hole_end);
  return m;
}

Result<GuestMemory> GuestMemory::adopt_memfd(UniqueFd fd, uint64_t size, uint64_t hole_start, uint64_t hole_end) {
  TRY(check_layout(size, hole_start, hole_end));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Error::from_errno("stat the guest RAM memfd");
  if (!S_ISREG(st.st_mode)) return Error::invalid("the guest RAM fd is not a memfd (not a regular file)");
  if (static_cast<uint64_t>(st.st_size) != size)
    return Error::invalid(cat("the guest RAM memfd is ", st.st_size, " bytes, the guest has ", size));
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.get(), 0);
  if (p == MAP_FAILED) return Error::from_errno(cat("map ", size, " bytes of guest RAM"));
  advise_huge_pages(p, size);
  GuestMemory m;
  m.fd_ = std::move(fd);
  m.base_ = static_cast<uint8_t*>(p);
  m.size_ = size;
  m.regions_ = split_regions(m.base_, size, hole_start, hole_end);
  return m;
}

Result<GuestMemory> GuestMemory::map_file(UniqueFd fd, uint64_t size, uint64_t hole_start, uint64_t hole_end,
                                          bool prefault) {
  TRY(check_layout(size, hole_start, hole_end));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Error::from_errno("stat the memory file");
  if (!S_ISREG(st.st_mode)) return Error::invalid("the memory file is not a regular file");
  if (static_cast<uint64_t>(st.st_size) != size)
    return Error::invalid(cat("the memory file is ", st.st_size, " bytes, the guest has ", size, " bytes of RAM"));
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd.get(), 0);
  if (p == MAP_FAILED) return Error::from_errno(cat("map ", size, " bytes of the memory file"));
  GuestMemory m;
  m.fd_ = std::move(fd);
  m.base_ = static_cast<uint8_t*>(p);
  m.size_ = size;
  m.file_backed_ = true;
  if (prefault) {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
    if (::madvise(p, size, MADV_POPULATE_READ) < 0) ::madvise(p, size, MADV_WILLNEED);  // older kernels: readahead
  }
  m.regions_ = split_regions(m.base_, size, hole_start, hole_end);
  return m;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : fd_(std::move(o.fd_)), base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)),
      regions_(std::move(o.regions_)), file_backed_(o.file_backed_), mergeable_(o.mergeable_), dirty_(std::move(o.dirty_)),
      dirty_words_(std::exchange(o.dirty_words_, 0)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    if (base_) ::munmap(base_, size_);
    fd_ = std::move(o.fd_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    regions_ = std::move(o.regions_);
    file_backed_ = o.file_backed_;
    mergeable_ = o.mergeable_;
    dirty_ = std::move(o.dirty_);
    dirty_words_ = std::exchange(o.dirty_words_, 0);
  }
  return *this;
}

GuestMemory::~GuestMemory() {
  if (base_) ::munmap(base_, size_);
}

uint8_t* GuestMemory::host_ptr(uint64_t gpa, uint64_t len) const {
  for (const auto& r : regions_) {
    if (gpa >= r.guest_addr && gpa - r.guest_addr <= r.size && len <= r.size - (gpa - r.guest_addr))
      return r.host + (gpa - r.guest_addr);
  }
  return nullptr;
}

Status GuestMemory::write(uint64_t gpa, std::span<const uint8_t> data) {
  uint8_t* p = host_ptr(gpa, data.size());
  if (!p) return Error::invalid(cat("guest range ", hex(gpa), "+", data.size(), " is not RAM"));
  std::memcpy(p, data.data(), data.size());
  mark_dirty(gpa, data.size());
  return ok();
}

Status GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  const uint8_t* p = host_ptr(gpa, out.size());
  if (!p) return Error::invalid(cat("guest range ", hex(gpa), "+", out.size(), " is not RAM"));
  std::memcpy(out.data(), p, out.size());
  return ok();
}

Status GuestMemory::fill(uint64_t gpa, uint8_t value, uint64_t len) {
  uint8_t* p = host_ptr(gpa, len);
  if (!p) return Error::invalid(cat("guest range ", hex(gpa), "+", len, " is not RAM"));
  std::memset(p, value, len);
  mark_dirty(gpa, len);
  return ok();
}

void GuestMemory::enable_dirty_tracking() {
  if (dirty_) return;
  dirty_words_ = (size_ / kPageSize + 63) / 64;
  dirty_ = std::make_unique<std::atomic<uint64_t>[]>(dirty_words_);
  for (size_t i = 0; i < dirty_words_; ++i) dirty_[i].store(0, std::memory_order_relaxed);
}

void GuestMemory::mark_dirty(uint64_t gpa, uint64_t len) const {
  if (!dirty_ || len == 0) return;
  for (const auto& r : regions_) {
    if (gpa < r.guest_addr || gpa - r.guest_addr >= r.size) continue;
    uint64_t off = r.fd_offset + (gpa - r.guest_addr);
    uint64_t end = off + std::min(len, r.size - (gpa - r.guest_addr));
    for (uint64_t page = off / kPageSize; page * kPageSize < end; ++page)
      dirty_[page / 64].fetch_or(1ULL << (page % 64), std::memory_order_relaxed);
    return;
  }
}

std::vector<uint64_t> GuestMemory::take_dirty() {
  std::vector<uint64_t> out;
  if (!dirty_) return out;
  out.resize(dirty_words_);
  for (size_t i = 0; i < dirty_words_; ++i) out[i] = dirty_[i].exchange(0, std::memory_order_relaxed);
  return out;
}

namespace {
// Data extents of `fd` within [0, size), by SEEK_DATA / SEEK_HOLE.
Result<std::vector<std::pair<uint64_t, uint64_t>>> data_extents(int fd, uint64_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  off_t pos = 0;
  while (static_cast<uint64_t>(pos) < size) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data after pos
      if (errno == EINVAL) {      // no SEEK_DATA on this file system: all of it may be data
        out.clear();
        out.emplace_back(0, size);
        return out;
      }
      return Error::from_errno("SEEK_DATA on guest memory");
    }
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return Error::from_errno("SEEK_HOLE on guest memory");
    uint64_t b = static_cast<uint64_t>(data) / GuestMemory::kPageSize * GuestMemory::kPageSize;
    uint64_t e = std::min<uint64_t>(size, (static_cast<uint64_t>(hole) + GuestMemory::kPageSize - 1) /
                                              GuestMemory::kPageSize * GuestMemory::kPageSize);
    if (e > b) out.emplace_back(b, e - b);
    pos = hole;
  }
  return out;
}

// Merges sorted-by-start ranges that touch or overlap.
std::vector<std::pair<uint64_t, uint64_t>> coalesce(std::vector<std::pair<uint64_t, uint64_t>> r) {
  std::sort(r.begin(), r.end());
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& [b, len] : r) {
    if (!out.empty() && b <= out.back().first + out.back().second) {
      uint64_t end = std::max(out.back().first + out.back().second, b + len);
      out.back().second = end - out.back().first;
    } else {
      out.emplace_back(b, len);
    }
  }
  return out;
}

// Appends to `out` the page runs of [base, base+size) that /proc/self/pagemap
// shows as private anonymous memory (present without the file-page bit 61, or
// swapped: bit 62); with `any_present`, every present page counts.
Status pagemap_ranges(const uint8_t* base, uint64_t size, bool any_present,
                      std::vector<std::pair<uint64_t, uint64_t>>& out) {
  constexpr uint64_t kPage = GuestMemory::kPageSize;
  int pm = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pm < 0) return Error::from_errno("open /proc/self/pagemap");
  UniqueFd pagemap(pm);
  const uint64_t pages = size / kPage;
  std::vector<uint64_t> entries(65536);
  uint64_t run_start = 0;
  bool in_run = false;
  for (uint64_t first = 0; first < pages; first += entries.size()) {
    uint64_t n = std::min<uint64_t>(entries.size(), pages - first);
    uint64_t vpage = reinterpret_cast<uint64_t>(base) / kPage + first;
    ssize_t got = ::pread(pm, entries.data(), n * 8, static_cast<off_t>(vpage * 8));
    if (got != static_cast<ssize_t>(n * 8)) return Error::from_errno("read /proc/self/pagemap");
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t e = entries[i];
      bool present = (e >> 63) & 1, swapped = (e >> 62) & 1, file = (e >> 61) & 1;
      bool take = swapped || (present && (any_present || !file));
      if (take && !in_run) {
        run_start = first + i;
        in_run = true;
      } else if (!take && in_run) {
        out.emplace_back(run_start * kPage, (first + i - run_start) * kPage);
        in_run = false;
      }
    }
  }
  if (in_run) out.emplace_back(run_start * kPage, (pages - run_start) * kPage);
  return ok();
}
}  // namespace

Result<std::vector<std::pair<uint64_t, uint64_t>>> GuestMemory::populated_ranges() const {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  if (mergeable_) {
    TRY(pagemap_ranges(base_, size_, true, ranges));
    return ranges;
  }
  ranges = TRY(data_extents(fd_.get(), size_));
  if (!file_backed_) return ranges;
  TRY(pagemap_ranges(base_, size_, false, ranges));
  return coalesce(std::move(ranges));
}

}  // namespace vessel::vmm
