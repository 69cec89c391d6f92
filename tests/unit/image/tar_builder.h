// Builds small tar files with libarchive's writer, for layer and import tests.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <string>

namespace vessel::testing {

class TarBuilder {
 public:
  // gzip: compress the tar with gzip ("zstd" for zstd, "" for none).
  explicit TarBuilder(const std::string& path, const std::string& filter = "") : a_(archive_write_new()) {
    archive_write_set_format_pax_restricted(a_);
    if (filter == "gzip") archive_write_add_filter_gzip(a_);
    if (filter == "zstd") archive_write_add_filter_zstd(a_);
    archive_write_open_filename(a_, path.c_str());
  }
  ~TarBuilder() { close(); }
  void close() {
    if (a_) {
      archive_write_close(a_);
      archive_write_free(a_);
      a_ = nullptr;
    }
  }
  TarBuilder& dir(const std::string& name, int mode = 0755) { return add(name, AE_IFDIR, mode, "", ""); }
  TarBuilder& file(const std::string& name, const std::string& data, int mode = 0644) {
    return add(name, AE_IFREG, mode, data, "");
  }
  TarBuilder& symlink(const std::string& name, const std::string& target) { return add(name, AE_IFLNK, 0777, "", target); }
  TarBuilder& hardlink(const std::string& name, const std::string& target) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_hardlink(e, target.c_str());
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& chardev(const std::string& name, int major, int minor) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFCHR);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_rdevmajor(e, major);
    archive_entry_set_rdevminor(e, minor);
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }

 private:
  TarBuilder& add(const std::string& name, int type, int mode, const std::string& data, const std::string& link) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    if (!link.empty()) archive_entry_set_symlink(e, link.c_str());
    archive_write_header(a_, e);
    if (!data.empty()) archive_write_data(a_, data.data(), data.size());
    archive_entry_free(e);
    return *this;
  }
  archive* a_;
};

}  // namespace vessel::testing
