// Man pages and shell completions generated from the CLI11 tree, and the hidden
// verb `vessel __doc man DIR | bash | zsh | check` that writes them (the build
// runs it after linking vessel; see CMakeLists.txt).
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>

#include "cli/cli.h"
#include "cli/doc.h"
#include "common/strings.h"

namespace vessel::cli {
namespace {

// --- roff -------------------------------------------------------------------

// Escapes text for roff: backslashes, and lines that would read as requests.
std::string roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
    line_start = c == '\n';
  }
  return out;
}

// The placeholder of an option's value in a man page: the type for numbers
// ("UINT"), else the option's name ("--bundle BUNDLE"); "" for flags.
std::string value_name(const CLI::Option& o) {
  if (o.get_items_expected_max() == 0) return {};
  std::string t = o.get_type_name();
  t = t.substr(0, t.find(':'));  // "TEXT:{a,b}" -> "TEXT"
  if (t == "INT" || t == "UINT" || t == "FLOAT" || t == "NUMBER") return t;
  std::string name = o.get_lnames().empty() ? o.get_name() : o.get_lnames()[0];
  for (auto& c : name) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

std::string roff_option(const CLI::Option& o) {
  std::string s = ".TP\n";
  bool first = true;
  for (auto& n : o.get_snames()) s += std::string(first ? "" : ", ") + "\\fB\\-" + roff(n) + "\\fR", first = false;
  for (auto& n : o.get_lnames()) s += std::string(first ? "" : ", ") + "\\fB\\-\\-" + roff(n) + "\\fR", first = false;
  if (auto v = value_name(o); !v.empty()) s += " \\fI" + v + "\\fR";
  s += "\n" + roff(o.get_description());
  if (!o.get_default_str().empty()) s += " (default: " + roff(o.get_default_str()) + ")";
  return s + "\n";
}

// "vessel image import [OPTIONS] path": a verb's synopsis line.
std::string roff_synopsis(const CLI::App& verb) {
  std::string s = "\\fB" + roff(command_path(verb)) + "\\fR";
  if (!visible_flags(verb).empty()) s += " [\\fIOPTIONS\\fR]";
  if (!visible_verbs(verb).empty()) s += " \\fICOMMAND\\fR";
  for (auto* p : positionals(verb)) {
    std::string n = "\\fI" + roff(p->get_name()) + "\\fR";
    if (p->get_items_expected_max() > 1) n += "...";
    s += p->get_required() ? " " + n : " [" + n + "]";
  }
  return s;
}

// The description's first line; the full text goes to DESCRIPTION.
std::string summary(const CLI::App& verb) {
  std::string d = verb.get_description();
  return d.substr(0, d.find('\n'));
}

std::string th(const std::string& name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return cat(".TH \"", upper, "\" \"8\" \"\" \"vessel ", VESSEL_VERSION, "\" \"System Administration\"\n");
}

// The OPTIONS, ARGUMENTS and EXAMPLE paragraphs of one verb.
std::string roff_verb_body(const CLI::App& verb) {
  std::string s;
  auto pos = positionals(verb);
  if (!pos.empty()) {
    s += ".PP\nArguments:\n.RS\n";
    for (auto* p : pos) s += ".TP\n\\fI" + roff(p->get_name()) + "\\fR\n" + roff(p->get_description()) + "\n";
    s += ".RE\n";
  }
  auto flags = visible_flags(verb);
  if (!flags.empty()) {
    s += ".PP\nOptions:\n.RS\n";
    for (auto* o : flags) s += roff_option(*o);
    s += ".RE\n";
  }
  if (auto ex = example_of(verb); !ex.empty()) s += ".PP\nExample:\n.PP\n.RS\n.nf\n" + roff(ex) + "\n.fi\n.RE\n";
  return s;
}

// Sub-verbs, depth first: "vessel image import", "vessel vm run".
void roff_sub_verbs(const CLI::App& verb, std::string& s) {
  for (auto* sub : visible_verbs(verb)) {
    s += ".SS \"" + roff(command_path(*sub)) + "\"\n" + roff_synopsis(*sub) + "\n.PP\n" + roff(sub->get_description()) + "\n";
    if (!sub->get_aliases().empty()) s += ".PP\nAlias: \\fB" + roff(sub->get_aliases()[0]) + "\\fR.\n";
    s += roff_verb_body(*sub);
    roff_sub_verbs(*sub, s);
  }
}

std::string man_name(const CLI::App& verb) { return "vessel-" + verb.get_name(); }

// --- completions ------------------------------------------------------------

// One node of the completion tables per verb path and per alias of it.
struct Node {
  std::string key;                    // "vessel image import"
  std::vector<std::string> verbs;     // names and aliases of the sub-verbs
  std::vector<std::string> verb_help; // "name:summary" for zsh
  std::vector<std::string> flags;     // every spelling of every option, with --help
  std::vector<std::string> flag_help; // "--name:description" for zsh
  std::vector<std::string> takes_value;
};

void collect(const CLI::App& app, const std::string& key, std::vector<Node>& out) {
  Node n;
  n.key = key;
  for (auto* v : visible_verbs(app)) {
    std::vector<std::string> names{v->get_name()};
    for (auto& a : v->get_aliases()) names.push_back(a);
    for (auto& name : names) {
      n.verbs.push_back(name);
      n.verb_help.push_back(name + ":" + summary(*v));
    }
  }
  std::vector<const CLI::Option*> opts = visible_flags(app);
  if (app.get_help_ptr()) opts.push_back(app.get_help_ptr());
  for (auto* o : opts) {
    std::vector<std::string> spellings;
    for (auto& s : o->get_snames()) spellings.push_back("-" + s);
    for (auto& l : o->get_lnames()) spellings.push_back("--" + l);
    for (auto& sp : spellings) {
      n.flags.push_back(sp);
      n.flag_help.push_back(sp + ":" + o->get_description());
      if (o->get_items_expected_max() > 0) n.takes_value.push_back(sp);
    }
  }
  out.push_back(n);
  for (auto* v : visible_verbs(app)) {
    collect(*v, key + " " + v->get_name(), out);
    for (auto& a : v->get_aliases()) collect(*v, key + " " + a, out);
  }
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// A shell word in single quotes (bash and zsh read it the same way).
std::string sq(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// "name:desc" with the name's colons escaped for zsh's _describe; one line.
std::string describe_entry(const std::string& entry) {
  auto colon = entry.find(':');
  std::string name = entry.substr(0, colon), desc = entry.substr(colon + 1);
  std::string out;
  for (char c : name) out += c == ':' ? std::string("\\:") : std::string(1, c);
  desc = desc.substr(0, desc.find('\n'));
  return out + ":" + desc;
}

// --- the hidden verb ----------------------------------------------------------

Status write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Error(errno, "open " + path);
  size_t n = std::fwrite(text.data(), 1, text.size(), f);
  int err = n == text.size() ? 0 : errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err) return Error(err, "write " + path);
  return ok();
}

Status write_man_pages(const CLI::App& app, const std::string& dir) {
  TRYC(write_text(dir + "/vessel.8", man_page_main(app)), "__doc man");
  for (auto* v : visible_verbs(app))
    TRYC(write_text(dir + "/" + man_name(*v) + ".8", man_page_verb(app, *v)), "__doc man");
  return ok();
}

// Every verb has an example in its --help; prints the ones that lack it.
Status check_examples(const CLI::App& app) {
  std::vector<std::string> missing;
  auto walk = [&](auto&& self, const CLI::App& a) -> void {
    if (example_of(a).empty()) missing.push_back(command_path(a));
    for (auto* v : visible_verbs(a)) self(self, *v);
  };
  walk(walk, app);
  if (missing.empty()) return ok();
  return Error::invalid("verbs without an example in --help (add one to the table in src/cli/examples.cc): " +
                        join(missing, ", "));
}

void add_doc(CLI::App& app, Globals&) {
  auto* doc = app.add_subcommand("__doc", "write the documentation generated from the command line");
  doc->group("");  // hidden: for the build
  doc->require_subcommand(1);
  auto dir = std::make_shared<std::string>();
  auto* man = doc->add_subcommand("man", "write vessel.8 and vessel-VERB.8 into DIR");
  man->add_option("dir", *dir, "output directory")->required()->check(CLI::ExistingDirectory);
  man->callback([&app, dir] { finish(write_man_pages(app, *dir)); });
  doc->add_subcommand("bash", "print the bash completion script")->callback([&app] {
    std::fputs(bash_completion(app).c_str(), stdout);
  });
  doc->add_subcommand("zsh", "print the zsh completion function")->callback([&app] {
    std::fputs(zsh_completion(app).c_str(), stdout);
  });
  doc->add_subcommand("check", "fail when a verb has no example")->callback([&app] { finish(check_examples(app)); });
  doc->add_subcommand("verbs", "print every verb's command path, one a line")->callback([&app] {
    auto walk = [](auto&& self, const CLI::App& a) -> void {
      for (auto* v : visible_verbs(a)) {
        std::printf("%s\n", command_path(*v).substr(7).c_str());
        self(self, *v);
      }
    };
    walk(walk, app);
  });
}

VerbRegistration reg_doc(1000, add_doc);

}  // namespace

