// The Dockerfile parser and the shell-like rules of its arguments, after Docker's
// (moby/buildkit frontend/dockerfile: parser/ for the lines, shell/ for the words).
#include "image/build/dockerfile.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace vessel::image::build {
namespace {

using Argv = std::vector<std::string>;

// Blanks inside a line; is_space() also counts the newline (for words() of any text).
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }
bool is_space(char c) { return is_blank(c) || c == '\n'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

std::string_view trim_both(std::string_view s) {
  s = trim_left(s);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

constexpr std::array<std::string_view, 18> kKeywords = {
    "FROM",   "RUN",  "CMD",     "LABEL", "MAINTAINER", "EXPOSE",     "ENV",         "ADD",  "COPY",
    "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"};
// The instructions whose arguments may be the exec form (a JSON array), as Docker reads them.
constexpr std::array<std::string_view, 7> kExecFormKeywords = {"RUN", "CMD",  "ENTRYPOINT", "SHELL",
                                                               "ADD", "COPY", "VOLUME"};

template <size_t N>
bool contains(const std::array<std::string_view, N>& set, std::string_view s) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

// ---------------------------------------------------------------------------------------------
// Lines

// The parser directives seen so far; `done` once a line that is no directive has come.
struct Directives {
  char escape = '\\';
  bool done = false;
  std::vector<std::string> seen;
};

// Reads `# name = value` (a directive's shape); nullopt for any other line.
std::optional<std::pair<std::string, std::string_view>> match_directive(std::string_view line) {
  if (line.empty() || line[0] != '#') return std::nullopt;
  size_t i = 1;
  auto skip_blanks = [&] {
    while (i < line.size() && is_space(line[i])) ++i;
  };
  skip_blanks();
  size_t start = i;
  if (i >= line.size() || !is_alpha(line[i])) return std::nullopt;
  while (i < line.size() && (is_alpha(line[i]) || is_digit(line[i]))) ++i;
  std::string name(line.substr(start, i - start));
  for (char& c : name)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  skip_blanks();
  if (i >= line.size() || line[i] != '=') return std::nullopt;
  ++i;
  std::string_view value = trim_both(line.substr(i));
  if (value.empty()) return std::nullopt;
  return std::make_pair(std::move(name), value);
}

// Handles `line` (blanks on its left removed) while directives may still come.
Status handle_directive(Directives& d, std::string_view line) {
  if (d.done) return ok();
  auto m = match_directive(line);
  if (!m || (m->first != "escape" && m->first != "syntax" && m->first != "check")) {
    d.done = true;  // a comment, a blank line or an instruction ends the directives
    return ok();
  }
  if (std::find(d.seen.begin(), d.seen.end(), m->first) != d.seen.end())
    return Error::invalid(cat("a second \"", m->first, "\" parser directive"));
  d.seen.push_back(m->first);
  if (m->first == "escape") {
    if (m->second != "\\" && m->second != "`")
      return Error::invalid(cat("escape parser directive: ", json_quote(m->second), " is neither \\ nor `"));
    d.escape = m->second[0];
  }
  return ok();  // syntax= and check= select BuildKit features: nothing to do here
}

// Removes a trailing escape character (and the blanks after it) from `line`:
// whether the instruction continues on the next line.
bool strip_continuation(std::string_view& line, char escape) {
  std::string_view t = line;
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  if (t.empty() || t.back() != escape) return false;
  t.remove_suffix(1);
  line = t;
  return true;
}

// Appends a piece of a continued line: the blanks where the pieces meet become one space.
void join_piece(std::string& out, std::string_view piece) {
  bool space = false;
  while (!out.empty() && is_blank(out.back())) {
    out.pop_back();
    space = true;
  }
  size_t lead = 0;
  while (lead < piece.size() && is_blank(piece[lead])) ++lead;
  if (lead > 0) space = true;
  if (space && !out.empty()) out.push_back(' ');
  out.append(piece.substr(lead));
}

// The text's lines, without their "\n" or "\r\n".
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// One instruction

bool valid_flag_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return false;
  return true;
}

// Splits the leading --name[=value] tokens of `s` off into `flags` and returns the rest. In a flag,
// quotes are removed ('…' literal; in "…" `escape` escapes '"' and itself) and `escape` outside
// quotes escapes any character, so --mount=target="/a b" is one flag. A bare "--" ends the flags.
Result<std::string_view> split_flags(std::string_view s, char escape, std::vector<Flag>& flags) {
  size_t i = 0;
  while (true) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (s.substr(i, 2) != "--") return s.substr(i);
    size_t start = i;
    std::string token;
    char quote = 0;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (quote) {
        if (c == quote) quote = 0;
        else if (quote == '"' && c == escape && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == escape))
          token += s[++i];
        else token += c;
        continue;
      }
      if (is_space(c)) break;
      if (c == '\'' || c == '"') quote = c;
      else if (c == escape) {
        if (i + 1 < s.size()) token += s[++i];
      } else token += c;
    }
    std::string_view written = s.substr(start, i - start);
    if (quote) return Error::invalid(cat("unterminated quote in flag ", json_quote(written)));
    if (written == "--") return s.substr(i);
    std::string_view body = std::string_view(token).substr(2);
    size_t eq = body.find('=');
    Flag flag{std::string(body.substr(0, eq)), eq == std::string_view::npos ? "" : std::string(body.substr(eq + 1))};
    if (!valid_flag_name(flag.name)) return Error::invalid(cat("invalid flag ", json_quote(written)));
    flags.push_back(std::move(flag));
  }
}

