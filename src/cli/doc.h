// The command-line tree as documentation: examples in --help, man pages and
// shell completions generated from the CLI11 definitions (so they never drift
// from --help), and "did you mean" for misspelt verbs. Used by main.cc and the
// hidden verb `vessel __doc` (doc.cc), which the build runs after linking.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace vessel::cli {

// The verbs under `app` that a user sees (no hidden ones such as __doc), in
// definition order.
std::vector<const CLI::App*> visible_verbs(const CLI::App& app);
// The options of `app` that a user sees, without --help and positionals.
std::vector<const CLI::Option*> visible_flags(const CLI::App& app);
// The positional arguments of `app`, in order.
std::vector<const CLI::Option*> positionals(const CLI::App& app);
// "vessel image import": the command that runs `app`.
std::string command_path(const CLI::App& app);
// "-b, --bundle": an option's names for help texts.
std::string flag_names(const CLI::Option& o);

// Adds a one-line "Example:" footer to the help of every verb found in the
// examples table (examples.cc) that has no footer of its own.
void add_examples(CLI::App& app);
// The example of a verb ("" when there is none): its own footer or the table's.
std::string example_of(const CLI::App& verb);

// When argv names a verb `app` lacks ("vessel strat", "vessel image lss"),
// the error message for it, with the closest verb ("did you mean"); else "".
std::string unknown_verb_message(const CLI::App& app, int argc, char** argv);

// roff source of the man page vessel.8 (global options, the verbs).
std::string man_page_main(const CLI::App& app);
// roff source of vessel-VERB.8, for one top-level verb with its sub-verbs.
std::string man_page_verb(const CLI::App& app, const CLI::App& verb);
// The bash completion script (bash-completion's completions/vessel).
std::string bash_completion(const CLI::App& app);
// The zsh completion function (_vessel in $fpath).
std::string zsh_completion(const CLI::App& app);

}  // namespace vessel::cli
