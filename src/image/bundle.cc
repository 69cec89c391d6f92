#include "image/bundle.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "image/images.h"
#include "image/overlay.h"
#include "oci/defaults.h"

namespace vessel::image {

namespace {

using Json = nlohmann::json;

constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Status check_id(const std::string& id) {
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos || id.size() > 1024)
    return Error::invalid("invalid container ID \"" + id + "\"");
  return ok();
}

}  // namespace

Result<std::string> bundle_config_json(const RunConfig& run, const std::vector<std::string>& args,
                                       const std::string& hostname, const ResolvedUser& user) {
  Json spec = Json::parse(oci::default_spec_json(false, /*hardened=*/true, 0, 0));
  auto& p = spec["process"];
  std::vector<std::string> argv = run.entrypoint;
  const auto& tail = args.empty() ? run.cmd : args;
  argv.insert(argv.end(), tail.begin(), tail.end());
  if (argv.empty()) return Error::invalid("the image has no Entrypoint or Cmd and no command was given");
  p["args"] = argv;
  p["terminal"] = false;
  std::vector<std::string> env = run.env;
  bool has_path = false;
  for (auto& e : env) has_path |= starts_with(e, "PATH=");
  if (!has_path) env.insert(env.begin(), kDefaultPath);
  p["env"] = env;
  p["cwd"] = run.working_dir.empty() ? "/" : run.working_dir;
  if (p["cwd"].get<std::string>().front() != '/') return Error::invalid("image WorkingDir must be absolute");
  p["user"] = {{"uid", user.uid}, {"gid", user.gid}};
  if (!user.additional_gids.empty()) p["user"]["additionalGids"] = user.additional_gids;
  spec["root"] = {{"path", "rootfs"}, {"readonly", false}};
  if (!hostname.empty()) spec["hostname"] = hostname;
  return spec.dump(2) + "\n";
}

std::string random_id() {
  unsigned char b[6] = {};
  (void)!::getrandom(b, sizeof b, 0);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

bool has_bundle(const Store& store, const std::string& id) {
  return check_id(id).ok() && path_exists(store.container_path(id));
}

Result<std::string> bundle_root(const Store& store, const std::string& id) {
  TRY(check_id(id));
  std::string file = store.container_path(id) + "/image.json";
  auto text = TRY(read_file(file));
  auto j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error::invalid(file + ": not a JSON object");
  auto it = j.find("root");
  if (it == j.end()) return std::string();
  if (!it->is_string()) return Error::invalid(file + ": root: not a string");
  return it->get<std::string>();
}

Result<std::string> create_bundle(Store& store, const BundleOptions& o) {
  TRY(check_id(o.id));
  auto lock = TRY(store.lock());  // no `image rm` between reading the image and recording its use
  auto idx = TRY(store.load_index());
  auto* rec = TRY(idx.find(o.image));
  auto info = TRY(inspect_image(store, rec->manifest.str()));
  std::string dir = store.container_path(o.id);
  if (::mkdir(dir.c_str(), 0700) < 0) {
    if (errno == EEXIST) return Error(EEXIST, "container \"" + o.id + "\" already exists in the image store");
    return Error::from_errno("mkdir " + dir);
  }
  bool mounted = false;
  ScopeExit cleanup([&] {
    if (mounted) (void)::umount2((dir + "/rootfs").c_str(), MNT_DETACH);
    (void)remove_tree(dir);
  });
  for (const char* d : {"/rootfs", "/upper", "/work"})
    if (::mkdir((dir + d).c_str(), 0755) < 0) return Error::from_errno(cat("mkdir ", dir, d));
  TRYC(mount_layers(store, info.config.diff_ids, dir + "/upper", dir + "/work", dir + "/rootfs", MS_NODEV),
       "image " + info.digest.str());
  mounted = true;
  // The user is looked up in the image's own /etc/passwd and /etc/group, seen through the mount.
  auto rootfd = TRY(open_file(dir + "/rootfs", O_PATH | O_DIRECTORY));
  auto user = TRYC(resolve_user(rootfd.get(), info.config.run.user), "image " + o.image);
  auto config = TRY(bundle_config_json(info.config.run, o.args, "", user));
  TRY(write_file(dir + "/config.json", config, 0, 0600));
  TRY(write_file(dir + "/image.json",
                 Json{{"manifest", info.digest.str()}, {"image", o.image}, {"root", o.state_root}}.dump() + "\n", 0,
                 0600));
  cleanup.dismiss();
  return dir;
}

Status remove_bundle(Store& store, const std::string& id) {
  TRY(check_id(id));
  std::string dir = store.container_path(id);
  if (!path_exists(dir)) return ok();
  std::string rootfs = dir + "/rootfs";
  // Unmount until rootfs is a plain directory again (a bind on top of it would hide the overlay).
  for (int i = 0; i < 8; ++i) {
    if (::umount2(rootfs.c_str(), UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;  // not a mount point (any more)
    if (errno == EBUSY && ::umount2(rootfs.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    return Error::from_errno("unmount " + rootfs);
  }
  TRYC(remove_tree(dir), "remove " + dir);
  return ok();
}

}  // namespace vessel::image
