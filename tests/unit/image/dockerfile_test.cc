#include "image/build/dockerfile.h"

#include <gtest/gtest.h>

#include <map>

#include "unit/corpus.h"

namespace vessel::image::build {
namespace {

using Strings = std::vector<std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// The variables of the expansion tests: EMPTY is set and empty, UNSET is not set.
Lookup vars() {
  return [](const std::string& name) -> std::optional<std::string> {
    static const std::map<std::string, std::string> kVars = {
        {"A", "alpha"}, {"SP", "a b"}, {"EMPTY", ""}, {"PATH", "/usr/local/bin:/usr/bin:/bin"},
        {"FILE", "archive.tar.gz"}, {"Q", "it's"}, {"STAR", "*"}, {"_x1", "under"}};
    auto it = kVars.find(name);
    if (it == kVars.end()) return std::nullopt;
    return it->second;
  };
}

Dockerfile parse_ok(std::string_view text) {
  auto df = parse_dockerfile(text);
  EXPECT_TRUE(df.ok()) << (df.ok() ? "" : df.error().message());
  return df.ok() ? *std::move(df) : Dockerfile{};
}

std::string parse_error(std::string_view text) {
  auto df = parse_dockerfile(text);
  EXPECT_FALSE(df.ok()) << "parsed: " << text;
  return df.ok() ? "" : df.error().message();
}

std::string expand_ok(std::string_view s, char escape = '\\') {
  auto r = expand(s, vars(), escape);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : "<error>";
}

std::string expand_error(std::string_view s) {
  auto r = expand(s, vars());
  EXPECT_FALSE(r.ok()) << s << " gave " << (r.ok() ? *r : "");
  return r.ok() ? "" : r.error().message();
}

Strings words_ok(std::string_view s, char escape = '\\') {
  auto r = words(s, vars(), escape);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : Strings{"<error>"};
}

#define EXPECT_CONTAINS(haystack, needle) EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

// ----------------------------------------------------------------------------------------------
// parse_dockerfile

TEST(Dockerfile, ParsesInstructionsWithLinesAndUpperCaseKeywords) {
  auto df = parse_ok("# a comment\nfrom alpine:3.19 AS build\n\nRun  echo hi  \nworkdir /src\n");
  ASSERT_EQ(df.instructions.size(), 3u);
  EXPECT_EQ(df.escape, '\\');
  EXPECT_EQ(df.instructions[0].keyword, "FROM");
  EXPECT_EQ(df.instructions[0].args, "alpine:3.19 AS build");
  EXPECT_EQ(df.instructions[0].line, 2);
  EXPECT_EQ(df.instructions[1].keyword, "RUN");
  EXPECT_EQ(df.instructions[1].args, "echo hi");
  EXPECT_EQ(df.instructions[1].original, "Run  echo hi");
  EXPECT_EQ(df.instructions[1].line, 4);
  EXPECT_EQ(df.instructions[2].keyword, "WORKDIR");
  EXPECT_EQ(df.instructions[2].line, 5);
}

TEST(Dockerfile, AcceptsEveryKnownKeyword) {
  auto df = parse_ok(
      "FROM a\nRUN x\nCMD x\nLABEL a=b\nMAINTAINER me\nEXPOSE 80\nENV A=b\nADD a b\nCOPY a b\n"
      "ENTRYPOINT x\nVOLUME /v\nUSER u\nWORKDIR /w\nARG A\nONBUILD RUN x\nSTOPSIGNAL SIGTERM\n"
      "HEALTHCHECK NONE\nSHELL [\"/bin/sh\", \"-c\"]\n");
  EXPECT_EQ(df.instructions.size(), 18u);
}

TEST(Dockerfile, CrLfLineEndingsAndByteOrderMark) {
  auto df = parse_ok("\xEF\xBB\xBF" "FROM a\r\nRUN b \\\r\n  c\r\n");
  ASSERT_EQ(df.instructions.size(), 2u);
  EXPECT_EQ(df.instructions[0].args, "a");
  EXPECT_EQ(df.instructions[1].args, "b c");
}

TEST(Dockerfile, ContinuationJoinsWithOneSpace) {
  auto df = parse_ok("FROM a\nRUN apt-get update && \\\n    apt-get install -y \\   \n\tcurl\nUSER x\n");
  ASSERT_EQ(df.instructions.size(), 3u);
  EXPECT_EQ(df.instructions[1].args, "apt-get update && apt-get install -y curl");
  EXPECT_EQ(df.instructions[1].original, "RUN apt-get update && apt-get install -y curl");
  EXPECT_EQ(df.instructions[1].line, 2);
  EXPECT_EQ(df.instructions[2].line, 5);
}

TEST(Dockerfile, ContinuationWithoutBlanksJoinsDirectly) {
  auto df = parse_ok("FROM a\nRUN wget https://example.com/long/\\\npath\n");
  EXPECT_EQ(df.instructions[1].args, "wget https://example.com/long/path");
}

TEST(Dockerfile, CommentAndEmptyLinesInsideContinuationAreDropped) {
  auto df = parse_ok(
      "FROM a\n"
      "RUN one \\\n"
      "# a comment inside\n"
      "    # an indented comment\n"
      "\n"
      "  two \\\n"
      "  three # not a comment: not at the start of the line\n"
      "USER u\n");
  ASSERT_EQ(df.instructions.size(), 3u);
  EXPECT_EQ(df.instructions[1].args, "one two three # not a comment: not at the start of the line");
  EXPECT_EQ(df.instructions[2].line, 8);
}

TEST(Dockerfile, ContinuationAtEndOfFile) {
  auto df = parse_ok("FROM a\nRUN x \\\n");
  EXPECT_EQ(df.instructions[1].args, "x");
  auto lone = parse_ok("FROM a\n\\\n");
  EXPECT_EQ(lone.instructions.size(), 1u);
}

TEST(Dockerfile, DoubleEscapeAtEndStillContinues) {
  // As Docker: the last escape character continues the line, whatever precedes it.
  auto df = parse_ok("FROM a\nRUN echo \\\\\nUSER u\n");
  ASSERT_EQ(df.instructions.size(), 2u);
  EXPECT_EQ(df.instructions[1].args, "echo \\USER u");  // no blank where they meet: none added
}

TEST(Dockerfile, EscapeDirectiveBacktick) {
  auto df = parse_ok(
      "# escape=`\n"
      "FROM mcr.microsoft.com/windows/servercore\n"
      "COPY testfile.txt c:\\\n"
      "RUN dir c:\\ `\n"
      "    && echo done\n");
  EXPECT_EQ(df.escape, '`');
  ASSERT_EQ(df.instructions.size(), 3u);
  EXPECT_EQ(df.instructions[1].args, "testfile.txt c:\\");
  EXPECT_EQ(df.instructions[2].args, "dir c:\\ && echo done");
}

TEST(Dockerfile, DirectiveSpellings) {
  EXPECT_EQ(parse_ok("#escape=`\nFROM a\n").escape, '`');
  EXPECT_EQ(parse_ok("  #  ESCAPE  =  `  \nFROM a\n").escape, '`');
  EXPECT_EQ(parse_ok("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n").escape, '`');
  EXPECT_EQ(parse_ok("# escape=\\\nFROM a\n").escape, '\\');
}

TEST(Dockerfile, DirectivesOnlyBeforeAnythingElse) {
  // After a comment, a blank line or an instruction, `# escape=` is a plain comment.
  EXPECT_EQ(parse_ok("# hello\n# escape=`\nFROM a\n").escape, '\\');
  EXPECT_EQ(parse_ok("\n# escape=`\nFROM a\n").escape, '\\');
  EXPECT_EQ(parse_ok("FROM a\n# escape=`\nRUN b\n").escape, '\\');
  // An unknown directive is a comment, and ends the directives.
  EXPECT_EQ(parse_ok("# foo=bar\n# escape=`\nFROM a\n").escape, '\\');
}

TEST(Dockerfile, BadDirectives) {
  EXPECT_EQ(parse_error("# escape=x\nFROM a\n"), "line 1: escape parser directive: \"x\" is neither \\ nor `");
  EXPECT_EQ(parse_error("# escape=`\n# escape=`\nFROM a\n"), "line 2: a second \"escape\" parser directive");
}

TEST(Dockerfile, EmptyRecipe) {
  EXPECT_EQ(parse_error(""), "the Dockerfile has no instructions");
  EXPECT_EQ(parse_error("# only a comment\n\n   \n"), "the Dockerfile has no instructions");
}

TEST(Dockerfile, FirstInstructionMustBeFromOrArg) {
  EXPECT_EQ(parse_error("\nRUN x\nFROM a\n"), "line 2: the first instruction must be FROM (or ARG), not RUN");
  auto df = parse_ok("ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG}\n");
  ASSERT_EQ(df.instructions.size(), 3u);
  EXPECT_EQ(df.instructions[0].keyword, "ARG");
  EXPECT_EQ(df.instructions[2].args, "${BASE}:${TAG}");
}

TEST(Dockerfile, UnknownInstructionNamesLine) {
  EXPECT_EQ(parse_error("FROM a\n\nFOO bar\n"), "line 3: unknown instruction \"FOO\"");
}

TEST(Dockerfile, InstructionWithoutArgumentsIsAnError) {
  EXPECT_EQ(parse_error("FROM a\nRUN\n"), "line 2: RUN needs arguments");
  EXPECT_EQ(parse_error("FROM a\nCOPY --from=x\n"), "line 2: COPY needs arguments");
}

TEST(Dockerfile, ErrorInContinuedInstructionNamesItsFirstLine) {
  EXPECT_EQ(parse_error("FROM a\nBOGUS \\\n  x\n"), "line 2: unknown instruction \"BOGUS\"");
}

TEST(Dockerfile, Flags) {
  auto df = parse_ok(
      "FROM --platform=linux/amd64 alpine\n"
      "COPY --from=build --chown=1000:1000 --link /out /app\n"
      "RUN --mount=type=cache,target=/root/.cache \\\n    --network=none make\n"
      "RUN --mount=type=bind,source=\"/a b\",target=/c ls\n"
      "RUN -- --not-a-flag\n"
      "RUN echo --not-a-flag-either\n");
  const auto& from = df.instructions[0];
  ASSERT_EQ(from.flags.size(), 1u);
  EXPECT_EQ(from.flags[0].name, "platform");
  EXPECT_EQ(from.flags[0].value, "linux/amd64");
  EXPECT_EQ(from.args, "alpine");

  const auto& copy = df.instructions[1];
  ASSERT_EQ(copy.flags.size(), 3u);
  EXPECT_EQ(copy.flags[0].name, "from");
  EXPECT_EQ(copy.flags[0].value, "build");
  EXPECT_EQ(copy.flags[1].name, "chown");
  EXPECT_EQ(copy.flags[1].value, "1000:1000");
  EXPECT_EQ(copy.flags[2].name, "link");
  EXPECT_EQ(copy.flags[2].value, "");
  EXPECT_EQ(copy.args, "/out /app");
  EXPECT_EQ(copy.original, "COPY --from=build --chown=1000:1000 --link /out /app");

  const auto& run = df.instructions[2];
  ASSERT_EQ(run.flags.size(), 2u);
  EXPECT_EQ(run.flags[0].value, "type=cache,target=/root/.cache");
  EXPECT_EQ(run.flags[1].name, "network");
  EXPECT_EQ(run.args, "make");

  EXPECT_EQ(df.instructions[3].flags[0].value, "type=bind,source=/a b,target=/c");
  EXPECT_EQ(df.instructions[3].args, "ls");
  EXPECT_TRUE(df.instructions[4].flags.empty());
  EXPECT_EQ(df.instructions[4].args, "--not-a-flag");
  EXPECT_TRUE(df.instructions[5].flags.empty());
  EXPECT_EQ(df.instructions[5].args, "echo --not-a-flag-either");
}

TEST(Dockerfile, BadFlags) {
  EXPECT_EQ(parse_error("FROM a\nRUN --=x ls\n"), "line 2: RUN: invalid flag \"--=x\"");
  EXPECT_EQ(parse_error("FROM a\nRUN --mount=\"x ls\n"), "line 2: RUN: unterminated quote in flag \"--mount=\\\"x ls\"");
}

TEST(Dockerfile, ExecForm) {
  auto df = parse_ok(
      "FROM a\n"
      "CMD [\"nginx\", \"-g\", \"daemon off;\"]\n"
      "ENTRYPOINT [ \"/bin/tini\" , \"--\" ]\n"
      "RUN [\"sh\", \"-c\", \"echo \\\"quoted\\\" \\u00e9\"]\n"
      "CMD []\n"
      "COPY [\"a b\", \"/dst/\"]\n"
      "VOLUME [\"/data\"]\n");
  ASSERT_EQ(df.instructions.size(), 7u);
  EXPECT_EQ(*df.instructions[1].exec, (Strings{"nginx", "-g", "daemon off;"}));
  EXPECT_EQ(*df.instructions[2].exec, (Strings{"/bin/tini", "--"}));
  EXPECT_EQ(*df.instructions[3].exec, (Strings{"sh", "-c", "echo \"quoted\" \xc3\xa9"}));
  ASSERT_TRUE(df.instructions[4].exec);
  EXPECT_TRUE(df.instructions[4].exec->empty());
  EXPECT_EQ(*df.instructions[5].exec, (Strings{"a b", "/dst/"}));
  EXPECT_EQ(*df.instructions[6].exec, (Strings{"/data"}));
  EXPECT_EQ(df.instructions[1].args, "[\"nginx\", \"-g\", \"daemon off;\"]");
}

TEST(Dockerfile, ShellFormWhenNotJson) {
  auto df = parse_ok(
      "FROM a\n"
      "CMD [not json\n"
      "CMD ['single', 'quotes']\n"
      "RUN [ -f /etc/os-release ] && cat /etc/os-release\n"
      "CMD echo [\"x\"]\n"
      "CMD [\"a\"] trailing\n");
  for (size_t i = 1; i < df.instructions.size(); ++i) EXPECT_FALSE(df.instructions[i].exec) << i;
  EXPECT_EQ(df.instructions[1].args, "[not json");
}

TEST(Dockerfile, ExecFormOnlyForTheInstructionsThatHaveIt) {
  auto df = parse_ok("FROM a\nUSER [\"x\"]\nWORKDIR [\"/w\"]\n");
  EXPECT_FALSE(df.instructions[1].exec);
  EXPECT_FALSE(df.instructions[2].exec);
}

TEST(Dockerfile, JsonArrayOfNonStringsIsAnError) {
  EXPECT_CONTAINS(parse_error("FROM a\nCMD [\"a\", 1]\n"), "line 2: CMD: the JSON array");
  EXPECT_CONTAINS(parse_error("FROM a\nCMD [\"a\", 1]\n"), "not only strings");
}

TEST(Dockerfile, ShellNeedsExecForm) {
  EXPECT_CONTAINS(parse_error("FROM a\nSHELL /bin/bash -c\n"), "line 2: SHELL needs the exec form");
  EXPECT_EQ(*parse_ok("FROM a\nSHELL [\"/bin/bash\", \"-c\"]\n").instructions[1].exec, (Strings{"/bin/bash", "-c"}));
}

TEST(Dockerfile, HeredocsAreRejectedWithTheirLine) {
  EXPECT_EQ(parse_error("FROM a\nRUN <<EOF\napt-get update\nEOF\n"), "line 2: RUN: heredocs (<<EOF) are not supported");
  EXPECT_EQ(parse_error("FROM a\n\nRUN cat <<-'END' > /x\nEND\n"), "line 3: RUN: heredocs (<<EOF) are not supported");
  EXPECT_EQ(parse_error("FROM a\nCOPY <<EOF /etc/x\nhi\nEOF\n"), "line 2: COPY: heredocs (<<EOF) are not supported");
  // Not heredocs: a here-string, a quoted "<<", a shift inside arithmetic, the exec form.
  parse_ok("FROM a\nRUN cat <<< hello\nRUN echo \"<<EOF\"\nRUN echo $((1<<2))\nRUN [\"cat\", \"<<EOF\"]\n");
}

TEST(Dockerfile, Onbuild) {
  auto df = parse_ok("FROM a\nONBUILD RUN --mount=type=cache,target=/c make\n");
  EXPECT_EQ(df.instructions[1].keyword, "ONBUILD");
  EXPECT_EQ(df.instructions[1].args, "RUN --mount=type=cache,target=/c make");
  auto trigger = parse_instruction(df.instructions[1].args, df.instructions[1].line, df.escape);
  ASSERT_TRUE(trigger.ok());
  EXPECT_EQ(trigger->keyword, "RUN");
  EXPECT_EQ(trigger->flags[0].name, "mount");
  EXPECT_EQ(trigger->args, "make");

  EXPECT_EQ(parse_error("FROM a\nONBUILD FROM b\n"), "line 2: ONBUILD FROM is not allowed");
  EXPECT_EQ(parse_error("FROM a\nONBUILD onbuild RUN x\n"), "line 2: ONBUILD ONBUILD is not allowed");
  EXPECT_EQ(parse_error("FROM a\nONBUILD FOO x\n"), "line 2: ONBUILD: unknown instruction \"FOO\"");
  std::string many = "FROM a\n";
  for (int i = 0; i < 200000; ++i) many += "ONBUILD ";
  EXPECT_EQ(parse_error(many + "RUN x\n"), "line 2: ONBUILD ONBUILD is not allowed");  // no deep recursion
}

TEST(Dockerfile, ParseInstructionNamesItsLine) {
  auto r = parse_instruction("NOPE x", 7);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "line 7: unknown instruction \"NOPE\"");
}

TEST(Dockerfile, ParseExecForm) {
  auto shell = parse_exec_form("curl -f http://localhost/");
  ASSERT_TRUE(shell.ok());
  EXPECT_FALSE(*shell);
  auto exec = parse_exec_form(" [\"curl\", \"-f\"] ");
  ASSERT_TRUE(exec.ok());
  EXPECT_EQ(**exec, (Strings{"curl", "-f"}));
  EXPECT_FALSE(parse_exec_form("[\"a\", null]").ok());
  EXPECT_FALSE(*parse_exec_form("{\"a\": 1}"));
}

// ----------------------------------------------------------------------------------------------
// expand

TEST(DockerfileExpand, Variables) {
  EXPECT_EQ(expand_ok("$A"), "alpha");
  EXPECT_EQ(expand_ok("${A}"), "alpha");
  EXPECT_EQ(expand_ok("x${A}y $A-$A"), "xalphay alpha-alpha");
  EXPECT_EQ(expand_ok("$UNSET|${UNSET}|$EMPTY"), "||");
  EXPECT_EQ(expand_ok("$_x1"), "under");
  EXPECT_EQ(expand_ok("$Ab"), "");  // the name is "Ab"
  EXPECT_EQ(expand_ok("cost: 5$ $ $."), "cost: 5$ $ $.");
  EXPECT_EQ(expand_ok("${PATH}:/opt"), "/usr/local/bin:/usr/bin:/bin:/opt");
}

TEST(DockerfileExpand, EscapedDollarAndQuotesKept) {
  EXPECT_EQ(expand_ok("\\$A"), "$A");
  EXPECT_EQ(expand_ok("\\${A}"), "${A}");
  EXPECT_EQ(expand_ok("'$A' \"$A\""), "'alpha' \"alpha\"");
  EXPECT_EQ(expand_ok("C:\\dir\\file"), "C:\\dir\\file");
  EXPECT_EQ(expand_ok("trailing\\"), "trailing\\");
  EXPECT_EQ(expand_ok("\\\\$A"), "\\\\alpha");
  EXPECT_EQ(expand_ok("`$A $A", '`'), "$A alpha");
}

TEST(DockerfileExpand, DefaultModifiers) {
  EXPECT_EQ(expand_ok("${UNSET:-def}"), "def");
  EXPECT_EQ(expand_ok("${EMPTY:-def}"), "def");
  EXPECT_EQ(expand_ok("${A:-def}"), "alpha");
  EXPECT_EQ(expand_ok("${UNSET-def}"), "def");
  EXPECT_EQ(expand_ok("${EMPTY-def}"), "");
  EXPECT_EQ(expand_ok("${A-def}"), "alpha");
  EXPECT_EQ(expand_ok("${UNSET:-}"), "");
  EXPECT_EQ(expand_ok("${UNSET:-$A/x}"), "alpha/x");
  EXPECT_EQ(expand_ok("${UNSET:-${EMPTY:-deep}}"), "deep");
  EXPECT_EQ(expand_ok("${UNSET:-a\\}b}"), "a}b");
}

TEST(DockerfileExpand, AlternativeModifiers) {
  EXPECT_EQ(expand_ok("${A:+alt}"), "alt");
  EXPECT_EQ(expand_ok("${EMPTY:+alt}"), "");
  EXPECT_EQ(expand_ok("${UNSET:+alt}"), "");
  EXPECT_EQ(expand_ok("${A+alt}"), "alt");
  EXPECT_EQ(expand_ok("${EMPTY+alt}"), "alt");
  EXPECT_EQ(expand_ok("${UNSET+alt}"), "");
}

TEST(DockerfileExpand, RequiredModifiers) {
  EXPECT_EQ(expand_ok("${A:?must be set}"), "alpha");
  EXPECT_EQ(expand_ok("${EMPTY?x}"), "");
  EXPECT_EQ(expand_error("${UNSET:?set UNSET to the version}"),
            "expand \"${UNSET:?set UNSET to the version}\": UNSET: set UNSET to the version");
  EXPECT_EQ(expand_error("${EMPTY:?}"), "expand \"${EMPTY:?}\": EMPTY: is not allowed to be empty");
  EXPECT_EQ(expand_error("${UNSET?}"), "expand \"${UNSET?}\": UNSET: is not allowed to be unset");
}

TEST(DockerfileExpand, PatternModifiers) {
  EXPECT_EQ(expand_ok("${FILE#*.}"), "tar.gz");
  EXPECT_EQ(expand_ok("${FILE##*.}"), "gz");
  EXPECT_EQ(expand_ok("${FILE%.*}"), "archive.tar");
  EXPECT_EQ(expand_ok("${FILE%%.*}"), "archive");
  EXPECT_EQ(expand_ok("${FILE#nomatch}"), "archive.tar.gz");
  EXPECT_EQ(expand_ok("${FILE#a?c}"), "hive.tar.gz");
  EXPECT_EQ(expand_ok("${STAR#\\*}"), "");
  EXPECT_EQ(expand_ok("${FILE/tar/zip}"), "archive.zip.gz");
  EXPECT_EQ(expand_ok("${PATH//:/ }"), "/usr/local/bin /usr/bin /bin");
  EXPECT_EQ(expand_ok("${PATH/\\/usr/}"), "/local/bin:/usr/bin:/bin");
  EXPECT_EQ(expand_ok("${FILE/a*r/X}"), "X.gz");  // the longest match
  EXPECT_EQ(expand_ok("${UNSET/a/b}"), "");
}

TEST(DockerfileExpand, Errors) {
  EXPECT_EQ(expand_error("${A"), "expand \"${A\": missing '}' after ${A");
  EXPECT_EQ(expand_error("${"), "expand \"${\": missing '}'");
  EXPECT_EQ(expand_error("${}"), "expand \"${}\": bad substitution ${}…");
  EXPECT_EQ(expand_error("${:-x}"), "expand \"${:-x}\": bad substitution ${:…");
  EXPECT_EQ(expand_error("${A:-x"), "expand \"${A:-x\": ${A:-…}: missing '}'");
  EXPECT_EQ(expand_error("${A:=x}"), "expand \"${A:=x}\": unsupported modifier \":=\" in ${A…}");
  EXPECT_EQ(expand_error("${A^^}"), "expand \"${A^^}\": unsupported modifier \"^\" in ${A…}");
  EXPECT_EQ(expand_error("${A:1:2}"), "expand \"${A:1:2}\": unsupported modifier \":1\" in ${A…}");
  EXPECT_EQ(expand_error("${A/x}"), "expand \"${A/x}\": ${A/…}: missing '/'");
}

TEST(DockerfileExpand, DeepNestingIsAnErrorNotACrash) {
  std::string s;
  for (int i = 0; i < 1000; ++i) s += "${U:-";
  s += "x";
  for (int i = 0; i < 1000; ++i) s += "}";
  EXPECT_CONTAINS(expand_error(s), "nested too deeply");
}

TEST(DockerfileExpand, EmptyLookup) {
  auto r = expand("${X:-d}$Y", Lookup());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "d");
}