// Whether a shell-form argument list holds a heredoc ("<<EOF", "<<-EOF", "3<<'EOF'"): a word,
// quotes kept, of the shape Docker reads as one (digits, "<<", an optional "-", a name without '<').
bool has_heredoc(std::string_view args, char escape) {
  size_t i = 0;
  while (i < args.size()) {
    while (i < args.size() && is_space(args[i])) ++i;
    size_t start = i;
    char quote = 0;
    for (; i < args.size(); ++i) {
      char c = args[i];
      if (quote) {
        if (c == quote) quote = 0;
        else if (quote == '"' && c == escape) ++i;
        continue;
      }
      if (is_space(c)) break;
      if (c == '\'' || c == '"') quote = c;
      else if (c == escape) ++i;
    }
    std::string_view word = args.substr(start, std::min(i, args.size()) - start);
    size_t d = 0;
    while (d < word.size() && is_digit(word[d])) ++d;
    word.remove_prefix(d);
    if (word.substr(0, 2) != "<<") continue;
    word.remove_prefix(2);
    if (!word.empty() && word[0] == '-') word.remove_prefix(1);
    if (!word.empty() && word.find('<') == std::string_view::npos) return true;
  }
  return false;
}

// parse_instruction() without the line in its errors (an ONBUILD trigger is parsed with it).
Result<Instruction> parse_one(std::string_view text, int line, char escape) {
  std::string_view s = trim_both(text);
  Instruction in;
  in.line = line;
  in.original = std::string(s);
  size_t k = 0;
  while (k < s.size() && !is_space(s[k])) ++k;
  in.keyword = upper(s.substr(0, k));
  if (!contains(kKeywords, in.keyword))
    return Error::invalid(cat("unknown instruction ", json_quote(s.substr(0, k))));
  std::string_view rest = TRYC(split_flags(s.substr(k), escape, in.flags), in.keyword);
  in.args = std::string(trim_both(rest));
  if (in.args.empty()) return Error::invalid(cat(in.keyword, " needs arguments"));

  if (contains(kExecFormKeywords, in.keyword)) in.exec = TRYC(parse_exec_form(in.args), in.keyword);
  if (in.keyword == "SHELL" && !in.exec)
    return Error::invalid("SHELL needs the exec form: a JSON array of strings such as [\"/bin/sh\", \"-c\"]");
  if (!in.exec && (in.keyword == "RUN" || in.keyword == "COPY" || in.keyword == "ADD") &&
      has_heredoc(in.args, escape))
    return Error::invalid(cat(in.keyword, ": heredocs (<<EOF) are not supported"));
  if (in.keyword == "ONBUILD") {
    // The trigger's keyword is checked before it is parsed: "ONBUILD ONBUILD …" must not recurse.
    std::string trigger(upper(in.args.substr(0, in.args.find_first_of(" \t\v\f\r\n"))));
    if (trigger == "ONBUILD" || trigger == "FROM" || trigger == "MAINTAINER")
      return Error::invalid(cat("ONBUILD ", trigger, " is not allowed"));
    TRYC(parse_one(in.args, line, escape), "ONBUILD");
  }
  return in;
}

