// GuestMemory backings: the shared memfd (default) and mergeable private
// anonymous memory (--memory ...,mergeable=on), and the KSM counter reader.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "vmm/kvm/ksm.h"
#include "vmm/kvm/memory.h"
#include "vmm/snapshot/memory_file.h"

namespace vessel::vmm {
namespace {

namespace fs = std::filesystem;

// Whether the mapping holding `p` has VmFlags `flag` in /proc/self/smaps
// ("mg": VM_MERGEABLE, "hg": VM_HUGEPAGE).
bool vma_flag(const void* p, const char* flag) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  auto addr = reinterpret_cast<uintptr_t>(p);
  bool in_vma = false;
  while (std::getline(smaps, line)) {
    unsigned long b = 0, e = 0;
    char perms[8];
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &b, &e, perms) == 3) {  // a mapping's first line
      in_vma = addr >= b && addr < e;
    } else if (in_vma && line.rfind("VmFlags:", 0) == 0) {
      return line.find(std::string(" ") + flag) != std::string::npos;
    }
  }
  return false;
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
