// The one compiled copy of what json_instances.h declares extern (VESSEL_PCH builds).
#include "pch/json_instances.h"

#ifdef VESSEL_JSON_INSTANCES
namespace nlohmann::detail {
template class parser<json, vessel_string_input>;
template class lexer<json, vessel_string_input>;
template class parser<json, vessel_chars_input>;
template class lexer<json, vessel_chars_input>;
template class serializer<json>;
template class serializer<ordered_json>;
}  // namespace nlohmann::detail
#endif