// ----------------------------------------------------------------------------------------------
// words

TEST(DockerfileWords, SplitsAtWhitespace) {
  EXPECT_EQ(words_ok("  a  b\tc\n d "), (Strings{"a", "b", "c", "d"}));
  EXPECT_EQ(words_ok(""), Strings{});
  EXPECT_EQ(words_ok("   "), Strings{});
}

TEST(DockerfileWords, Quotes) {
  EXPECT_EQ(words_ok("'a b' \"c d\" e'f g'h"), (Strings{"a b", "c d", "ef gh"}));
  EXPECT_EQ(words_ok("'$A' \"$A\" $A"), (Strings{"$A", "alpha", "alpha"}));
  EXPECT_EQ(words_ok("\"it's\" 'say \"hi\"'"), (Strings{"it's", "say \"hi\""}));
  EXPECT_EQ(words_ok("a '' \"\" b"), (Strings{"a", "", "", "b"}));
}

TEST(DockerfileWords, EscapeOutsideQuotes) {
  EXPECT_EQ(words_ok("a\\ b c\\\"d \\$A \\\\"), (Strings{"a b", "c\"d", "$A", "\\"}));
  EXPECT_EQ(words_ok("x\\"), (Strings{"x"}));  // a trailing escape is dropped
}

TEST(DockerfileWords, EscapeInsideDoubleQuotesOnlyForQuoteDollarAndItself) {
  EXPECT_EQ(words_ok("\"a\\\"b\" \"\\$A\" \"c\\\\d\" \"e\\nf\""), (Strings{"a\"b", "$A", "c\\d", "e\\nf"}));
  EXPECT_EQ(words_ok("'a\\'"), (Strings{"a\\"}));  // nothing escapes inside '…'
}

