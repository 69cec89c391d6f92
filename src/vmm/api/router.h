// Router: the VMM API as a table of (method, path pattern) -> handler.
//
// HOW TO ADD AN ENDPOINT (snapshot, migration, balloon ... only add rows):
//   1. Write a handler `HttpResponse h(const ApiCall& call)`; read the JSON
//      body with call.json() (a parse error is a 400 naming the position) and
//      fields with vmm/config/json_reader.h (errors name the field); return
//      no_content() (204, as Firecracker does for PUT/PATCH), json_ok(j) or
//      fault(400, "field: what is wrong").
//   2. Add the row where the Vmm registers its routes (instance/routes.cc),
//      or from your own file: `router.add("PUT", "/snapshot/create", h);`.
//      Path patterns are literal segments and {name} captures:
//      "/drives/{drive_id}" -> call.param("drive_id").
// The router answers 404 for an unknown path, 405 (with Allow) for a known
// path with another method, and turns a handler's Error into a 400.
// Handlers run on the API thread (the VMM's control loop): they may wait for
// the vCPUs (pause) but a vCPU never waits for them.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"
#include "vmm/api/http.h"

namespace vessel::vmm::api {

// One request as a handler sees it.
struct ApiCall {
  const HttpRequest& request;
  std::map<std::string, std::string> params;  // {name} captures of the path
  const std::string& param(const std::string& name) const;
  // The body as JSON (an empty body is an error naming the endpoint).
  Result<nlohmann::json> json() const;
};

using Handler = std::function<HttpResponse(const ApiCall& call)>;

// 204 No Content.
HttpResponse no_content();
// 200 with a JSON body.
HttpResponse json_ok(const nlohmann::json& j);
// 400 with the error's message.
HttpResponse bad_request(const Error& e);
// Runs `body`, a Status-returning callable: 204 on success, 400 with the message on error.
template <class F>
HttpResponse status_call(F&& body) {
  Status s = body();
  return s ? no_content() : bad_request(s.error());
}

class Router {
 public:
  // Adds a row; `pattern` is "/a/{x}/b". A later row for the same method and pattern replaces it.
  void add(std::string method, std::string pattern, Handler h);
  // Finds the row and calls it.
  HttpResponse dispatch(const HttpRequest& req) const;
  // "METHOD pattern" of every row (for GET / listings and tests).
  std::vector<std::string> rows() const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  static std::vector<std::string> split_path(const std::string& path);
  static bool match(const Route& r, const std::vector<std::string>& segs, std::map<std::string, std::string>& params);
  std::vector<Route> routes_;
};

}  // namespace vessel::vmm::api
