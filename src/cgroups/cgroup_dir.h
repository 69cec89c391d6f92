// CgroupDir: one cgroup directory. Every control-file access goes through it,
// so errors name the file and value, and tests can record the writes.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace vessel::cgroups {

// Receives "file=value" for every control-file write (tests; nullptr in production).
using WriteLog = std::vector<std::string>;

// Makes a series of control-file writes all-or-nothing (Manager::apply). In the
// check pass nothing is written: a write only checks that its file exists, while
// the caller's own checks (ranges, current values) run as usual. In the write
// pass each file's content is saved before its first write, so that rollback()
// can put back what a later failure would otherwise leave half applied.
class WriteJournal {
 public:
  explicit WriteJournal(bool check_only) : check_only_(check_only) {}

  bool check_only() const { return check_only_; }
  // Saves `path`'s current content before its first write. Files of keyed entries
  // (per-device lines, device rules, interface priorities) are not saved: their
  // content cannot be written back as a whole.
  void remember(const std::string& path);
  // Writes the saved contents back, the last written file first, so every step
  // passes through a state the kernel accepted before. Best effort: the first error.
  Status rollback();

 private:
  bool check_only_;
  std::vector<std::pair<std::string, std::string>> saved_;  // path, content before
};

class CgroupDir {
 public:
  explicit CgroupDir(std::string path, WriteLog* log = nullptr, WriteJournal* journal = nullptr)
      : path_(std::move(path)), log_(log), journal_(journal) {}

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const;

  // Writes `value` to an existing control file (never creates one). Under a
  // check-only journal, only checks that the file exists.
  Status write(std::string_view name, std::string_view value) const;
  // Whether writes only check (the validation pass of an apply).
  bool check_only() const { return journal_ && journal_->check_only(); }
  // Reads a control file, trailing whitespace removed.
  Result<std::string> read(std::string_view name) const;
  // Reads a control file holding one integer (or "max", returned as -1).
  Result<int64_t> read_int(std::string_view name) const;
  bool has(std::string_view name) const;

 private:
  std::string path_;
  WriteLog* log_;
  WriteJournal* journal_;
};

}  // namespace vessel::cgroups
