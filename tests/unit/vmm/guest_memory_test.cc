// GuestMemory backings: the shared memfd (default) and mergeable private
// anonymous memory (--memory ...,mergeable=on), and the KSM counter reader.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "vmm/kvm/ksm.h"
#include "vmm/kvm/memory.h"
#include "vmm/snapshot/memory_file.h"

namespace vessel::vmm {
namespace {

namespace fs = std::filesystem;

// The rest of the line starting with `field` ("VmFlags:", "ShmemPmdMapped:") in the
// /proc/self/smaps entry of the mapping holding `p`; empty when there is none.
std::string smaps_line(const void* p, const std::string& field) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  auto addr = reinterpret_cast<uintptr_t>(p);
  bool in_vma = false;
  while (std::getline(smaps, line)) {
    unsigned long b = 0, e = 0;
    char perms[8];
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &b, &e, perms) == 3) in_vma = addr >= b && addr < e;  // a mapping's first line
    else if (in_vma && line.rfind(field, 0) == 0) return line.substr(field.size());
  }
  return "";
}

// Whether the mapping holding `p` has VmFlags `flag` ("mg": VM_MERGEABLE, "hg": VM_HUGEPAGE).
bool vma_flag(const void* p, const char* flag) {
  return smaps_line(p, "VmFlags:").find(std::string(" ") + flag) != std::string::npos;
}

// A smaps size field of the mapping holding `p`, in kB (-1: none).
long smaps_kb(const void* p, const std::string& field) {
  std::string v = smaps_line(p, field);
  return v.empty() ? -1 : std::atol(v.c_str());
}

TEST(GuestMemory, DefaultIsASharedMemfdNotMergeable) {
  auto mem = GuestMemory::create(8 << 20, 3ULL << 30, 4ULL << 30);
  ASSERT_TRUE(mem) << mem.error().message();
  EXPECT_GE(mem->fd(), 0);
  EXPECT_FALSE(mem->mergeable());
  EXPECT_FALSE(vma_flag(mem->linear(0), "mg"));
}

// The memfd's mapping asks for transparent huge pages (MADV_HUGEPAGE), so a
// host that allows them for shared memory maps guest RAM in 2 MiB pages; so
// does the VMM that adopts the memfd (vm upgrade).
TEST(GuestMemory, MemfdMappingsAskForHugePages) {
  if (!fs::exists("/sys/kernel/mm/transparent_hugepage")) GTEST_SKIP() << "this kernel has no transparent huge pages";
  auto mem = GuestMemory::create(8 << 20, 3ULL << 30, 4ULL << 30);
  ASSERT_TRUE(mem) << mem.error().message();
  EXPECT_TRUE(vma_flag(mem->linear(0), "hg"));
  UniqueFd dup(::fcntl(mem->fd(), F_DUPFD_CLOEXEC, 0));
  auto adopted = GuestMemory::adopt_memfd(std::move(dup), 8 << 20, 3ULL << 30, 4ULL << 30);
  ASSERT_TRUE(adopted) << adopted.error().message();
  EXPECT_TRUE(vma_flag(adopted->linear(0), "hg"));
}

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// As root, with transparent huge pages on, guest RAM is a file on a tmpfs of its own
// mounted huge=within_size: the guest's touches fill it in 2 MiB pages whatever the
// host-wide shmem_enabled says (Debian: never), which stays unchanged; no mount is left
// in the mount table; a hole punched in it (a balloon's page) is freed.
TEST(GuestMemory, RamGetsHugePagesFromAPrivateTmpfs) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root (CAP_SYS_ADMIN)";
  std::string thp = read_line("/sys/kernel/mm/transparent_hugepage/enabled");
  if (thp.empty() || thp.find("[never]") != std::string::npos) GTEST_SKIP() << "transparent huge pages are off: '" << thp << "'";
  std::string shmem_before = read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string mounts_before = read_line("/proc/self/mountinfo");
  size_t mount_count_before = 0;
  { std::ifstream m("/proc/self/mountinfo"); std::string l; while (std::getline(m, l)) ++mount_count_before; }
  constexpr uint64_t kSize = 64 << 20;
  auto mem = GuestMemory::create(kSize, 3ULL << 30, 4ULL << 30);
  ASSERT_TRUE(mem) << mem.error().message();
  struct stat st {};
  ASSERT_EQ(::fstat(mem->fd(), &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);  // unlinked: nobody can open it by name
  char link[64];
  ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(mem->fd())).c_str(), link, sizeof link - 1);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(link, static_cast<size_t>(n)).rfind("/memfd:", 0), std::string::npos) << "still a memfd";
  ASSERT_TRUE(mem->fill(0, 0x5a, kSize));
  EXPECT_GE(smaps_kb(mem->linear(0), "ShmemPmdMapped:"), 32 * 1024) << "guest RAM is not in 2 MiB pages";
  // A balloon's discard: the hole reads as zero and the data extents shrink.
  ASSERT_EQ(::fallocate(mem->fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8 << 20, 4 << 20), 0);
  auto ranges = mem->populated_ranges();
  ASSERT_TRUE(ranges) << ranges.error().message();
  uint64_t total = 0;
  for (auto [off, len] : *ranges) total += len;
  EXPECT_EQ(total, kSize - (4 << 20));
  EXPECT_EQ(*mem->read_obj<uint64_t>(9 << 20), 0u);  // (a read of the hole fills it again, with zeroes)
  EXPECT_EQ(*mem->read_obj<uint64_t>(7 << 20), 0x5a5a5a5a5a5a5a5aULL);
  EXPECT_EQ(read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled"), shmem_before);
  size_t mount_count = 0;
  { std::ifstream m("/proc/self/mountinfo"); std::string l; while (std::getline(m, l)) ++mount_count; }
  EXPECT_EQ(mount_count, mount_count_before);
  EXPECT_EQ(read_line("/proc/self/mountinfo"), mounts_before);
}