TEST(DockerfileWords, BacktickEscape) {
  EXPECT_EQ(words_ok("C:\\dir a` b \"q`\"q\" `$A", '`'), (Strings{"C:\\dir", "a b", "q\"q", "$A"}));
}

TEST(DockerfileWords, UnquotedExpansionIsSplit) {
  EXPECT_EQ(words_ok("$SP"), (Strings{"a", "b"}));
  EXPECT_EQ(words_ok("x$SP"), (Strings{"xa", "b"}));
  EXPECT_EQ(words_ok("\"$SP\""), (Strings{"a b"}));
  EXPECT_EQ(words_ok("$EMPTY $UNSET z"), (Strings{"z"}));
  EXPECT_EQ(words_ok("\"$Q\""), (Strings{"it's"}));
}

TEST(DockerfileWords, ModifiersWithQuotes) {
  EXPECT_EQ(words_ok("\"${UNSET:-a b}\""), (Strings{"a b"}));
  EXPECT_EQ(words_ok("${UNSET:-'x'}"), (Strings{"x"}));
  EXPECT_EQ(words_ok("${FILE%\".gz\"}"), (Strings{"archive.tar"}));
  EXPECT_EQ(words_ok("${STAR#\"*\"}x"), (Strings{"x"}));
  EXPECT_EQ(words_ok("${FILE#'*'}"), (Strings{"archive.tar.gz"}));  // a quoted '*' is literal
}