// ---------------------------------------------------------------------------------------------
// Words: expansion and quotes, after Docker's shell lexer

constexpr int kMaxNesting = 32;  // ${A:-${B:-…}} levels: hostile input must not exhaust the stack

// Glob patterns of ${NAME#…}, ${NAME%…} and ${NAME/…/…}: '*' any string, '?' any character.
struct PatternToken {
  enum Kind { kChar, kAny, kStar } kind;
  char c;
};

// Compiles the pattern text, where `escape` before a character makes it literal.
std::vector<PatternToken> compile_pattern(std::string_view p, char escape) {
  std::vector<PatternToken> out;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == escape && i + 1 < p.size()) out.push_back({PatternToken::kChar, p[++i]});
    else if (c == '*') out.push_back({PatternToken::kStar, 0});
    else if (c == '?') out.push_back({PatternToken::kAny, 0});
    else out.push_back({PatternToken::kChar, c});
  }
  return out;
}

// For each j in [0, v.size()]: whether v[0, j) matches the whole pattern.
std::vector<char> prefix_matches(const std::vector<PatternToken>& pattern, std::string_view v) {
  std::vector<char> cur(v.size() + 1, 0), next(v.size() + 1, 0);
  cur[0] = 1;  // the empty pattern matches the empty prefix
  for (const auto& t : pattern) {
    if (t.kind == PatternToken::kStar) {
      char any = 0;
      for (size_t j = 0; j <= v.size(); ++j) next[j] = any = static_cast<char>(any | cur[j]);
    } else {
      next[0] = 0;
      for (size_t j = 0; j < v.size(); ++j)
        next[j + 1] = static_cast<char>(cur[j] && (t.kind == PatternToken::kAny || v[j] == t.c));
    }
    std::swap(cur, next);
  }
  return cur;
}

// ${NAME#p} ${NAME##p} (prefix) and ${NAME%p} ${NAME%%p} (suffix): the shortest or longest match removed.
std::string remove_match(std::string value, std::vector<PatternToken> pattern, bool suffix, bool longest) {
  if (suffix) {
    std::reverse(value.begin(), value.end());
    std::reverse(pattern.begin(), pattern.end());
  }
  auto m = prefix_matches(pattern, value);
  std::optional<size_t> cut;
  for (size_t j = 0; j < m.size(); ++j)
    if (m[j] && (!cut || longest)) cut = j;
  if (cut) value.erase(0, *cut);
  if (suffix) std::reverse(value.begin(), value.end());
  return value;
}

// ${NAME/p/text} and ${NAME//p/text}: the longest non-empty match at the leftmost place replaced
// (every such match, left to right, with `all`).
std::string replace_matches(std::string_view value, const std::vector<PatternToken>& pattern,
                            std::string_view text, bool all) {
  if (pattern.empty()) return std::string(value);
  std::string out;
  size_t i = 0;
  bool replaced = false;
  while (i < value.size()) {
    size_t len = 0;
    if (all || !replaced) {
      auto m = prefix_matches(pattern, value.substr(i));
      for (size_t j = m.size(); j-- > 1;)
        if (m[j]) {
          len = j;
          break;
        }
    }
    if (len == 0) {
      out += value[i++];
      continue;
    }
    out += text;
    i += len;
    replaced = true;
  }
  return out;
}

// What a scan produces: the text (`flat`) and its words. A pattern sink writes what was quoted or
// escaped with `escape` before each character, so that it stays literal in the pattern.
struct Sink {
  bool pattern = false;
  char escape = '\\';
  std::string flat;
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;

  // Quoted or escaped text: never split, literal in a pattern.
  void raw(std::string_view s) {
    in_word = true;
    if (!pattern) {
      flat += s;
      word += s;
      return;
    }
    for (char c : s) {
      flat += escape;
      flat += c;
    }
  }
  void raw(char c) { raw(std::string_view(&c, 1)); }
  // Unquoted text: split at blanks.
  void split(std::string_view s) {
    flat += s;
    if (pattern) return;
    for (char c : s) {
      if (is_space(c)) {
        end_word();
      } else {
        word += c;
        in_word = true;
      }
    }
  }
  void end_word() {
    if (in_word) words.push_back(std::move(word));
    word.clear();
    in_word = false;
  }
};