TEST(GuestMemory, MergeableIsPrivateAnonymousAndMarked) {
  auto mem = GuestMemory::create(8 << 20, 3ULL << 30, 4ULL << 30, true);
  ASSERT_TRUE(mem) << mem.error().message();
  EXPECT_EQ(mem->fd(), -1);
  EXPECT_TRUE(mem->mergeable());
  EXPECT_TRUE(vma_flag(mem->linear(0), "mg"));
  ASSERT_TRUE(mem->write_obj<uint64_t>(0x3008, 0x1234));
  ASSERT_TRUE(mem->write_obj<uint64_t>(0x7ff000, 0x5678));
  EXPECT_EQ(*mem->read_obj<uint64_t>(0x3008), 0x1234u);
  // Only the pages written are populated: a snapshot of it stays small.
  auto ranges = mem->populated_ranges();
  ASSERT_TRUE(ranges) << ranges.error().message();
  uint64_t total = 0;
  for (auto [off, len] : *ranges) total += len;
  EXPECT_EQ(total, 2 * 4096u);
  std::string dir = fs::temp_directory_path() / ("guest-memory-unit-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto st = snapshot::write_full_memory(*mem, dir + "/memory");
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->written, 2 * 4096u);
  fs::remove_all(dir);
  // A balloon's MADV_DONTNEED frees the private pages: they read as zero again.
  ASSERT_EQ(::madvise(mem->linear(0x3000), 4096, MADV_DONTNEED), 0);
  EXPECT_EQ(*mem->read_obj<uint64_t>(0x3008), 0u);
}

TEST(Ksm, ReadsTheCountersAndNamesAMissingFile) {
  std::string dir = fs::temp_directory_path() / ("ksm-unit-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (auto [name, v] : {std::pair{"run", "1\n"}, {"pages_shared", "12\n"}, {"pages_sharing", "345\n"},
                         {"pages_unshared", "6\n"}, {"full_scans", "7\n"}})
    std::ofstream(dir + "/" + name) << v;
  auto s = read_ksm_stats(dir);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->run, 1u);
  EXPECT_EQ(s->pages_sharing, 345u);
  EXPECT_EQ(s->full_scans, 7u);
  std::ofstream(dir + "/pages_shared") << "lots\n";
  auto bad = read_ksm_stats(dir);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("pages_shared"), std::string::npos) << bad.error().message();
  fs::remove(dir + "/run");
  auto missing = read_ksm_stats(dir);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/run"), std::string::npos) << missing.error().message();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vessel::vmm
