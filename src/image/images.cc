#include "image/images.h"

#include <dirent.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/fs.h"
#include "common/strings.h"
#include "image/overlay.h"

namespace vessel::image {

namespace {

using Json = nlohmann::json;

Result<ImageInfo> load_info(const Store& store, const ImageRecord& r) {
  ImageInfo i;
  i.digest = r.manifest;
  i.names = r.names;
  i.created = r.created;
  i.manifest = TRYC(parse_manifest(TRY(store.read_blob(r.manifest))), "image " + r.manifest.str());
  i.config = TRYC(parse_config(TRY(store.read_blob(i.manifest.config.digest))), "image " + r.manifest.str());
  i.size = i.manifest.config.size;
  for (auto& l : i.manifest.layers) i.size += l.size;
  return i;
}

}  // namespace

// Blobs and layers an image needs (manifest, config, layer blobs; diff IDs).
void add_image_refs(const Store& store, const Digest& manifest, std::set<std::string>& blobs, std::set<std::string>& layers) {
  blobs.insert(manifest.hex);
  auto text = store.read_blob(manifest);
  if (!text) return;
  auto m = parse_manifest(*text);
  if (!m) return;
  blobs.insert(m->config.digest.hex);
  for (auto& l : m->layers) blobs.insert(l.digest.hex);
  if (auto c = store.read_blob(m->config.digest))
    if (auto cfg = parse_config(*c))
      for (auto& d : cfg->diff_ids) layers.insert(d.hex);
}

std::vector<Digest> images_in_use(const Store& store) {
  std::vector<Digest> out;
  std::string dir = store.root() + "/containers";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return out;
  while (dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    auto text = read_file(dir + "/" + n + "/image.json");
    if (!text) continue;
    auto j = Json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("manifest") && j["manifest"].is_string())
      if (auto dg = Digest::parse(j["manifest"].get<std::string>())) out.push_back(*dg);
  }
  return out;
}

Result<std::vector<ImageInfo>> list_images(const Store& store) {
  auto idx = TRY(store.load_index());
  std::vector<ImageInfo> out;
  for (auto& r : idx.images()) out.push_back(TRY(load_info(store, r)));
  return out;
}

Result<ImageInfo> inspect_image(const Store& store, const std::string& ref) {
  auto idx = TRY(store.load_index());
  auto* r = TRY(idx.find(ref));
  return load_info(store, *r);
}

std::string image_json(const ImageInfo& i) {
  Json layers = Json::array(), diff_ids = Json::array();
  for (auto& l : i.manifest.layers) layers.push_back({{"mediaType", l.media_type}, {"digest", l.digest.str()}, {"size", l.size}});
  for (auto& d : i.config.diff_ids) diff_ids.push_back(d.str());
  return Json{{"id", i.digest.hex},
              {"digest", i.digest.str()},
              {"names", i.names},
              {"created", i.created},
              {"size", i.size},
              {"architecture", i.config.architecture},
              {"os", i.config.os},
              {"config", i.manifest.config.digest.str()},
              {"layers", layers},
              {"diffIds", diff_ids},
              {"entrypoint", i.config.run.entrypoint},
              {"cmd", i.config.run.cmd},
              {"env", i.config.run.env},
              {"workingDir", i.config.run.working_dir},
              {"user", i.config.run.user}}
      .dump(2);
}

std::string images_json(const std::vector<ImageInfo>& images) {
  Json arr = Json::array();
  for (auto& i : images)
    arr.push_back({{"id", i.digest.hex}, {"digest", i.digest.str()}, {"names", i.names}, {"created", i.created}, {"size", i.size}});
  return arr.dump(2);
}

Status tag_image(Store& store, const std::string& ref, const std::string& name) {
  auto norm = TRY(normalize_name(name));
  auto lock = TRY(store.lock());
  auto idx = TRY(store.load_index());
  Digest target = TRY(idx.find(ref))->manifest;
  TRY(idx.tag(norm, target, now_rfc3339()));
  return store.save_index(idx);
}

Status remove_image(Store& store, const std::string& ref) {
  auto gc = TRY(store.gc_lock(true));
  auto lock = TRY(store.lock());
  auto idx = TRY(store.load_index());
  auto* rec = TRY(idx.find(ref));
  Digest target = rec->manifest;
  auto name = normalize_name(ref);
  bool by_name = name && std::find(rec->names.begin(), rec->names.end(), *name) != rec->names.end();
  if (by_name && rec->names.size() > 1) {
    idx.untag(target, *name);
    return store.save_index(idx);
  }
  auto used = images_in_use(store);
  if (std::find(used.begin(), used.end(), target) != used.end())
    return Error(EBUSY, cat("image \"", ref, "\" is in use by a container"));
  idx.erase(target);
  // What the remaining images and the containers still need stays.
  std::set<std::string> keep_blobs, keep_layers, gone_blobs, gone_layers;
  for (auto& r : idx.images()) add_image_refs(store, r.manifest, keep_blobs, keep_layers);
  for (auto& d : used) add_image_refs(store, d, keep_blobs, keep_layers);
  add_image_refs(store, target, gone_blobs, gone_layers);
  TRY(store.save_index(idx));
  for (auto& b : gone_blobs)
    if (!keep_blobs.count(b)) TRY(store.remove_blob(Digest{b}));
  for (auto& l : gone_layers) {
    if (keep_layers.count(l)) continue;
    // The link first: a link left by a crash would point nowhere, a layer without one gets it back on use.
    TRYC(remove_layer_links(store, Digest{l}), "remove layer " + l);
    TRYC(remove_tree(store.layer_path(Digest{l})), "remove layer " + l);
  }
  return ok();
}

}  // namespace vessel::image