class Lexer {
 public:
  // kRaw: expand() (quotes are plain characters); kShell: words() and key_values().
  enum Mode { kRaw, kShell };

  Lexer(std::string_view s, const Lookup& vars, char escape, Mode mode)
      : s_(s), vars_(vars), escape_(escape), mode_(mode) {}

  Result<Sink> run() {
    Sink out;
    out.escape = escape_;
    TRY(scan(out, 0));
    out.end_word();
    return out;
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }

  // Scans up to `stop` (consumed; 0 for the end of the input) into `out`.
  Status scan(Sink& out, char stop) {
    while (!at_end()) {
      char c = s_[pos_];
      if (stop && c == stop) {
        ++pos_;
        return ok();
      }
      if (c == '$') {
        out.split(TRY(dollar()));
      } else if (mode_ == kShell && c == '\'') {
        TRY(single_quote(out));
      } else if (mode_ == kShell && c == '"') {
        TRY(double_quote(out));
      } else if (c == escape_) {
        ++pos_;
        if (at_end()) {  // a trailing escape: dropped by the shell, kept by expand()
          if (mode_ == kRaw && !out.pattern) out.split(std::string_view(&c, 1));
          break;
        }
        char n = s_[pos_++];
        if (mode_ == kRaw && !out.pattern && n != '$' && !(stop && n == stop)) out.split(std::string_view(&c, 1));
        out.raw(n);
      } else {
        ++pos_;
        out.split(std::string_view(&c, 1));
      }
    }
    if (stop) return Error::invalid(cat("missing '", stop, "'"));
    return ok();
  }

  Status single_quote(Sink& out) {
    size_t end = s_.find('\'', pos_ + 1);
    if (end == std::string_view::npos) return Error::invalid("unterminated single quote");
    out.raw(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return ok();
  }

  Status double_quote(Sink& out) {
    ++pos_;
    std::string text;
    while (true) {
      if (at_end()) return Error::invalid("unterminated double quote");
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        out.raw(text);
        return ok();
      }
      if (c == '$') {
        text += TRY(dollar());
        continue;
      }
      ++pos_;
      if (c == escape_ && !at_end() && (s_[pos_] == '"' || s_[pos_] == '$' || s_[pos_] == escape_)) c = s_[pos_++];
      text += c;
    }
  }

