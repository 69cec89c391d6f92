// libFuzzer target: Dockerfile text into the recipe parser, then every instruction's
// arguments and flags through expand(), words(), key_values() (both forms) and arg_values(). Any input
// must give instructions or an Error: no crash, no exception, no hang.
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DVESSEL_FUZZ=ON && cmake --build build-fuzz --target dockerfile_fuzz
//   build-fuzz/dockerfile_fuzz /tmp/dockerfile-corpus tests/fuzz/corpus/dockerfile -max_total_time=60
// (libFuzzer writes what it finds into the first directory: keep the seed corpus second.)
#include <cstdint>
#include <optional>
#include <string>

#include "image/build/dockerfile.h"

namespace build = vessel::image::build;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto df = build::parse_dockerfile(text);
  if (!df) return 0;
  // A fixed value for every variable (with blanks and pattern characters), except the two names
  // that reach the unset and empty branches of the ${…} modifiers.
  build::Lookup vars = [](const std::string& name) -> std::optional<std::string> {
    if (name == "UNSET") return std::nullopt;
    if (name == "EMPTY") return std::string();
    return std::string("v a*l/u?e");
  };
  char esc = df->escape;
  for (const auto& in : df->instructions) {
    (void)build::expand(in.args, vars, esc);
    (void)build::words(in.args, vars, esc);
    (void)build::key_values(in.args, vars, /*allow_legacy=*/true, esc);
    (void)build::key_values(in.args, vars, /*allow_legacy=*/false, esc);
    (void)build::arg_values(in.args, vars, esc);
    for (const auto& f : in.flags) (void)build::words(f.value, vars, esc);
    if (in.exec)
      for (const auto& arg : *in.exec) (void)build::expand(arg, vars, esc);
    if (in.keyword == "ONBUILD") (void)build::parse_instruction(in.args, in.line, esc);
    if (in.keyword == "HEALTHCHECK") {  // "CMD [\"curl\", …]": the exec form follows the first word
      size_t space = in.args.find(' ');
      if (space != std::string::npos) (void)build::parse_exec_form(std::string_view(in.args).substr(space));
    }
  }
  return 0;
}
