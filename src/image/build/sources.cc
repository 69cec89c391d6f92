#include "image/build/sources.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "common/fs.h"
#include "common/strings.h"
#include "sys/syscalls.h"

namespace vessel::image::build {

namespace {

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// A .dockerignore pattern as a regex over the whole relative path.
std::string pattern_regex(const std::string& pat) {
  std::string re;
  for (size_t i = 0; i < pat.size(); ++i) {
    char c = pat[i];
    if (c == '*') {
      if (i + 1 < pat.size() && pat[i + 1] == '*') {
        ++i;
        if (i + 1 < pat.size() && pat[i + 1] == '/') {
          ++i;
          re += "(.*/)?";
        } else {
          re += ".*";
        }
      } else {
        re += "[^/]*";
      }
    } else if (c == '?') {
      re += "[^/]";
    } else if (c == '[') {
      size_t end = pat.find(']', i + 1);
      if (end == std::string::npos) {
        re += "\\[";
        continue;
      }
      std::string cls = pat.substr(i + 1, end - i - 1);
      if (!cls.empty() && cls[0] == '!') cls[0] = '^';
      std::string esc;
      for (char k : cls) esc += (k == '\\') ? std::string("\\\\") : std::string(1, k);
      re += "[" + esc + "]";
      i = end;
    } else if (c == '\\' && i + 1 < pat.size()) {
      re += '\\';
      re += pat[++i];
    } else if (std::string_view(".^$|()+{}").find(c) != std::string_view::npos) {
      re += '\\';
      re += c;
    } else {
      re += c;
    }
  }
  return re;
}

std::vector<std::string> sorted_names(int dir_fd) {
  std::vector<std::string> names;
  DIR* d = ::fdopendir(::dup(dir_fd));
  if (!d) return names;
  ::rewinddir(d);
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string join_rel(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

Result<std::string> read_link_at(int dir, const std::string& name) {
  char buf[4096];
  ssize_t n = ::readlinkat(dir, name.c_str(), buf, sizeof buf);
  if (n < 0) return Error::from_errno("readlink " + name);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::string clean_path(const std::string& p) {
  bool abs = !p.empty() && p[0] == '/';
  std::vector<std::string> out;
  for (auto& c : split(p, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!out.empty() && out.back() != "..") out.pop_back();
      else if (!abs) out.push_back("..");
      continue;
    }
    out.push_back(c);
  }
  std::string s = abs ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) s += (i ? "/" : "") + out[i];
  return s.empty() ? "." : s;
}

Result<IgnoreRules> IgnoreRules::parse(const std::string& text) {
  IgnoreRules r;
  for (auto& raw : split(text, '\n')) {
    std::string line(trim(raw));
    if (line.empty() || line[0] == '#') continue;
    bool negate = line[0] == '!';
    if (negate) line = std::string(trim(std::string_view(line).substr(1)));
    line = clean_path(line);
    while (!line.empty() && line[0] == '/') line.erase(0, 1);
    if (line.empty() || line == ".") continue;
    try {
      r.rules_.push_back({std::regex("^" + pattern_regex(line) + "$"), negate});
    } catch (const std::regex_error&) {
      return Error::invalid(".dockerignore: bad pattern \"" + raw + "\"");
    }
  }
  return r;
}

bool IgnoreRules::excluded(const std::string& rel) const {
  if (rules_.empty() || rel.empty()) return false;
  // Each prefix of the path ("a", "a/b", …): excluding a directory excludes what is in it.
  std::vector<std::string> prefixes;
  for (size_t i = 0; i <= rel.size(); ++i)
    if (i == rel.size() || rel[i] == '/') prefixes.push_back(rel.substr(0, i));
  bool out = false;
  for (auto& rule : rules_) {
    bool hit = false;
    for (auto& p : prefixes)
      if (std::regex_match(p, rule.re)) {
        hit = true;
        break;
      }
    if (hit) out = !rule.negate;
  }
  return out;
}

Result<SourceRoot> SourceRoot::context(const std::string& dir) {
  SourceRoot s;
  s.fd_ = TRYC(open_file(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "build context");
  s.is_context_ = true;
  auto ignore = sys::openat2(s.fd_.get(), ".dockerignore", O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
  if (ignore) {
    struct stat st{};
    if (::fstat(ignore->get(), &st) < 0 || !S_ISREG(st.st_mode)) return Error::invalid("build context: .dockerignore is not a regular file");
    s.rules_ = TRY(IgnoreRules::parse(TRYC(read_fd_bounded(ignore->get(), kMaxConfigBytes), ".dockerignore")));
  }
  return s;
}

Result<SourceRoot> SourceRoot::rootfs(int fd) {
  SourceRoot s;
  s.fd_ = TRY(sys::openat2(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT));
  return s;
}

Result<UniqueFd> SourceRoot::open(const std::string& rel, int flags) const {
  return sys::openat2(fd_.get(), rel.empty() ? "." : rel, static_cast<uint64_t>(flags | O_CLOEXEC), 0,
                      RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

Result<std::vector<std::string>> SourceRoot::match(const std::string& pattern) const {
  std::string p = clean_path(pattern);
  while (!p.empty() && p[0] == '/') p.erase(0, 1);
  if (p == "." || p.empty()) p = "";
  if (p == ".." || starts_with(p, "../"))
    return Error::invalid("source \"" + pattern + "\" is outside the " + (is_context_ ? "build context" : "stage's root"));
  std::vector<std::string> found{""};
  for (auto& comp : split(p, '/')) {
    if (comp.empty()) continue;
    std::vector<std::string> next;
    for (auto& base : found) {
      if (!has_glob(comp)) {
        next.push_back(join_rel(base, comp));
        continue;
      }
      auto dir = open(base, O_RDONLY | O_DIRECTORY);
      if (!dir) continue;
      for (auto& n : sorted_names(dir->get()))
        if (::fnmatch(comp.c_str(), n.c_str(), 0) == 0) next.push_back(join_rel(base, n));
    }
    found = std::move(next);
  }
  std::vector<std::string> out;
  for (auto& f : found)
    if (!excluded(f) && open(f, O_PATH)) out.push_back(f);
  std::sort(out.begin(), out.end());
  if (out.empty())
    return Error(ENOENT, cat("source \"", pattern, "\": no such file in the ", is_context_ ? "build context" : "stage's root",
                             is_context_ && !rules_.empty() ? " (or excluded by .dockerignore)" : ""));
  return out;
}

Status SourceRoot::walk(const std::string& rel, const std::function<Status(SourceEntry&)>& visit) const {
  // The starting point: symlinks are followed (inside the root), as Docker does for a source.
  SourceEntry top;
  top.rel = rel;
  auto fd = TRYC(open(rel, O_PATH), "source \"" + rel + "\"");
  if (::fstat(fd.get(), &top.st) < 0) return Error::from_errno("stat " + rel);
  if (S_ISREG(top.st.st_mode) || S_ISDIR(top.st.st_mode)) top.fd = TRY(open(rel, O_RDONLY | O_NONBLOCK));
  TRY(visit(top));
  if (!S_ISDIR(top.st.st_mode)) return ok();
  // Below it: lstat, nothing followed.
  std::function<Status(int, const std::string&)> below = [&](int dir, const std::string& dir_rel) -> Status {
    for (auto& name : sorted_names(dir)) {
      SourceEntry e;
      e.rel = join_rel(dir_rel, name);
      if (excluded(e.rel)) continue;
      if (::fstatat(dir, name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) < 0) return Error::from_errno("stat " + e.rel);
      if (S_ISLNK(e.st.st_mode)) {
        e.link = TRY(read_link_at(dir, name));
      } else if (S_ISREG(e.st.st_mode) || S_ISDIR(e.st.st_mode)) {
        e.fd.reset(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!e.fd) return Error::from_errno("open " + e.rel);
      }
      TRY(visit(e));
      if (S_ISDIR(e.st.st_mode)) TRY(below(e.fd.get(), e.rel));
    }
    return ok();
  };
  return below(top.fd.get(), rel);
}

Result<Digest> SourceRoot::hash(const std::vector<std::string>& rels) const {
  Sha256 h;
  for (auto& rel : rels) {
    TRY(walk(rel, [&](SourceEntry& e) -> Status {
      std::string rel_below = e.rel.substr(std::min(e.rel.size(), rel.size()));
      h.update(cat(rel, "|", rel_below, "|", e.st.st_mode, "|"));
      if (S_ISLNK(e.st.st_mode)) h.update(e.link);
      if (S_ISREG(e.st.st_mode)) {
        h.update(cat(e.st.st_size, "|"));
        char buf[1 << 16];
        while (true) {
          ssize_t n = ::read(e.fd.get(), buf, sizeof buf);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return Error::from_errno("read " + e.rel);
          if (n == 0) break;
          h.update(buf, static_cast<size_t>(n));
        }
        if (::lseek(e.fd.get(), 0, SEEK_SET) < 0) return Error::from_errno("seek " + e.rel);
      }
      h.update("\n");
      return ok();
    }));
  }
  return h.digest();
}

}  // namespace vessel::image::build