  // A variable's name after '$': letters, digits and '_', or all digits, or one special character.
  std::string_view read_name() {
    size_t start = pos_;
    if (!at_end() && is_digit(s_[pos_])) {
      while (!at_end() && is_digit(s_[pos_])) ++pos_;
    } else if (!at_end() && std::string_view("@*#?-$!").find(s_[pos_]) != std::string_view::npos) {
      ++pos_;
    } else {
      while (!at_end() && (is_alpha(s_[pos_]) || is_digit(s_[pos_]) || s_[pos_] == '_')) ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

  std::optional<std::string> lookup(std::string_view name) const {
    if (!vars_) return std::nullopt;
    return vars_(std::string(name));
  }

  // The text of a ${…} modifier, up to `stop`: expanded, quotes handled as around it.
  Result<std::string> modifier_text(char stop, bool pattern) {
    Sink sink;
    sink.pattern = pattern;
    sink.escape = escape_;
    TRY(scan(sink, stop));
    return std::move(sink.flat);
  }

  // Expands the $NAME or ${…} at pos_.
  Result<std::string> dollar() {
    ++pos_;
    if (at_end() || s_[pos_] != '{') {
      std::string_view name = read_name();
      if (name.empty()) return std::string("$");
      return lookup(name).value_or("");
    }
    ++pos_;
    if (at_end()) return Error::invalid("missing '}'");
    std::string_view name = read_name();
    if (name.empty()) return Error::invalid(cat("bad substitution ${", s_.substr(pos_, 1), "…"));
    if (at_end()) return Error::invalid(cat("missing '}' after ${", name));
    char m = s_[pos_++];
    if (m == '}') return lookup(name).value_or("");

    if (depth_ >= kMaxNesting) return Error::invalid("${…} nested too deeply");
    ++depth_;
    auto r = modifier(name, m);
    --depth_;
    return r;
  }

  // ${NAME<m>…}, pos_ after the first modifier character `m`.
  Result<std::string> modifier(std::string_view name, char m) {
    std::string mod(1, m);
    bool colon = m == ':';
    if (colon) {
      if (at_end()) return Error::invalid(cat("missing '}' after ${", name, ":"));
      m = s_[pos_++];
      mod += m;
    }
    auto unsupported = [&] {
      return Error::invalid(cat("unsupported modifier ", json_quote(mod), " in ${", name, "…}"));
    };
    if (m == '-' || m == '+' || m == '?') {
      std::string word = TRY(modifier_text('}', false).context(cat("${", name, mod, "…}")));
      auto value = lookup(name);
      bool unset = !value || (colon && value->empty());
      if (m == '-') return unset ? word : *value;
      if (m == '+') return unset ? std::string() : word;
      if (!value) return Error::invalid(cat(name, ": ", word.empty() ? "is not allowed to be unset" : word));
      if (unset) return Error::invalid(cat(name, ": ", word.empty() ? "is not allowed to be empty" : word));
      return *value;
    }
    if (colon) return unsupported();
    if (m == '#' || m == '%') {
      bool longest = !at_end() && s_[pos_] == m;
      if (longest) ++pos_;
      std::string p = TRY(modifier_text('}', true).context(cat("${", name, mod, "…}")));
      return remove_match(lookup(name).value_or(""), compile_pattern(p, escape_), m == '%', longest);
    }
    if (m == '/') {
      bool all = !at_end() && s_[pos_] == '/';
      if (all) ++pos_;
      std::string p = TRY(modifier_text('/', true).context(cat("${", name, "/…}")));
      std::string text = TRY(modifier_text('}', false).context(cat("${", name, "/…}")));
      return replace_matches(lookup(name).value_or(""), compile_pattern(p, escape_), text, all);
    }
    return unsupported();
  }

  std::string_view s_;
  const Lookup& vars_;
  char escape_;
  Mode mode_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// One word expanded as the shell would, not split (Docker's ProcessWord): for names and values.
Result<std::string> expand_word(std::string_view s, const Lookup& vars, char escape) {
  Sink sink = TRY(Lexer(s, vars, escape, Lexer::kShell).run().context(cat("expand ", json_quote(s))));
  return std::move(sink.flat);
}

// A word of key_values() as written, and where its first '=' (outside quotes and ${…}) is.
struct RawWord {
  std::string_view text;
  size_t eq = std::string_view::npos;
  size_t end = 0;  // offset in the input just past the word
};

std::vector<RawWord> raw_words(std::string_view s, char escape) {
  std::vector<RawWord> out;
  size_t i = 0;
  while (true) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i >= s.size()) return out;
    size_t start = i;
    RawWord w;
    char quote = 0;
    int braces = 0;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (quote) {
        if (c == quote) quote = 0;
        else if (quote == '"' && c == escape) ++i;
        continue;
      }
      if (is_space(c) && braces == 0) break;
      if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == escape) {
        ++i;
      } else if (c == '$' && i + 1 < s.size() && s[i + 1] == '{') {
        ++braces;
        ++i;
      } else if (c == '}' && braces > 0) {
        --braces;
      } else if (c == '=' && braces == 0 && w.eq == std::string_view::npos) {
        w.eq = i - start;
      }
    }
    i = std::min(i, s.size());
    w.text = s.substr(start, i - start);
    w.end = i;
    out.push_back(w);
  }
}

// A raw word's name and value (nullopt without '='), each expanded as one word.
Result<std::pair<std::string, std::optional<std::string>>> name_value(const RawWord& w, const Lookup& vars,
                                                                       char escape) {
  std::string name = TRY(expand_word(w.text.substr(0, w.eq), vars, escape));
  if (name.empty()) return Error::invalid(cat("empty name in ", json_quote(w.text)));
  if (w.eq == std::string_view::npos) return std::make_pair(std::move(name), std::optional<std::string>());
  std::string value = TRY(expand_word(w.text.substr(w.eq + 1), vars, escape));
  return std::make_pair(std::move(name), std::optional<std::string>(std::move(value)));
}

}  // namespace

