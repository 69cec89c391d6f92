#include "image/export.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "image/libs.h"
#include "image/manifest.h"
#include "image/names.h"

namespace vessel::image {

namespace {

using Json = nlohmann::json;

constexpr const char* kLayoutMarker = "{\"imageLayoutVersion\":\"1.0.0\"}";
constexpr size_t kBlobCopyBuffer = 1 << 20;
constexpr int64_t kReportEvery = 8 << 20;

// A blob the layout needs besides the manifest.
struct BlobRef {
  Digest digest;
  int64_t size;
  const char* what;  // "config" or "blob" (progress lines)
};

// What gets written, worked out (and checked) before anything is created.
struct Plan {
  Digest manifest;
  std::string manifest_text;
  std::string ref_name;
  std::vector<BlobRef> blobs;
  std::string index_json;
};

// PATH made absolute, with the directory it goes in and its own name.
struct Target {
  std::string path, parent, base;
};

Target target_of(const std::string& path) {
  Target t;
  t.path = absolute_path(path);
  auto slash = t.path.rfind('/');
  t.parent = slash == 0 ? "/" : t.path.substr(0, slash);
  t.base = t.path.substr(slash + 1);
  return t;
}

Result<Plan> plan_export(const Store& store, const std::string& ref) {
  auto idx = TRY(store.load_index());
  auto* rec = TRY(idx.find(ref));
  Plan p;
  p.manifest = rec->manifest;
  p.manifest_text = TRYC(store.read_blob(rec->manifest), "manifest");
  auto m = TRYC(parse_manifest(p.manifest_text), "manifest " + rec->manifest.str());
  auto mj = Json::parse(p.manifest_text, nullptr, false);
  std::string media_type = kManifestMediaType;
  if (mj.is_object() && mj.contains("mediaType") && mj["mediaType"].is_string()) media_type = mj["mediaType"].get<std::string>();

  // The name the user gave (normalized) when it is one of the image's, else its first name.
  auto asked = normalize_name(ref);
  if (asked && std::find(rec->names.begin(), rec->names.end(), *asked) != rec->names.end())
    p.ref_name = *asked;
  else if (!rec->names.empty())
    p.ref_name = rec->names.front();

  p.blobs.push_back(BlobRef{m.config.digest, m.config.size, "config"});
  for (auto& l : m.layers) {
    bool seen = std::any_of(p.blobs.begin(), p.blobs.end(), [&](const BlobRef& b) { return b.digest == l.digest; });
    if (!seen) p.blobs.push_back(BlobRef{l.digest, l.size, "blob"});
  }

  Json desc = {{"mediaType", media_type}, {"digest", p.manifest.str()}, {"size", p.manifest_text.size()}};
  if (!p.ref_name.empty()) desc["annotations"] = {{kRefNameAnnotation, p.ref_name}};
  Json index = {{"schemaVersion", 2}, {"mediaType", kIndexMediaType}, {"manifests", Json::array({desc})}};
  p.index_json = index.dump() + "\n";
  return p;
}

// Streams the store's blob to `write`, checking its size and that it still hashes to its digest.
Status copy_blob(const Store& store, const BlobRef& b, const std::function<Status(std::string_view)>& write,
                 Progress& progress) {
  std::string label = cat("Copying ", b.what, " ", b.digest.hex.substr(0, 12), " (", human_size(b.size), ")");
  auto fd = TRYC(open_file(store.blob_path(b.digest), O_RDONLY | O_CLOEXEC), "blob " + b.digest.str());
  std::vector<char> buf(kBlobCopyBuffer);
  Sha256 h;
  int64_t done = 0, reported = -kReportEvery;
  while (true) {
    if (done - reported >= kReportEvery) {
      progress.status(cat(label, "  ", human_size(done)));
      reported = done;
    }
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("read blob " + b.digest.str());
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    TRYC(write(std::string_view(buf.data(), static_cast<size_t>(n))), "blob " + b.digest.str());
    done += n;
  }
  if (done != b.size) return Error(EIO, cat("blob ", b.digest.str(), ": ", done, " bytes in the store, the manifest says ", b.size));
  if (!(h.digest() == b.digest)) return Error(EIO, cat("blob ", b.digest.str(), ": content in the store does not match its digest"));
  progress.status(label + " done");
  progress.done();
  return ok();
}

Result<bool> dir_is_empty(const std::string& path) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(path.c_str()), ::closedir);
  if (!d) return Error::from_errno("open " + path);
  while (dirent* e = ::readdir(d.get())) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") return false;
  }
  return true;
}

Error not_empty() {
  return Error(ENOTEMPTY, "the directory exists and is not empty (export writes a new OCI layout: give a new or empty directory)");
}

