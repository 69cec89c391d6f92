#include "image/user.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>

#include <algorithm>
#include <optional>

#include "common/fs.h"
#include "common/strings.h"
#include "sys/syscalls.h"

namespace vessel::image {

namespace {

// Larger /etc/passwd or /etc/group files are refused (a hostile image must not make us read gigabytes).
constexpr off_t kMaxFileSize = 16 << 20;

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// A uid or gid: decimal, below (uid_t)-1, which means "no id".
std::optional<uint32_t> parse_id(std::string_view s) {
  auto v = parse_u64(s);
  if (!v || *v >= 0xffffffffu) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

bool is_number(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The fields of each meaningful line (comments, blank lines and NIS "+"/"-" entries skipped).
std::vector<std::vector<std::string>> records(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  for (auto& line : split(text, '\n')) {
    std::string_view l = trim(line);
    if (l.empty() || l[0] == '#' || l[0] == '+' || l[0] == '-') continue;
    out.push_back(split(l, ':'));
  }
  return out;
}

// Malformed lines are skipped, as glibc's files backend does.
std::vector<PasswdEntry> parse_passwd(const std::string& text) {
  std::vector<PasswdEntry> out;
  for (auto& f : records(text)) {
    if (f.size() < 4 || f[0].empty()) continue;
    auto uid = parse_id(f[2]), gid = parse_id(f[3]);
    if (uid && gid) out.push_back({f[0], *uid, *gid});
  }
  return out;
}

std::vector<GroupEntry> parse_group(const std::string& text) {
  std::vector<GroupEntry> out;
  for (auto& f : records(text)) {
    if (f.size() < 3 || f[0].empty()) continue;
    auto gid = parse_id(f[2]);
    if (!gid) continue;
    GroupEntry g{f[0], *gid, {}};
    if (f.size() > 3)
      for (auto& m : split(f[3], ','))
        if (auto t = trim(m); !t.empty()) g.members.emplace_back(t);
    out.push_back(std::move(g));
  }
  return out;
}

// The resolution itself; a nullopt file is one the image does not have.
Result<ResolvedUser> resolve(const std::string& user, const std::optional<std::string>& passwd,
                             const std::optional<std::string>& group) {
  std::string spec = user.empty() ? "0" : user;  // no User: root
  size_t colon = spec.find(':');
  std::string name = spec.substr(0, colon);
  std::optional<std::string> group_arg;
  if (colon != std::string::npos) group_arg = spec.substr(colon + 1);
  if (name.empty() || (group_arg && (group_arg->empty() || group_arg->find(':') != std::string::npos)))
    return Error::invalid(cat("invalid user \"", user, "\" (want name, uid, name:group or uid:gid)"));

  ResolvedUser r;
  std::string login;  // the user's name in /etc/passwd, for its supplementary groups
  auto users = passwd ? parse_passwd(*passwd) : std::vector<PasswdEntry>{};
  if (is_number(name)) {
    auto uid = parse_id(name);
    if (!uid) return Error::invalid(cat("user \"", user, "\": uid ", name, " is out of range"));
    r.uid = *uid;
    auto it = std::find_if(users.begin(), users.end(), [&](auto& e) { return e.uid == *uid; });
    if (it != users.end()) {
      r.gid = it->gid;
      login = it->name;
    }
  } else {
    if (!passwd) return Error(ENOENT, cat("user \"", name, "\": the image has no /etc/passwd"));
    auto it = std::find_if(users.begin(), users.end(), [&](auto& e) { return e.name == name; });
    if (it == users.end()) return Error(ENOENT, cat("user \"", name, "\" not found in the image's /etc/passwd"));
    r.uid = it->uid;
    r.gid = it->gid;
    login = it->name;
  }

  if (group_arg) {  // an explicit group replaces the primary group, and the user gets no other
    if (is_number(*group_arg)) {
      auto gid = parse_id(*group_arg);
      if (!gid) return Error::invalid(cat("user \"", user, "\": gid ", *group_arg, " is out of range"));
      r.gid = *gid;
      return r;
    }
    if (!group) return Error(ENOENT, cat("group \"", *group_arg, "\": the image has no /etc/group"));
    auto groups = parse_group(*group);
    auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.name == *group_arg; });
    if (it == groups.end()) return Error(ENOENT, cat("group \"", *group_arg, "\" not found in the image's /etc/group"));
    r.gid = it->gid;
    return r;
  }
  if (login.empty() || !group) return r;
  for (auto& g : parse_group(*group)) {
    bool member = std::find(g.members.begin(), g.members.end(), login) != g.members.end();
    bool seen = std::find(r.additional_gids.begin(), r.additional_gids.end(), g.gid) != r.additional_gids.end();
    if (member && !seen) r.additional_gids.push_back(g.gid);
  }
  return r;
}

// Reads `path` of the rootfs (symlinks resolved inside it); nullopt when the image has no such file.
Result<std::optional<std::string>> read_in_root(int rootfd, const std::string& path) {
  // O_NONBLOCK: a FIFO planted at the path must not hang us; it is refused below.
  auto fd = sys::openat2(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  if (!fd) {
    if (fd.error().code() == ENOENT || fd.error().code() == ENOTDIR) return std::optional<std::string>();
    return std::move(fd).error().context("the image's " + path);
  }
  struct stat st{};
  if (::fstat(fd->get(), &st) < 0) return Error::from_errno("stat the image's " + path);
  if (!S_ISREG(st.st_mode)) return Error::invalid("the image's " + path + " is not a regular file");
  if (st.st_size > kMaxFileSize) return Error(EFBIG, cat("the image's ", path, " is larger than ", kMaxFileSize, " bytes"));
  auto text = TRYC(read_fd(fd->get()), "read the image's " + path);
  return std::optional<std::string>(std::move(text));
}

}  // namespace

Result<ResolvedUser> resolve_user_from(const std::string& user, const std::string& passwd, const std::string& group) {
  return resolve(user, passwd, group);
}

Result<ResolvedUser> resolve_user(int rootfd, const std::string& user) {
  auto passwd = TRY(read_in_root(rootfd, "/etc/passwd"));
  auto group = TRY(read_in_root(rootfd, "/etc/group"));
  return resolve(user, passwd, group);
}

}  // namespace vessel::image
