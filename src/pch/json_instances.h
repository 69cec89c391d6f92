// Build speed only (scripts/build.sh release, -DVESSEL_PCH=ON): part of the precompiled
// header, so every translation unit sees it first. nlohmann/json's parser, lexer and
// serializer are templates that every unit calling json::parse or dump() would instantiate
// and compile again at -O2 (about 3 CPU-seconds and 80 KB of code per unit, folded by the
// linker); these declarations say they are compiled once, in json_instances.cc.
// No source file includes this header: without VESSEL_PCH each unit instantiates its own.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

// The names are nlohmann's internals (stable in 3.10 and 3.11, the versions Debian and
// CMakeLists.txt accept); other versions compile as without this header.
#if NLOHMANN_JSON_VERSION_MAJOR == 3 && NLOHMANN_JSON_VERSION_MINOR >= 10 && NLOHMANN_JSON_VERSION_MINOR <= 11
#define VESSEL_JSON_INSTANCES 1
namespace nlohmann::detail {
// json::parse(const std::string&) and json::parse(const char*).
using vessel_string_input = iterator_input_adapter<std::string::const_iterator>;
using vessel_chars_input = iterator_input_adapter<const char*>;
extern template class parser<json, vessel_string_input>;
extern template class lexer<json, vessel_string_input>;
extern template class parser<json, vessel_chars_input>;
extern template class lexer<json, vessel_chars_input>;
// json::dump() and ordered_json::dump().
extern template class serializer<json>;
extern template class serializer<ordered_json>;
}  // namespace nlohmann::detail
#endif
