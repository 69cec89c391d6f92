#include "image/prune.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/fs.h"
#include "image/images.h"
#include "image/overlay.h"
#include "image/json_fields.h"

namespace vessel::image {

namespace {

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return out;
  while (dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (Digest::valid_hex(n)) out.push_back(n);
  }
  return out;
}

}  // namespace

Result<PruneResult> prune_store(Store& store) {
  int r_temporaries = 0;
  auto gc = TRY(store.gc_lock(true));
  auto lock = TRY(store.lock());
  // Under the exclusive gc lock no import or build runs: their temporaries (any name) are garbage.
  r_temporaries = store.reclaim_temp(true);
  auto idx = TRY(store.load_index());
  auto used = images_in_use(store);
  PruneResult r;
  r.temporaries = r_temporaries;
  // Dangling images (no name left, e.g. after a rebuild took their tag) go unless a container uses one.
  std::vector<Digest> dangling;
  for (auto& rec : idx.images())
    if (rec.names.empty() && std::find(used.begin(), used.end(), rec.manifest) == used.end()) dangling.push_back(rec.manifest);
  for (auto& d : dangling) idx.erase(d);
  r.images = static_cast<int>(dangling.size());
  if (!dangling.empty()) TRY(store.save_index(idx));
  std::set<std::string> keep_blobs, keep_layers;
  for (auto& rec : idx.images()) add_image_refs(store, rec.manifest, keep_blobs, keep_layers);
  for (auto& d : used) add_image_refs(store, d, keep_blobs, keep_layers);

  // Cache records of layers that go are useless; the others stay (they cost a few bytes).
  std::string cache_dir = store.root() + "/build-cache";
  for (auto& key : entries(cache_dir)) {
    auto text = read_file(cache_dir + "/" + key);
    auto j = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    auto blob = j.is_object() ? Digest::parse(string_field(j, "blob")) : Result<Digest>(Error::invalid("bad record"));
    if (blob && keep_blobs.count(blob->hex)) continue;
    if (::unlink((cache_dir + "/" + key).c_str()) < 0 && errno != ENOENT) return Error::from_errno("remove cache record " + key);
    ++r.cache_records;
  }
  for (auto& hex : entries(store.root() + "/blobs/sha256")) {
    if (keep_blobs.count(hex)) continue;
    struct stat st{};
    if (::stat(store.blob_path(Digest{hex}).c_str(), &st) == 0) r.bytes += st.st_size;
    TRY(store.remove_blob(Digest{hex}));
    ++r.blobs;
  }
  for (auto& hex : entries(store.root() + "/layers")) {
    if (keep_layers.count(hex)) continue;
    TRYC(remove_layer_links(store, Digest{hex}), "remove layer " + hex);
    TRYC(remove_tree(store.layer_path(Digest{hex})), "remove layer " + hex);
    ++r.layers;
  }
  return r;
}

}  // namespace vessel::image