std::string man_page_main(const CLI::App& app) {
  std::string s = th("vessel");
  s += ".SH NAME\nvessel \\- an OCI container runtime and a KVM virtual machine monitor\n";
  s += ".SH SYNOPSIS\n\\fBvessel\\fR [\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]\n";
  s += ".SH DESCRIPTION\n"
       "\\fBvessel\\fR runs OCI containers with the command line of \\fBrunc\\fR(8), so that "
       "\\fBpodman\\fR(1), containerd and Docker can use it as their runtime; it keeps an image "
       "store and builds images from Dockerfiles; and \\fBvessel vm run\\fR boots a Linux kernel "
       "in a KVM virtual machine with virtio block, network and entropy devices.\n"
       ".PP\nEach command has its own page, \\fBvessel\\-\\fR\\fICOMMAND\\fR(8), and \\fB\\-\\-help\\fR.\n";
  s += ".SH GLOBAL OPTIONS\n";
  for (auto* o : visible_flags(app)) s += roff_option(*o);
  s += ".SH COMMANDS\n";
  for (auto* v : visible_verbs(app)) {
    s += ".TP\n\\fB" + roff(v->get_name()) + "\\fR";
    for (auto& a : v->get_aliases()) s += ", \\fB" + roff(a) + "\\fR";
    s += "\n" + roff(summary(*v)) + "; see \\fB" + roff(man_name(*v)) + "\\fR(8).\n";
  }
  s += ".SH EXAMPLE\n.nf\n" + roff(example_of(app)) + "\n.fi\n";
  s += ".SH FILES\n.TP\n\\fI/run/vessel\\fR\nstate of the containers (\\fB\\-\\-root\\fR)\n"
       ".TP\n\\fI/var/lib/vessel\\fR\nthe image store (\\fB\\-\\-image\\-root\\fR)\n"
       ".TP\n\\fI/usr/share/doc/vessel/examples\\fR\nconfiguration snippets for podman, containerd and Docker\n";
  s += ".SH EXIT STATUS\n0 on success; 1 on errors, with one line on standard error (and in \\fB\\-\\-log\\fR); "
       "2 for a command line that does not parse. \\fBrun\\fR exits with the status of the container's process.\n";
  s += ".SH SEE ALSO\n";
  std::vector<std::string> refs;
  for (auto* v : visible_verbs(app)) refs.push_back("\\fB" + roff(man_name(*v)) + "\\fR(8)");
  refs.push_back("\\fBrunc\\fR(8)");
  refs.push_back("\\fBpodman\\fR(1)");
  return s + join(refs, ",\n") + "\n";
}