TEST(DockerfileWords, UnterminatedQuotes) {
  auto single = words("echo 'abc", vars());
  ASSERT_FALSE(single.ok());
  EXPECT_EQ(single.error().message(), "expand \"echo 'abc\": unterminated single quote");
  auto dbl = words("echo \"abc\\\"", vars());
  ASSERT_FALSE(dbl.ok());
  EXPECT_EQ(dbl.error().message(), "expand \"echo \\\"abc\\\\\\\"\": unterminated double quote");
}

// ----------------------------------------------------------------------------------------------
// key_values

Pairs kv_ok(std::string_view s, bool legacy = true, char escape = '\\') {
  auto r = key_values(s, vars(), legacy, escape);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : Pairs{};
}

std::string kv_error(std::string_view s, bool legacy = true) {
  auto r = key_values(s, vars(), legacy);
  EXPECT_FALSE(r.ok()) << s;
  return r.ok() ? "" : r.error().message();
}

TEST(DockerfileKeyValues, NameEqualsValueForm) {
  EXPECT_EQ(kv_ok("A=1 B='two words' C=\"x $A\" D= E=a=b"),
            (Pairs{{"A", "1"}, {"B", "two words"}, {"C", "x alpha"}, {"D", ""}, {"E", "a=b"}}));
  EXPECT_EQ(kv_ok("PATH=/opt/bin:$PATH"), (Pairs{{"PATH", "/opt/bin:/usr/local/bin:/usr/bin:/bin"}}));
  EXPECT_EQ(kv_ok("X=a\\ b Y=\\$A"), (Pairs{{"X", "a b"}, {"Y", "$A"}}));
  EXPECT_EQ(kv_ok("\"com.example.label\"=\"v\""), (Pairs{{"com.example.label", "v"}}));
  EXPECT_EQ(kv_ok(""), Pairs{});
}

