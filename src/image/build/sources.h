// Where COPY and ADD read from: the build context (less what .dockerignore
// excludes) or, with --from, the rootfs of an earlier stage or of an image.
// Every lookup stays inside the root: paths resolve with openat2(RESOLVE_IN_ROOT),
// so a symlink in the context cannot reach the builder's host files.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "image/digest.h"

namespace vessel::image::build {

// .dockerignore: patterns (Go filepath.Match syntax plus "**"), "!" re-includes; the last match wins.
class IgnoreRules {
 public:
  static Result<IgnoreRules> parse(const std::string& text);
  // True when `rel` ("a/b/c") or one of its parent directories is excluded.
  bool excluded(const std::string& rel) const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::regex re;
    bool negate;
  };
  std::vector<Rule> rules_;
};

// One file or directory met by SourceRoot::walk().
struct SourceEntry {
  std::string rel;     // path from the root ("dir/file")
  struct stat st {};   // lstat, except for the walk's starting point (followed)
  UniqueFd fd;         // O_RDONLY fd of regular files and directories
  std::string link;    // target of a symlink
};

class SourceRoot {
 public:
  // The context directory, with its .dockerignore if there is one.
  static Result<SourceRoot> context(const std::string& dir);
  // A mounted rootfs (fd is duplicated); nothing excluded.
  static Result<SourceRoot> rootfs(int fd);

  bool is_context() const { return is_context_; }
  bool excluded(const std::string& rel) const { return rules_.excluded(rel); }
  // The clean relative paths ("" is the root) matching `pattern` ("*", "?", "[…]" in any
  // component), sorted; an error naming the pattern when nothing matches.
  Result<std::vector<std::string>> match(const std::string& pattern) const;
  // Opens `rel` inside the root (a final symlink is followed, inside the root).
  Result<UniqueFd> open(const std::string& rel, int flags) const;
  // Visits `rel` and, for a directory, everything below it: parents before children,
  // names sorted, excluded paths skipped, symlinks below `rel` not followed.
  Status walk(const std::string& rel, const std::function<Status(SourceEntry&)>& visit) const;
  // A digest of what copying these paths would copy: names, types, modes, file contents and
  // link targets (not times), in order; excluded files are left out.
  Result<Digest> hash(const std::vector<std::string>& rels) const;

 private:
  UniqueFd fd_;
  IgnoreRules rules_;
  bool is_context_ = false;
};

// The path made clean: no "." or empty components, ".." resolved without leaving "/"; keeps a leading "/".
std::string clean_path(const std::string& p);

}  // namespace vessel::image::build
