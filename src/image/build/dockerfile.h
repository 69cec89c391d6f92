// The recipe language of `vessel image build`: Dockerfile syntax.
//
// parse_dockerfile() turns the text into instructions: keywords are
// case-insensitive, "\" (or the `# escape=` directive's character) continues a
// line, comment lines (also inside continued instructions) and blank lines are
// skipped, leading `--name[=value]` flags are split off, and an argument that is a
// JSON array of strings is the exec form. Expansion of $VARS needs the build's
// state at that point, so it is done later by the builder with expand()/words()
// below (the shell-form arguments of RUN, CMD and ENTRYPOINT are never expanded:
// the shell does that). Errors name the line.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace vessel::image::build {

struct Flag {
  std::string name;   // without the dashes: "from", "chown"
  std::string value;  // "" when given as a bare --name
};

struct Instruction {
  int line = 0;                    // 1-based line where the instruction starts
  std::string keyword;             // upper case: "FROM", "RUN", …
  std::vector<Flag> flags;         // leading --flags, in order
  std::string args;                // the rest, continuations joined (one space), trimmed
  std::optional<std::vector<std::string>> exec;  // set when args is a JSON array of strings
  std::string original;            // the instruction as written, continuations joined (messages, cache keys)
};

struct Dockerfile {
  char escape = '\\';
  std::vector<Instruction> instructions;  // ARGs before the first FROM are part of it, in order
};

// Parses the text; an unknown keyword, an empty recipe or a malformed line is an error naming its line.
// Known keywords: FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER
// WORKDIR ARG ONBUILD STOPSIGNAL HEALTHCHECK SHELL.
//
// Details, as Docker does them: parser directives (`# escape=`, `# syntax=`, `# check=`) count only
// before any other line; a continued line ends in the escape character (blanks may follow it); the
// blanks around a continuation become one space ("a \" + "  b" is "a b", "a\" + "b" is "ab").
// The exec form is recognised for RUN CMD ENTRYPOINT SHELL ADD COPY VOLUME; a JSON array holding
// something else than strings is an error, as is SHELL without it. Every instruction needs
// arguments; the first one must be FROM or ARG; an ONBUILD trigger is checked like an instruction
// (and may not be ONBUILD, FROM or MAINTAINER). Heredocs (`RUN <<EOF`) are not supported: an error.
Result<Dockerfile> parse_dockerfile(std::string_view text);

// Parses one instruction (continuations joined, comment lines removed), as parse_dockerfile() does
// each; for the trigger of an ONBUILD, whose args hold e.g. "RUN make". Errors name `line`.
Result<Instruction> parse_instruction(std::string_view text, int line, char escape = '\\');

// The exec form: `s` parsed as a JSON array of strings; nullopt when `s` is no JSON array (the shell
// form); an error when it is a JSON array holding something else. For HEALTHCHECK's "CMD [...]".
Result<std::optional<std::vector<std::string>>> parse_exec_form(std::string_view s);

// The value of a build variable, or nullopt when it is not set.
using Lookup = std::function<std::optional<std::string>(const std::string&)>;

// Expands $NAME, ${NAME}, ${NAME:-word}, ${NAME-word}, ${NAME:+word}, ${NAME+word} in `s`
// (an unset variable is empty); `escape`+"$" is a literal "$". Quotes are kept as they are.
// Also, as Docker: ${NAME:?message} and ${NAME?message} (an error with the message when NAME is
// empty or unset / unset), ${NAME#pattern} ${NAME##pattern} ${NAME%pattern} ${NAME%%pattern}
// (remove the shortest/longest matching prefix/suffix; `*` and `?` are wildcards) and
// ${NAME/pattern/text} ${NAME//pattern/text} (replace the first/every longest match). Any other
// modifier is an error naming the variable. Quotes have no meaning here (a '$' inside '…' is
// expanded too); `escape` followed by anything but "$" (or the "}" closing a ${…}) stays as written.
Result<std::string> expand(std::string_view s, const Lookup& vars, char escape = '\\');

// Splits `s` into words like a shell: whitespace separates, '…' quotes literally,
// "…" quotes with expansion, `escape` escapes the next character; variables are expanded
// (not inside '…'). Quotes are removed. An unterminated quote is an error.
// As in Docker: inside "…" `escape` escapes only '"', '$' and itself (else it stays); an unquoted
// expansion is split at its blanks; "" or '' is an empty word.
Result<std::vector<std::string>> words(std::string_view s, const Lookup& vars, char escape = '\\');

// ENV / LABEL / ARG-style arguments: "K=V K2='v 2' …" (words(), each split at its first '='),
// or the legacy single "K some value" form when the first word has no '=' (only with allow_legacy).
// A word without '=' in the first form is an error naming it.
// As Docker, the words and their first '=' are found before expansion, then name and value are each
// expanded as one word (quotes removed, never split): with X="a b", "K=$X" gives K "a b". In the
// legacy form the value is the rest of `s`, expanded the same way. An empty name is an error.
Result<std::vector<std::pair<std::string, std::string>>> key_values(std::string_view s, const Lookup& vars,
                                                                     bool allow_legacy, char escape = '\\');

// ARG's arguments: "NAME" or "NAME=value" words, read as key_values() reads its first form, except
// that a word without '=' is a name without a default (nullopt). An empty name is an error.
Result<std::vector<std::pair<std::string, std::optional<std::string>>>> arg_values(std::string_view s,
                                                                                   const Lookup& vars,
                                                                                   char escape = '\\');

}  // namespace vessel::image::build