TEST(DockerfileKeyValues, ValuesAreExpandedAsOneWord) {
  EXPECT_EQ(kv_ok("V=$SP"), (Pairs{{"V", "a b"}}));
  EXPECT_EQ(kv_ok("V=${UNSET:-x y} W=1"), (Pairs{{"V", "x y"}, {"W", "1"}}));
}

TEST(DockerfileKeyValues, LegacyForm) {
  EXPECT_EQ(kv_ok("MY_VAR some value  with  spaces"), (Pairs{{"MY_VAR", "some value  with  spaces"}}));
  EXPECT_EQ(kv_ok("V \"quoted value\""), (Pairs{{"V", "quoted value"}}));
  EXPECT_EQ(kv_ok("V $A=x"), (Pairs{{"V", "alpha=x"}}));
  EXPECT_EQ(kv_error("ONLY_NAME"), "no value for \"ONLY_NAME\": write NAME=value or NAME value");
}

TEST(DockerfileKeyValues, LegacyFormNotAllowed) {
  EXPECT_EQ(kv_error("MY_VAR value", false), "\"MY_VAR\" is not of the form NAME=value");
}

TEST(DockerfileKeyValues, WordWithoutEqualsInNewForm) {
  EXPECT_EQ(kv_error("A=1 B C=3"), "\"B\" is not of the form NAME=value");
  EXPECT_EQ(kv_error("A=1 =2"), "empty name in \"=2\"");
  EXPECT_EQ(kv_error("A='x"), "expand \"'x\": unterminated single quote");
}

