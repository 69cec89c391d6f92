// CgroupDir: one cgroup directory. Every control-file access goes through it,
// so errors name the file and value, and tests can record the writes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace vessel::cgroups {

// Receives "file=value" for every control-file write (tests; nullptr in production).
using WriteLog = std::vector<std::string>;

class CgroupDir {
 public:
  explicit CgroupDir(std::string path, WriteLog* log = nullptr) : path_(std::move(path)), log_(log) {}

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const;

  // Writes `value` to an existing control file (never creates one).
  Status write(std::string_view name, std::string_view value) const;
  // Reads a control file, trailing whitespace removed.
  Result<std::string> read(std::string_view name) const;
  // Reads a control file holding one integer (or "max", returned as -1).
  Result<int64_t> read_int(std::string_view name) const;
  bool has(std::string_view name) const;

 private:
  std::string path_;
  WriteLog* log_;
};

}  // namespace vessel::cgroups