Status export_layout_dir(const Store& store, const Plan& p, const Target& t, Progress& progress) {
  struct stat st{};
  if (::lstat(t.path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Error(EEXIST, "exists and is not a directory");
    if (!TRY(dir_is_empty(t.path))) return not_empty();
  } else if (errno != ENOENT) {
    return Error::from_errno("stat " + t.path);
  }
  std::string tmp = cat(t.parent, "/.", t.base, ".export-XXXXXX");
  if (!::mkdtemp(tmp.data())) return Error::from_errno("create a temporary directory in " + t.parent);
  ScopeExit cleanup([&] { (void)remove_tree(tmp); });

  std::string blobs = tmp + "/blobs/sha256";
  TRY(mkdir_p(blobs, 0755));
  for (auto& b : p.blobs) {
    auto out = TRY(open_file(blobs + "/" + b.digest.hex, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    TRY(copy_blob(store, b, [&](std::string_view data) { return write_all(out.get(), data); }, progress));
  }
  progress.line("Writing manifest to image destination");
  TRY(write_file(blobs + "/" + p.manifest.hex, p.manifest_text, O_EXCL));
  TRY(write_file(tmp + "/index.json", p.index_json, O_EXCL));
  TRY(write_file(tmp + "/oci-layout", kLayoutMarker, O_EXCL));
  if (::chmod(tmp.c_str(), 0755) < 0) return Error::from_errno("chmod " + tmp);
  // Replaces an empty directory at PATH, never a non-empty one.
  if (::rename(tmp.c_str(), t.path.c_str()) < 0) {
    if (errno == ENOTEMPTY || errno == EEXIST) return not_empty();
    return Error::from_errno("rename " + tmp + " to " + t.path);
  }
  cleanup.dismiss();
  return ok();
}

// Writes the layout's entries into a tar (fixed owner and times: the same image gives the same archive).
class LayoutTar {
 public:
  explicit LayoutTar(archive* a) : a_(a) {}

  Status header(const std::string& name, mode_t type, int64_t size) {
    ArchiveEntryPtr e(la().archive_entry_new());
    la().archive_entry_set_pathname(e.get(), name.c_str());
    la().archive_entry_set_filetype(e.get(), type);
    la().archive_entry_set_perm(e.get(), type == AE_IFDIR ? 0755 : 0644);
    la().archive_entry_set_size(e.get(), size);
    la().archive_entry_set_mtime(e.get(), 0, 0);
    if (la().archive_write_header(a_, e.get()) != ARCHIVE_OK) return archive_error(a_, "write tar entry " + name);
    return ok();
  }
  Status data(std::string_view d) {
    if (la().archive_write_data(a_, d.data(), d.size()) < 0) return archive_error(a_, "write tar");
    return ok();
  }
  Status file(const std::string& name, std::string_view content) {
    TRY(header(name, AE_IFREG, static_cast<int64_t>(content.size())));
    return data(content);
  }

 private:
  archive* a_;
};

Status export_archive(const Store& store, const Plan& p, const Target& t, Progress& progress) {
  TRY(load_libarchive());
  struct stat st{};
  if (::stat(t.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return Error(EISDIR, "is a directory (an oci-archive is a file; use --format oci for a layout directory)");
  std::string tmp = cat(t.parent, "/.", t.base, ".export-XXXXXX");
  int raw = ::mkstemp(tmp.data());
  if (raw < 0) return Error::from_errno("create a temporary file in " + t.parent);
  UniqueFd fd(raw);
  ScopeExit cleanup([&] { ::unlink(tmp.c_str()); });
  {
    ArchiveWritePtr a(la().archive_write_new());
    if (!a) return Error(ENOMEM, "archive_write_new");
    la().archive_write_set_format_pax_restricted(a.get());
    if (la().archive_write_open_fd(a.get(), fd.get()) != ARCHIVE_OK) return archive_error(a.get(), "write " + tmp);
    LayoutTar tar(a.get());
    TRY(tar.file("oci-layout", kLayoutMarker));
    TRY(tar.file("index.json", p.index_json));
    TRY(tar.header("blobs/", AE_IFDIR, 0));
    TRY(tar.header("blobs/sha256/", AE_IFDIR, 0));
    for (auto& b : p.blobs) {
      TRY(tar.header("blobs/sha256/" + b.digest.hex, AE_IFREG, b.size));
      TRY(copy_blob(store, b, [&](std::string_view data) { return tar.data(data); }, progress));
    }
    progress.line("Writing manifest to image destination");
    TRY(tar.file("blobs/sha256/" + p.manifest.hex, p.manifest_text));
    if (la().archive_write_close(a.get()) != ARCHIVE_OK) return archive_error(a.get(), "write " + tmp);
  }
  if (::fchmod(fd.get(), 0644) < 0) return Error::from_errno("chmod " + tmp);
  if (::rename(tmp.c_str(), t.path.c_str()) < 0) return Error::from_errno("rename " + tmp + " to " + t.path);
  cleanup.dismiss();
  return ok();
}

}  // namespace

Result<ExportFormat> export_format(std::string_view name, const std::string& path) {
  if (name == "oci") return ExportFormat::kOciLayout;
  if (name == "oci-archive") return ExportFormat::kOciArchive;
  if (!name.empty()) return Error::invalid(cat("unknown export format \"", name, "\" (want oci or oci-archive)"));
  bool tar = path.size() > 4 && path.compare(path.size() - 4, 4, ".tar") == 0;
  return tar ? ExportFormat::kOciArchive : ExportFormat::kOciLayout;
}

Result<ExportResult> export_image(const Store& store, const std::string& ref, const std::string& path, ExportFormat format,
                                  Progress* progress) {
  TRY(load_libcrypto());
  Progress own;
  Progress& pr = progress ? *progress : own;
  if (path.empty()) return Error::invalid("empty export path");
  auto plan = TRY(plan_export(store, ref));
  Target t = target_of(path);
  if (t.path == "/") return Error::invalid("cannot export to /");
  if (format == ExportFormat::kOciArchive)
    TRYC(export_archive(store, plan, t, pr), "write oci-archive " + t.path);
  else
    TRYC(export_layout_dir(store, plan, t, pr), "write OCI layout " + t.path);
  return ExportResult{plan.manifest, plan.ref_name};
}

}  // namespace vessel::image
