// vessel image import PATH [--name NAME[:TAG]] | export NAME PATH [--format oci|oci-archive]
//              | ls [--format json] | inspect NAME | rm NAME
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli.h"
#include "common/strings.h"
#include "image/export.h"
#include "image/images.h"
#include "image/import.h"
#include "image/store.h"

namespace vessel::cli {
namespace {

struct ImageArgs {
  std::string path, name, ref, format = "table";
  std::string export_format;  // "" (by PATH), "oci" or "oci-archive"
};

Result<image::Store> open_store(const Globals& g) { return image::Store::open(g.image_root); }

void do_import(const ImageArgs& a, const Globals& g) {
  auto store = open_store(g);
  if (!store) return report(std::move(store).error());
  auto r = image::import_image(*store, a.path, a.name);
  if (!r) return report(std::move(r).error());
  for (auto& i : *r) {
    std::string names;
    for (auto& n : i.names) names += " " + n;
    std::printf("%s%s\n", i.manifest.str().c_str(), names.c_str());
  }
}

void do_export(const ImageArgs& a, const Globals& g) {
  auto store = open_store(g);
  if (!store) return report(std::move(store).error());
  auto format = image::export_format(a.export_format, a.path);
  if (!format) return report(std::move(format).error());
  auto r = image::export_image(*store, a.ref, a.path, *format);
  if (!r) return report(std::move(r).error().context("image export " + a.ref));
}

void do_ls(const ImageArgs& a, const Globals& g) {
  auto store = open_store(g);
  if (!store) return report(std::move(store).error());
  auto images = image::list_images(*store);
  if (!images) return report(std::move(images).error());
  if (a.format == "json") {
    std::printf("%s\n", image::images_json(*images).c_str());
    return;
  }
  std::printf("%-40s %-14s %-22s %s\n", "NAME", "ID", "CREATED", "SIZE");
  for (auto& i : *images) {
    auto id = i.digest.hex.substr(0, 12);
    if (i.names.empty()) std::printf("%-40s %-14s %-22s %lld\n", "<none>", id.c_str(), i.created.c_str(), (long long)i.size);
    for (auto& n : i.names)
      std::printf("%-40s %-14s %-22s %lld\n", n.c_str(), id.c_str(), i.created.c_str(), (long long)i.size);
  }
}

void do_inspect(const ImageArgs& a, const Globals& g) {
  auto store = open_store(g);
  if (!store) return report(std::move(store).error());
  auto info = image::inspect_image(*store, a.ref);
  if (!info) return report(std::move(info).error());
  std::printf("%s\n", image::image_json(*info).c_str());
}

void do_rm(const ImageArgs& a, const Globals& g) {
  auto store = open_store(g);
  if (!store) return report(std::move(store).error());
  finish(image::remove_image(*store, a.ref).context("image rm " + a.ref));
}

void add_image(CLI::App& app, Globals& g) {
  auto a = std::make_shared<ImageArgs>();
  auto* cmd = app.add_subcommand("image", "manage the image store (--image-root)");
  cmd->require_subcommand(1);
  auto* imp = cmd->add_subcommand("import", "import an OCI layout, oci-archive, docker-archive or rootfs tarball");
  imp->add_option("path", a->path, "directory or tar file")->required();
  imp->add_option("--name", a->name, "name the image NAME[:TAG]");
  imp->callback([a, &g] { do_import(*a, g); });
  auto* exp = cmd->add_subcommand("export", "write an image as an OCI layout directory or an oci-archive tar");
  exp->add_option("name", a->ref, "NAME[:TAG] or digest")->required();
  exp->add_option("path", a->path, "a new or empty directory, or a tar file")->required();
  exp->add_option("--format", a->export_format, "oci (a layout directory) or oci-archive (default: oci-archive when PATH ends in .tar)")
      ->check(CLI::IsMember({"oci", "oci-archive"}));
  exp->callback([a, &g] { do_export(*a, g); });
  auto* ls = cmd->add_subcommand("ls", "list images");
  ls->alias("list");
  ls->add_option("--format", a->format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ls->callback([a, &g] { do_ls(*a, g); });
  auto* insp = cmd->add_subcommand("inspect", "print an image's manifest and config as JSON");
  insp->add_option("name", a->ref, "NAME[:TAG] or digest")->required();
  insp->callback([a, &g] { do_inspect(*a, g); });
  auto* rm = cmd->add_subcommand("rm", "remove an image name; the image with its last name");
  rm->add_option("name", a->ref, "NAME[:TAG] or digest")->required();
  rm->callback([a, &g] { do_rm(*a, g); });
  auto* tag = cmd->add_subcommand("tag", "give an image another name");
  tag->add_option("image", a->ref, "NAME[:TAG] or digest of the image")->required();
  tag->add_option("name", a->name, "the new NAME[:TAG]")->required();
  tag->callback([a, &g] {
    auto store = open_store(g);
    if (!store) return report(std::move(store).error());
    finish(image::tag_image(*store, a->ref, a->name).context("image tag " + a->ref));
  });
}

VerbRegistration reg_image(89, add_image);

}  // namespace
}  // namespace vessel::cli