std::string man_page_verb(const CLI::App& app, const CLI::App& verb) {
  std::string s = th(man_name(verb));
  s += ".SH NAME\n" + roff(man_name(verb)) + " \\- " + roff(summary(verb)) + "\n";
  s += ".SH SYNOPSIS\n" + roff_synopsis(verb) + "\n";
  if (!verb.get_aliases().empty()) s += ".br\n\\fBvessel " + roff(verb.get_aliases()[0]) + "\\fR ...\n";
  s += ".SH DESCRIPTION\n" + roff(verb.get_description()) + "\n";
  s += roff_verb_body(verb);
  if (!visible_verbs(verb).empty()) {
    s += ".SH COMMANDS\n";
    roff_sub_verbs(verb, s);
  }
  s += ".SH GLOBAL OPTIONS\nThe options of \\fBvessel\\fR(8) go before the command: ";
  std::vector<std::string> globals;
  for (auto* o : visible_flags(app)) globals.push_back("\\fB" + roff(o->get_lnames().empty() ? o->get_name() : "--" + o->get_lnames()[0]) + "\\fR");
  s += join(globals, ", ") + ".\n";
  return s + ".SH SEE ALSO\n\\fBvessel\\fR(8)\n";
}

std::string bash_completion(const CLI::App& app) {
  std::vector<Node> nodes;
  collect(app, "vessel", nodes);
  std::string verbs, flags, values;
  for (auto& n : nodes) {
    verbs += "  [" + sq(n.key) + "]=" + sq(join(n.verbs, " ")) + "\n";
    flags += "  [" + sq(n.key) + "]=" + sq(join(n.flags, " ")) + "\n";
    values += "  [" + sq(n.key) + "]=" + sq(join(n.takes_value, " ")) + "\n";
  }
  return "# bash completion for vessel(8). Generated by `vessel __doc bash` from the command line\n"
         "# definitions (src/cli): verbs, sub-verbs and flags, as `vessel --help` shows them.\n"
         "# -g: bash-completion sources this file from inside a function.\n"
         "declare -gA _vessel_verbs=(\n" + verbs + ")\n"
         "declare -gA _vessel_flags=(\n" + flags + ")\n"
         "declare -gA _vessel_values=(\n" + values + ")\n"
         "_vessel() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} node=vessel word i\n"
         "  # Find the verb being completed, skipping flags and the values of flags that take one.\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    word=${COMP_WORDS[i]}\n"
         "    if [[ $word == -* ]]; then\n"
         "      [[ $word != *=* && \" ${_vessel_values[$node]} \" == *\" $word \"* ]] && ((i++))\n"
         "      continue\n"
         "    fi\n"
         "    [[ \" ${_vessel_verbs[$node]} \" == *\" $word \"* ]] && node=\"$node $word\"\n"
         "  done\n"
         "  if [[ $cur != -* && \" ${_vessel_values[$node]} \" == *\" $prev \"* ]]; then\n"
         "    compopt -o filenames 2>/dev/null\n"
         "    mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
         "  elif [[ $cur == -* ]]; then\n"
         "    mapfile -t COMPREPLY < <(compgen -W \"${_vessel_flags[$node]}\" -- \"$cur\")\n"
         "  elif [[ -n ${_vessel_verbs[$node]} ]]; then\n"
         "    mapfile -t COMPREPLY < <(compgen -W \"${_vessel_verbs[$node]}\" -- \"$cur\")\n"
         "  else\n"
         "    compopt -o default 2>/dev/null\n"
         "    COMPREPLY=()\n"
         "  fi\n"
         "}\n"
         "complete -F _vessel vessel\n";
}

