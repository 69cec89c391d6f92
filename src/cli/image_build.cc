// vessel image build -t NAME[:TAG] [-f FILE] [--build-arg K=V]... [--target STAGE] [--no-cache] [-q] CONTEXT
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli.h"
#include "image/build/builder.h"
#include "image/store.h"

namespace vessel::cli {
namespace {

struct BuildArgs {
  image::build::BuildOptions o;
  std::vector<std::string> build_args;
};

void do_build(BuildArgs& a, const Globals& g) {
  for (auto& kv : a.build_args) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return report(Error::invalid("--build-arg " + kv + ": expected KEY=VALUE"));
    a.o.build_args.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  a.o.runtime_root = g.root;
  auto store = image::Store::open(g.image_root);
  if (!store) return report(std::move(store).error());
  auto r = image::build::build_image(*store, a.o);
  if (!r) return report(std::move(r).error().context("image build " + a.o.context));
  std::printf("%s\n", r->manifest.str().c_str());
}

void add_image_build(CLI::App& app, Globals& g) {
  auto* image = app.get_subcommand("image");
  auto a = std::make_shared<BuildArgs>();
  auto* cmd = image->add_subcommand("build", "build an image from a Dockerfile (prints the image digest)");
  cmd->add_option("-t,--tag", a->o.tags, "name the image NAME[:TAG] (repeatable)");
  cmd->add_option("-f,--file", a->o.file, "the recipe (default: CONTEXT/Dockerfile or CONTEXT/Containerfile)");
  cmd->add_option("--build-arg", a->build_args, "KEY=VALUE for an ARG of the recipe (repeatable)");
  cmd->add_option("--target", a->o.target, "build up to this stage");
  cmd->add_flag("--no-cache", a->o.no_cache, "run every step, ignoring the build cache");
  cmd->add_flag("-q,--quiet", a->o.quiet, "show the output of RUN steps only when they fail");
  cmd->add_flag("--progress", a->o.progress, "show the steps even when stderr is not a terminal");
  cmd->add_option("context", a->o.context, "the build context directory")->required()->check(CLI::ExistingDirectory);
  cmd->callback([a, &g] { do_build(*a, g); });
}

// After `image` (order 90) registered the image command.
VerbRegistration reg_image_build(91, add_image_build);

}  // namespace
}  // namespace vessel::cli
