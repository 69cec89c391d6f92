#include "image/import.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "image/libs.h"
#include "common/crash_point.h"
#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "image/layer.h"
#include "image/manifest.h"
#include "sys/syscalls.h"
#include "image/json_fields.h"

namespace vessel::image {

namespace {

using Json = nlohmann::json;

// The most bytes a layer of `compressed` bytes may expand to: VESSEL_MAX_LAYER_SIZE (bytes) when
// set, else 8 x compressed + 1 GiB; never more than the free space of the store's filesystem.
uint64_t layer_limit(const Store& store, int64_t compressed, std::string* why) {
  uint64_t limit = 8 * static_cast<uint64_t>(std::max<int64_t>(compressed, 0)) + (1ULL << 30);
  *why = cat("8 x its compressed size of ", compressed, " bytes + 1 GiB");
  if (const char* env = std::getenv("VESSEL_MAX_LAYER_SIZE"); env && *env) {
    if (auto v = parse_u64(env)) {
      limit = *v;
      *why = "VESSEL_MAX_LAYER_SIZE";
    }
  }
  struct statvfs fs{};
  if (::statvfs((store.root() + "/tmp").c_str(), &fs) == 0) {
    uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (free_bytes < limit) {
      limit = free_bytes;
      *why = "the free space of " + store.root();
    }
  }
  return limit;
}

// diff_id() within the layer size limit; the error says what the limit is and how to change it.
Result<Digest> bounded_diff_id(const Store& store, int fd) {
  struct stat st{};
  if (::fstat(fd, &st) < 0) return Error::from_errno("stat layer");
  std::string why;
  uint64_t limit = layer_limit(store, st.st_size, &why);
  auto d = diff_id(fd, limit);
  if (!d && d.error().code() == EFBIG)
    return Error(EFBIG, cat(d.error().message(), " (the limit: ", why, "; set VESSEL_MAX_LAYER_SIZE=BYTES to change it)"));
  return d;
}

// Runs `fn` (returning a Result) under a status line: "LABEL" while it runs, "LABEL done" after.
template <class F>
auto with_status(Progress& p, const std::string& label, F fn) -> decltype(fn()) {
  p.status(label);
  auto r = fn();
  if (r) p.status(label + " done");
  p.done();
  return r;
}

std::string short_hex(const Digest& d) { return d.hex.substr(0, 12); }

// A string annotation of an index entry ("" when absent or not a string).
std::string annotation(const Json& desc, const char* key) {
  if (!desc.contains("annotations") || !desc["annotations"].is_object()) return "";
  auto& a = desc["annotations"];
  if (!a.contains(key) || !a[key].is_string()) return "";
  return a[key].get<std::string>();
}

// Opens `rel` inside the directory dir_fd; symlinks stay inside it.
// Only a regular file: a FIFO or device is refused at once (O_NONBLOCK), never read.
Result<UniqueFd> open_in(int dir_fd, const std::string& rel) {
  return open_regular_at(dir_fd, rel, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

// A JSON document of the layout (index, manifest, config): at most kMaxConfigBytes.
Result<std::string> read_in(int dir_fd, const std::string& rel) {
  auto fd = TRY(open_in(dir_fd, rel));
  return read_fd_bounded(fd.get(), kMaxConfigBytes).context(rel);
}

Result<Json> read_json_in(int dir_fd, const std::string& rel) {
  auto text = TRY(read_in(dir_fd, rel));
  auto j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return Error::invalid(rel + ": not valid JSON");
  return j;
}

// A blob already in the store must have the size its descriptor gives (-1: no size given).
Status check_stored_size(Store& store, const Digest& d, int64_t size) {
  if (size < 0) return ok();
  struct stat st{};
  if (::stat(store.blob_path(d).c_str(), &st) < 0) return Error::from_errno("stat blob " + d.str());
  if (st.st_size != size)
    return Error::invalid(cat("blob ", d.str(), ": ", st.st_size, " bytes, its descriptor says size ", size));
  return ok();
}

// Copies a JSON blob (index, manifest, config) of an OCI layout into the store, checking its digest
// and size; at most kMaxConfigBytes.
Result<std::string> copy_layout_blob(Store& store, int layout, const Digest& d, int64_t size) {
  if (!store.has_blob(d)) {
    auto fd = TRY(open_in(layout, "blobs/sha256/" + d.hex));
    struct stat st{};
    if (::fstat(fd.get(), &st) < 0) return Error::from_errno("stat blob " + d.str());
    if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes)
      return Error(EFBIG, cat("blob ", d.str(), ": ", st.st_size, " bytes, larger than the limit of ", kMaxConfigBytes));
    TRYC(store.ingest(fd.get(), &d, size), "blob " + d.str());
  }
  TRY(check_stored_size(store, d, size));
  return store.read_blob(d);
}

Result<ImportResult> finish_image(Store& store, const Manifest& m, const Digest& manifest_digest, Progress& progress) {
  auto config = TRY(parse_config(TRY(store.read_blob(m.config.digest))));
  if (config.diff_ids.size() != m.layers.size())
    return Error::invalid(cat("image ", manifest_digest.str(), ": ", m.layers.size(), " layers but ",
                              config.diff_ids.size(), " diff_ids"));
  for (size_t i = 0; i < m.layers.size(); ++i) TRY(ensure_layer(store, m.layers[i].digest, config.diff_ids[i], &progress));
  return ImportResult{manifest_digest, {}};
}

// One manifest of an OCI layout: its blob, config and layers.
Result<ImportResult> import_layout_manifest(Store& store, int layout, const Digest& d, int64_t size, Progress& progress) {
  auto text = TRY(copy_layout_blob(store, layout, d, size));
  auto m = TRYC(parse_manifest(text), "manifest " + d.str());
  TRY(with_status(progress, "Copying config " + short_hex(m.config.digest),
                  [&] { return copy_layout_blob(store, layout, m.config.digest, m.config.expected_size()); }));
  for (auto& l : m.layers) {
    std::string label = cat("Copying blob ", short_hex(l.digest), " (", human_size(l.size), ")");
    if (store.has_blob(l.digest)) {
      TRYC(check_stored_size(store, l.digest, l.expected_size()), "layer " + l.digest.str());
      progress.status(label + " already in the store");
      progress.done();
      continue;
    }
    TRY(with_status(progress, label, [&]() -> Status {
      auto fd = TRYC(open_in(layout, "blobs/sha256/" + l.digest.hex), "layer " + l.digest.str());
      struct stat st{};
      if (l.size_given && ::fstat(fd.get(), &st) == 0 && st.st_size != l.size)
        return Error::invalid(cat("layer ", l.digest.str(), ": ", st.st_size, " bytes, its descriptor says size ", l.size));
      TRYC(store.ingest(fd.get(), &l.digest, l.expected_size()), "layer " + l.digest.str());
      return ok();
    }));
  }
  return finish_image(store, m, d, progress);
}

// The manifests an index lists (nested indexes followed; other platforms than linux/amd64 skipped).
// A manifest an index names: its digest, descriptor size (-1: none given) and reference name.
struct ManifestRef {
  Digest digest;
  int64_t size = -1;
  std::string ref;
};

// The "size" of a descriptor in an index: -1 when absent, an error when not a non-negative integer.
Result<int64_t> descriptor_size(const Json& m) {
  if (!m.contains("size")) return -1;
  if (!m["size"].is_number_integer() || m["size"].get<int64_t>() < 0)
    return Error::invalid("index entry: size must be a non-negative integer");
  return m["size"].get<int64_t>();
}

Status collect_manifests(Store& store, int layout, const Json& index, std::vector<ManifestRef>& out, int depth) {
  if (depth > 4) return Error::invalid("image index nested too deep");
  if (!index.contains("manifests") || !index["manifests"].is_array()) return Error::invalid("index without manifests");
  for (auto& m : index["manifests"]) {
    if (!m.is_object() || !m.contains("digest") || !m["digest"].is_string()) return Error::invalid("index entry without digest");
    auto d = TRY(Digest::parse(m["digest"].get<std::string>()));
    int64_t size = TRY(descriptor_size(m));
    std::string mt = string_field(m, "mediaType");
    if (m.contains("platform") && m["platform"].is_object()) {
      auto& p = m["platform"];
      if (string_field(p, "os", "linux") != "linux" || string_field(p, "architecture", "amd64") != "amd64") continue;
    }
    // containerd and `docker save` keep the full name in their own annotation and a bare tag in ref.name.
    std::string ref = annotation(m, "io.containerd.image.name");
    if (ref.empty()) ref = annotation(m, kRefNameAnnotation);
    if (mt == kIndexMediaType || mt == kDockerListMediaType) {
      auto text = TRY(copy_layout_blob(store, layout, d, size));
      auto sub = Json::parse(text, nullptr, false);
      if (sub.is_discarded()) return Error::invalid("index " + d.str() + ": not valid JSON");
      size_t before = out.size();
      TRY(collect_manifests(store, layout, sub, out, depth + 1));
      if (!ref.empty())
        for (size_t i = before; i < out.size(); ++i)
          if (out[i].ref.empty()) out[i].ref = ref;
    } else {
      out.push_back(ManifestRef{d, size, ref});
    }
  }
  return ok();
}

Result<std::vector<ImportResult>> import_layout(Store& store, int layout, Progress& progress) {
  auto marker = TRYC(read_json_in(layout, "oci-layout"), "OCI layout");
  if (!marker.is_object() || !marker.contains("imageLayoutVersion")) return Error::invalid("oci-layout: no imageLayoutVersion");
  auto index = TRYC(read_json_in(layout, "index.json"), "OCI layout");
  std::vector<ManifestRef> manifests;
  TRYC(collect_manifests(store, layout, index, manifests, 0), "index.json");
  if (manifests.empty()) return Error::invalid("OCI layout: no linux/amd64 image in index.json");
  std::vector<ImportResult> out;
  for (auto& [d, size, ref] : manifests) {
    auto r = TRY(import_layout_manifest(store, layout, d, size, progress));
    // A ref.name with a repository names the image; a bare tag ("latest") has nothing to name.
    if (!ref.empty() && (ref.find('/') != std::string::npos || ref.find(':') != std::string::npos)) r.names.push_back(ref);
    out.push_back(std::move(r));
  }
  return out;
}

// A layer file (any compression) into the store: blob, diff ID check, unpacked dir.
Result<Descriptor> import_layer_file(Store& store, int fd, const Digest* expected_diff_id, Digest* diff_id_out,
                                     Progress& progress) {
  auto comp = TRY(detect_compression(fd));
  struct stat st{};
  ::fstat(fd, &st);
  std::string label = cat(expected_diff_id ? "Copying blob " + short_hex(*expected_diff_id) : std::string("Copying rootfs tarball"),
                          " (", human_size(st.st_size), ")");
  auto [did, blob] = TRY(with_status(progress, label, [&]() -> Result<std::pair<Digest, Digest>> {
    auto did = TRY(bounded_diff_id(store, fd));
    if (expected_diff_id && !(did == *expected_diff_id))
      return Error::invalid(cat("layer has diff ID ", did.str(), ", the config says ", expected_diff_id->str()));
    if (::lseek(fd, 0, SEEK_SET) < 0) return Error::from_errno("seek layer");
    auto blob = TRY(store.ingest(fd, nullptr));
    return std::make_pair(did, blob);
  }));
  TRY(ensure_layer(store, blob, did, &progress));
  if (diff_id_out) *diff_id_out = did;
  return Descriptor{layer_media_type(comp), blob, static_cast<int64_t>(st.st_size)};
}

Result<Digest> store_manifest(Store& store, const Manifest& m) { return store.put_blob(manifest_json(m)); }

Result<std::vector<ImportResult>> import_docker_archive(Store& store, int dir, Progress& progress) {
  auto j = TRYC(read_json_in(dir, "manifest.json"), "docker archive");
  if (!j.is_array() || j.empty()) return Error::invalid("docker archive: manifest.json is not a non-empty array");
  std::vector<ImportResult> out;
  for (auto& e : j) {
    if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string() || !e.contains("Layers") || !e["Layers"].is_array())
      return Error::invalid("docker archive: manifest.json entry without Config or Layers");
    std::string config_text = TRYC(read_in(dir, e["Config"].get<std::string>()), "docker archive config");
    auto config = TRY(parse_config(config_text));
    if (config.diff_ids.size() != e["Layers"].size())
      return Error::invalid("docker archive: layer count does not match the config's diff_ids");
    Manifest m;
    m.config = Descriptor{kConfigMediaType, TRY(store.put_blob(config_text)), static_cast<int64_t>(config_text.size())};
    for (size_t i = 0; i < config.diff_ids.size(); ++i) {
      auto& l = e["Layers"][i];
      if (!l.is_string()) return Error::invalid("docker archive: layer path is not a string");
      auto fd = TRYC(open_in(dir, l.get<std::string>()), "docker archive layer");
      m.layers.push_back(
          TRYC(import_layer_file(store, fd.get(), &config.diff_ids[i], nullptr, progress), "layer " + l.get<std::string>()));
    }
    ImportResult r{TRY(store_manifest(store, m)), {}};
    if (e.contains("RepoTags") && e["RepoTags"].is_array())
      for (auto& t : e["RepoTags"])
        if (t.is_string()) r.names.push_back(t.get<std::string>());
    out.push_back(std::move(r));
  }
  return out;
}

Result<ImportResult> import_rootfs_tar(Store& store, int fd, Progress& progress) {
  Digest did;
  auto layer = TRYC(import_layer_file(store, fd, nullptr, &did, progress), "rootfs tarball");
  std::string config_text = minimal_config_json(did, now_rfc3339());
  Manifest m;
  m.config = Descriptor{kConfigMediaType, TRY(store.put_blob(config_text)), static_cast<int64_t>(config_text.size())};
  m.layers.push_back(layer);
  return ImportResult{TRY(store_manifest(store, m)), {}};
}

enum class ArchiveKind { kOciArchive, kDockerArchive, kRootfs };

// Tells the kind of a tar by its top-level entries.
Result<ArchiveKind> archive_kind(int fd) {
  ArchiveReadPtr a(la().archive_read_new());
  la().archive_read_support_filter_all(a.get());
  la().archive_read_support_format_tar(a.get());
  la().archive_read_support_format_gnutar(a.get());
  if (::lseek(fd, 0, SEEK_SET) < 0) return Error::from_errno("seek");
  if (la().archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK)
    return Error::invalid(cat("not a tar archive: ", la().archive_error_string(a.get())));
  bool layout = false, index = false, manifest = false;
  archive_entry* e;
  int r;
  while ((r = la().archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    auto comps = entry_components(la().archive_entry_pathname(e) ? la().archive_entry_pathname(e) : "");
    if (!comps || comps->size() != 1) continue;
    auto& n = comps->front();
    layout |= n == "oci-layout";
    index |= n == "index.json";
    manifest |= n == "manifest.json";
  }
  if (r != ARCHIVE_EOF) return Error::invalid(cat("read tar: ", la().archive_error_string(a.get())));
  if (layout && index) return ArchiveKind::kOciArchive;
  if (manifest) return ArchiveKind::kDockerArchive;
  return ArchiveKind::kRootfs;
}

Result<std::vector<ImportResult>> import_path(Store& store, const std::string& path, Progress& progress) {
  struct stat st{};
  if (::stat(path.c_str(), &st) < 0) return Error::from_errno("stat " + path);
  if (S_ISDIR(st.st_mode)) {
    auto dir = TRY(open_file(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return import_layout(store, dir.get(), progress);
  }
  auto fd = TRY(open_regular_file(path));
  auto kind = TRY(archive_kind(fd.get()));
  if (kind == ArchiveKind::kRootfs) {
    auto r = TRY(import_rootfs_tar(store, fd.get(), progress));
    return std::vector<ImportResult>{r};
  }
  // An image archive: unpack it (as hostile as any layer) into tmp/ and read it as a directory.
  auto tmp = TRY(store.make_temp_dir("archive"));
  ScopeExit cleanup([&] { (void)remove_tree(tmp); });
  auto dir = TRY(open_file(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat ast{};
  std::string why;
  uint64_t limit = layer_limit(store, ::fstat(fd.get(), &ast) == 0 ? ast.st_size : 0, &why);
  TRYC(with_status(progress, "Reading " + path,
                   [&] { return unpack_tar(fd.get(), dir.get(), UnpackOptions{.whiteouts = false, .max_bytes = limit}); }),
       "unpack archive");
  crash_point("import.archive-unpacked");
  if (kind == ArchiveKind::kOciArchive) return TRYC(import_layout(store, dir.get(), progress), "oci-archive");
  return TRYC(import_docker_archive(store, dir.get(), progress), "docker-archive");
}

// Unpacks the layer blob into layers/<want> through a temp dir, checking its diff ID.
Status unpack_layer(Store& store, const Digest& blob, const Digest& want) {
  auto fd = TRY(open_file(store.blob_path(blob), O_RDONLY | O_CLOEXEC));
  auto got = TRYC(bounded_diff_id(store, fd.get()), "layer " + blob.str());
  if (!(got == want))
    return Error::invalid(cat("layer ", blob.str(), " has diff ID ", got.str(), ", the config says ", want.str()));
  auto tmp = TRY(store.make_temp_dir("layer"));
  ScopeExit cleanup([&] { (void)remove_tree(tmp); });
  {
    crash_point("import.layer-tmp");
    auto dir = TRY(open_file(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st{};
    std::string why;
    uint64_t limit = layer_limit(store, ::fstat(fd.get(), &st) == 0 ? st.st_size : 0, &why);
    TRYC(unpack_tar(fd.get(), dir.get(), UnpackOptions{.whiteouts = true, .max_bytes = limit}), "unpack layer " + want.str());
  }
  crash_point("import.layer-unpacked");
  ::chmod(tmp.c_str(), 0755);
  if (::rename(tmp.c_str(), store.layer_path(want).c_str()) < 0) {
    if (errno != EEXIST && errno != ENOTEMPTY) return Error::from_errno("rename to " + store.layer_path(want));
    return ok();  // someone else unpacked it first; ours goes
  }
  cleanup.dismiss();
  return ok();
}

}  // namespace

Status ensure_layer(Store& store, const Digest& blob, const Digest& want, Progress* progress) {
  if (store.has_layer(want)) return ok();
  Progress own;
  Progress& pr = progress ? *progress : own;
  return with_status(pr, "Unpacking layer " + short_hex(want), [&] { return unpack_layer(store, blob, want); });
}

Result<std::vector<ImportResult>> import_image(Store& store, const std::string& path, const std::string& name,
                                               Progress* progress) {
  std::string norm;
  if (!name.empty()) norm = TRY(normalize_name(name));
  Progress own;
  // Copying and unpacking run under the shared gc lock only (no prune meanwhile); the store
  // lock is taken just to change the index, so other image commands never wait for the bytes.
  auto gc = TRY(store.gc_lock(false));
  auto results = TRYC(import_path(store, path, progress ? *progress : own), "import " + path);
  crash_point("import.copied");
  auto lock = TRY(store.lock());
  if (!norm.empty()) {
    if (results.size() != 1) return Error::invalid(cat("import ", path, ": --name given but it holds ", results.size(), " images"));
    results[0].names = {norm};
  }
  auto idx = TRY(store.load_index());
  std::string now = now_rfc3339();
  for (auto& r : results) {
    idx.add(r.manifest, now);
    std::vector<std::string> normalized;
    for (auto& n : r.names) {
      auto nn = TRYC(normalize_name(n), "import " + path);
      TRY(idx.tag(nn, r.manifest, now));
      normalized.push_back(nn);
    }
    r.names = normalized;
  }
  TRY(store.save_index(idx));
  return results;
}

}  // namespace vessel::image