TEST(DockerfileArgValues, NamesWithAndWithoutDefaults) {
  using Args = std::vector<std::pair<std::string, std::optional<std::string>>>;
  auto r = arg_values("TARGETARCH VERSION=1.2 EMPTY= V=$SP \"Q\"='a b'", vars());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, (Args{{"TARGETARCH", std::nullopt}, {"VERSION", "1.2"}, {"EMPTY", ""}, {"V", "a b"}, {"Q", "a b"}}));
  auto bad = arg_values("A =x", vars());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "empty name in \"=x\"");
}

TEST(DockerfileKeyValues, BacktickEscape) {
  EXPECT_EQ(kv_ok("P=C:\\dir Q=a` b", true, '`'), (Pairs{{"P", "C:\\dir"}, {"Q", "a b"}}));
}

// ----------------------------------------------------------------------------------------------
// The fuzzer's seeds are realistic Dockerfiles: each parses, and its arguments expand.

TEST(DockerfileCorpus, SeedsParseAndExpand) {
  int files = 0;
  for (auto& [name, text] : vessel::testing::corpus_files("dockerfile")) {
    ++files;
    auto df = parse_dockerfile(text);
    ASSERT_TRUE(df.ok()) << name << ": " << df.error().message();
    for (const auto& in : df->instructions) {
      if (in.keyword == "ENV" || in.keyword == "LABEL") {
        auto kv = key_values(in.args, vars(), true, df->escape);
        EXPECT_TRUE(kv.ok()) << name << " line " << in.line << ": " << kv.error().message();
      } else if (in.keyword == "ARG") {
        auto args = arg_values(in.args, vars(), df->escape);
        EXPECT_TRUE(args.ok()) << name << " line " << in.line << ": " << args.error().message();
      } else if (in.keyword == "FROM" || in.keyword == "WORKDIR" || in.keyword == "USER" || (in.keyword == "COPY" && !in.exec)) {
        auto w = words(in.args, vars(), df->escape);
        EXPECT_TRUE(w.ok()) << name << " line " << in.line << ": " << w.error().message();
      }
    }
  }
  EXPECT_GE(files, 4);
}

}  // namespace
}  // namespace vessel::image::build
