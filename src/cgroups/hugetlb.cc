// hugetlb controller: v1 hugetlb.<size>.limit_in_bytes, v2 hugetlb.<size>.max (+ .rsvd.max).
#include "cgroups/controllers.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

// "2MB", "1GB", "64KB": digits and a unit, as the kernel names its files.
Status check_page_size(const std::string& s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  std::string_view unit = std::string_view(s).substr(digits);
  if (digits == 0 || (unit != "KB" && unit != "MB" && unit != "GB"))
    return Error::invalid(cat("linux.resources.hugepageLimits: invalid pageSize \"", s, "\""));
  return ok();
}

Status write_limit(const CgroupDir& dir, const std::string& file, const std::string& page_size, uint64_t limit) {
  if (!dir.has(file))
    return Error(ENOTSUP, cat("linux.resources.hugepageLimits: page size ", page_size, " is not supported (no ",
                              dir.file(file), ")"));
  return dir.write(file, std::to_string(limit));
}

}  // namespace

Status apply_hugetlb_v1(const CgroupDir& dir, const std::vector<oci::LinuxHugepageLimit>& limits) {
  for (const auto& h : limits) {
    TRY(check_page_size(h.page_size));
    TRY(write_limit(dir, cat("hugetlb.", h.page_size, ".limit_in_bytes"), h.page_size, h.limit));
  }
  return ok();
}

Status apply_hugetlb_v2(const CgroupDir& dir, const std::vector<oci::LinuxHugepageLimit>& limits) {
  for (const auto& h : limits) {
    TRY(check_page_size(h.page_size));
    TRY(write_limit(dir, cat("hugetlb.", h.page_size, ".max"), h.page_size, h.limit));
    // Reservations count too (kernels >= 5.7), as runc does.
    std::string rsvd = cat("hugetlb.", h.page_size, ".rsvd.max");
    if (dir.has(rsvd)) TRY(dir.write(rsvd, std::to_string(h.limit)));
  }
  return ok();
}

}  // namespace vessel::cgroups
