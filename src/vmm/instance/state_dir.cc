#include "vmm/instance/state_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::vmm {

using nlohmann::json;

std::string vm_root(const std::string& root) { return path_join(root, "vm"); }

Status check_vm_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return Error::invalid(cat("VM id '", id, "' must be 1 to 64 characters"));
  if (id == "." || id == "..") return Error::invalid(cat("VM id '", id, "' is not allowed"));
  for (char c : id)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return Error::invalid(cat("VM id '", id, "' may only contain letters, digits, '_', '-' and '.'"));
  return ok();
}

VmPaths vm_paths(const std::string& root, const std::string& id) { return VmPaths{path_join(vm_root(root), id)}; }

Result<std::vector<std::string>> list_vm_ids(const std::string& root) {
  std::vector<std::string> ids;
  std::string dir = vm_root(root);
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return ids;
    return Error::from_errno(cat("open ", dir));
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (check_vm_id(name)) ids.push_back(name);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::string> read_bounded(const std::string& path, size_t max) {
  UniqueFd fd = TRY(open_file(path, O_RDONLY | O_CLOEXEC));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno(cat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max) return Error::invalid(cat(path, " is larger than ", max, " bytes"));
  }
  return out;
}

Status write_record(const VmPaths& p, const VmmRecord& r) {
  json j{{"id", r.id}, {"pid", r.pid}, {"pid_start", r.pid_start}, {"api_sock", r.api_sock}, {"created", r.created}};
  return write_file_atomic(p.vmm_json(), j.dump(), 0600);
}

Result<VmmRecord> read_record(const VmPaths& p) {
  std::string text = TRY(read_bounded(p.vmm_json(), 64 * 1024));
  auto j = json::parse(text, nullptr, false);
  VmmRecord r;
  auto bad = [&] { return Error::invalid(cat(p.vmm_json(), ": not a VMM record")); };
  if (!j.is_object()) return bad();
  try {
    r.id = j.at("id").get<std::string>();
    r.pid = j.at("pid").get<pid_t>();
    r.pid_start = j.at("pid_start").get<uint64_t>();
    r.api_sock = j.at("api_sock").get<std::string>();
    r.created = j.at("created").get<int64_t>();
  } catch (const json::exception&) {
    return bad();
  }
  return r;
}

Status write_exit(const VmPaths& p, const VmExit& e) {
  json j{{"reason", e.reason}, {"detail", e.detail}, {"at", e.at}};
  return write_file_atomic(p.exit_json(), j.dump(), 0600);
}

std::optional<VmExit> read_exit(const VmPaths& p) {
  auto text = read_bounded(p.exit_json(), 64 * 1024);
  if (!text) return std::nullopt;
  auto j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  VmExit e;
  if (j.contains("reason") && j["reason"].is_string()) e.reason = j["reason"].get<std::string>();
  if (j.contains("detail") && j["detail"].is_string()) e.detail = j["detail"].get<std::string>();
  if (j.contains("at") && j["at"].is_number_integer()) e.at = j["at"].get<int64_t>();
  return e;
}

uint64_t process_start_time(pid_t pid) {
  auto text = read_bounded(cat("/proc/", pid, "/stat"), 4096);
  if (!text) return 0;
  // The command name may contain spaces and ')': fields start after the last ')'.
  auto close = text->rfind(')');
  if (close == std::string::npos) return 0;
  auto fields = split(text->substr(close + 2), ' ');
  // fields[0] is field 3 (state); start time is field 22.
  if (fields.size() < 20) return 0;
  if (fields[0] == "Z" || fields[0] == "X") return 0;  // a zombie is not running
  return parse_u64(fields[19]).value_or(0);
}

bool vmm_alive(const VmmRecord& r) {
  if (r.pid <= 0) return false;
  uint64_t start = process_start_time(r.pid);
  return start != 0 && start == r.pid_start;
}

}  // namespace vessel::vmm