Result<std::optional<std::vector<std::string>>> parse_exec_form(std::string_view s) {
  using Maybe = std::optional<Argv>;
  s = trim_both(s);
  if (s.empty() || s.front() != '[') return Maybe();
  auto j = nlohmann::json::parse(s.begin(), s.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return Maybe();
  Argv argv;
  for (const auto& e : j) {
    if (!e.is_string())
      return Error::invalid(cat("the JSON array ", s, " holds a ", e.type_name(), ", not only strings"));
    argv.push_back(e.get<std::string>());
  }
  return Maybe(std::move(argv));
}

Result<Instruction> parse_instruction(std::string_view text, int line, char escape) {
  return parse_one(text, line, escape).context(cat("line ", line));
}

Result<Dockerfile> parse_dockerfile(std::string_view text) {
  if (starts_with(text, "\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte order mark
  std::vector<std::string_view> lines = split_lines(text);
  Directives directives;
  Dockerfile df;
  size_t i = 0;
  while (i < lines.size()) {
    int start = static_cast<int>(i) + 1;
    std::string_view line = trim_left(lines[i++]);
    TRYC(handle_directive(directives, line), cat("line ", start));
    if (line.empty() || line[0] == '#') continue;
    std::string joined;
    bool more = strip_continuation(line, directives.escape);
    join_piece(joined, line);
    while (more && i < lines.size()) {
      std::string_view next = lines[i++];
      std::string_view t = trim_left(next);
      if (t.empty() || t[0] == '#') continue;  // comment and empty lines inside a continued instruction
      more = strip_continuation(next, directives.escape);
      join_piece(joined, next);
    }
    if (trim_both(joined).empty()) continue;  // only escapes, e.g. a lone "\" on the last line
    df.instructions.push_back(TRY(parse_instruction(joined, start, directives.escape)));
  }
  df.escape = directives.escape;
  if (df.instructions.empty()) return Error::invalid("the Dockerfile has no instructions");
  const Instruction& first = df.instructions.front();
  if (first.keyword != "FROM" && first.keyword != "ARG")
    return Error::invalid(cat("line ", first.line, ": the first instruction must be FROM (or ARG), not ", first.keyword));
  return df;
}

Result<std::string> expand(std::string_view s, const Lookup& vars, char escape) {
  Sink sink = TRY(Lexer(s, vars, escape, Lexer::kRaw).run().context(cat("expand ", json_quote(s))));
  return std::move(sink.flat);
}

Result<std::vector<std::string>> words(std::string_view s, const Lookup& vars, char escape) {
  Sink sink = TRY(Lexer(s, vars, escape, Lexer::kShell).run().context(cat("expand ", json_quote(s))));
  return std::move(sink.words);
}

Result<std::vector<std::pair<std::string, std::string>>> key_values(std::string_view s, const Lookup& vars,
                                                                     bool allow_legacy, char escape) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<RawWord> raw = raw_words(s, escape);
  if (raw.empty()) return out;
  if (raw[0].eq == std::string_view::npos && allow_legacy) {  // NAME some value
    std::string name = TRY(expand_word(raw[0].text, vars, escape));
    if (name.empty()) return Error::invalid(cat("empty name in ", json_quote(s)));
    std::string_view rest = trim_both(s.substr(raw[0].end));
    if (rest.empty()) return Error::invalid(cat("no value for ", json_quote(name), ": write NAME=value or NAME value"));
    out.emplace_back(std::move(name), TRY(expand_word(rest, vars, escape)));
    return out;
  }
  for (const RawWord& w : raw) {
    if (w.eq == std::string_view::npos)
      return Error::invalid(cat(json_quote(w.text), " is not of the form NAME=value"));
    auto [name, value] = TRY(name_value(w, vars, escape));
    out.emplace_back(std::move(name), std::move(*value));
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::optional<std::string>>>> arg_values(std::string_view s,
                                                                                   const Lookup& vars,
                                                                                   char escape) {
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (const RawWord& w : raw_words(s, escape)) out.push_back(TRY(name_value(w, vars, escape)));
  return out;
}

}  // namespace vessel::image::build
