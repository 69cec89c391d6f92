// vessel help [VERB...]: runc's `help` verb; the same text as --help.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli.h"
#include "common/strings.h"

namespace vessel::cli {
namespace {

void add_help(CLI::App& app, Globals&) {
  auto words = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("help", "show the help of vessel, or of a verb (vessel help run)");
  cmd->alias("h");
  cmd->add_option("verb", *words, "the verb (and sub-verb) to explain");
  CLI::App* root = &app;
  cmd->callback([words, root] {
    const CLI::App* node = root;
    for (const auto& w : *words) {
      const CLI::App* next = nullptr;
      for (auto* v : node->get_subcommands([](const CLI::App*) { return true; }))
        if (v->check_name(w) && v->get_name() != "help") next = v;
      // runc's words for a verb it does not have.
      if (!next) return report(Error::invalid(cat("No help topic for '", w, "'")));
      node = next;
    }
    // App::help() would show the selected verb (this one): ask the formatter for `node`'s.
    std::fputs(node->get_formatter()->make_help(node, node == root ? "vessel" : node->get_name(), CLI::AppFormatMode::Normal).c_str(),
               stdout);
  });
}

VerbRegistration reg_help(99, add_help);

}  // namespace
}  // namespace vessel::cli