std::string zsh_completion(const CLI::App& app) {
  std::vector<Node> nodes;
  collect(app, "vessel", nodes);
  std::string verbs, verb_help, flag_help, values;
  auto described = [](const std::vector<std::string>& entries) {
    std::vector<std::string> lines;
    for (auto& e : entries) lines.push_back(describe_entry(e));
    return join(lines, "\n");
  };
  for (auto& n : nodes) {
    verbs += "  " + sq(n.key) + " " + sq(join(n.verbs, " ")) + "\n";
    verb_help += "  " + sq(n.key) + " " + sq(described(n.verb_help)) + "\n";
    flag_help += "  " + sq(n.key) + " " + sq(described(n.flag_help)) + "\n";
    values += "  " + sq(n.key) + " " + sq(join(n.takes_value, " ")) + "\n";
  }
  return "#compdef vessel\n"
         "# zsh completion for vessel(8). Generated by `vessel __doc zsh` from the command line\n"
         "# definitions (src/cli): verbs, sub-verbs and flags with their descriptions.\n"
         "typeset -gA _vessel_verbs _vessel_verb_help _vessel_flag_help _vessel_values\n"
         "_vessel_verbs=(\n" + verbs + ")\n"
         "_vessel_verb_help=(\n" + verb_help + ")\n"
         "_vessel_flag_help=(\n" + flag_help + ")\n"
         "_vessel_values=(\n" + values + ")\n"
         "_vessel() {\n"
         "  local node=vessel word i\n"
         "  local -a entries\n"
         "  for ((i = 2; i < CURRENT; i++)); do\n"
         "    word=${words[i]}\n"
         "    if [[ $word == -* ]]; then\n"
         "      [[ $word != *=* && \" ${_vessel_values[$node]} \" == *\" $word \"* ]] && ((i++))\n"
         "      continue\n"
         "    fi\n"
         "    [[ \" ${_vessel_verbs[$node]} \" == *\" $word \"* ]] && node=\"$node $word\"\n"
         "  done\n"
         "  if [[ ${words[CURRENT]} != -* && \" ${_vessel_values[$node]} \" == *\" ${words[CURRENT-1]} \"* ]]; then\n"
         "    _files\n"
         "  elif [[ ${words[CURRENT]} == -* ]]; then\n"
         "    entries=(${(f)_vessel_flag_help[$node]})\n"
         "    _describe -t options option entries\n"
         "  elif [[ -n ${_vessel_verbs[$node]} ]]; then\n"
         "    entries=(${(f)_vessel_verb_help[$node]})\n"
         "    _describe -t commands command entries\n"
         "  else\n"
         "    _files\n"
         "  fi\n"
         "}\n"
         "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n"
         "  _vessel \"$@\"\n"
         "else\n"
         "  compdef _vessel vessel\n"
         "fi\n";
}

}  // namespace vessel::cli
