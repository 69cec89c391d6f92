// A small HTTP client over a unix socket for the `vessel vm` verbs: one
// request per connection, with a timeout on the whole exchange.
#pragma once

#include <string>

#include "common/error.h"
#include "vmm/api/http.h"

namespace vessel::vmm::api {

// Sends `method path` with a JSON `body` (may be empty) to the API at
// `socket_path`; returns the response (any status).
Result<HttpResponse> call(const std::string& socket_path, const std::string& method, const std::string& path,
                          const std::string& body = "", int timeout_ms = 10000);

// call(), then an Error with the fault_message for a status >= 300.
Result<HttpResponse> call_ok(const std::string& socket_path, const std::string& method, const std::string& path,
                             const std::string& body = "", int timeout_ms = 10000);

}  // namespace vessel::vmm::api
