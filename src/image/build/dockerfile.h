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
Result<Dockerfile> parse_dockerfile(std::string_view text);

// The value of a build variable, or nullopt when it is not set.
using Lookup = std::function<std::optional<std::string>(const std::string&)>;

// Expands $NAME, ${NAME}, ${NAME:-word}, ${NAME-word}, ${NAME:+word}, ${NAME+word} in `s`
// (an unset variable is empty); `escape`+"$" is a literal "$". Quotes are kept as they are.
Result<std::string> expand(std::string_view s, const Lookup& vars, char escape = '\\');

// Splits `s` into words like a shell: whitespace separates, '…' quotes literally,
// "…" quotes with expansion, `escape` escapes the next character; variables are expanded
// (not inside '…'). Quotes are removed. An unterminated quote is an error.
Result<std::vector<std::string>> words(std::string_view s, const Lookup& vars, char escape = '\\');

// ENV / LABEL / ARG-style arguments: "K=V K2='v 2' …" (words(), each split at its first '='),
// or the legacy single "K some value" form when the first word has no '=' (only with allow_legacy).
// A word without '=' in the first form is an error naming it.
Result<std::vector<std::pair<std::string, std::string>>> key_values(std::string_view s, const Lookup& vars,
                                                                     bool allow_legacy, char escape = '\\');

}  // namespace vessel::image::build
