#include "vmm/api/router.h"

#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "vmm/config/vm_config.h"

namespace vessel::vmm::api {

const std::string& ApiCall::param(const std::string& name) const {
  static const std::string empty;
  auto it = params.find(name);
  return it == params.end() ? empty : it->second;
}

Result<nlohmann::json> ApiCall::json() const {
  if (request.body.empty()) return Error::invalid(cat(request.method, " ", request.path, ": the request has no JSON body"));
  return parse_json(request.body);
}

HttpResponse no_content() {
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse json_ok(const nlohmann::json& j) {
  HttpResponse r;
  r.status = 200;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse bad_request(const Error& e) { return fault(400, e.message()); }

std::vector<std::string> Router::split_path(const std::string& path) {
  std::vector<std::string> out;
  for (auto& s : split(path, '/'))
    if (!s.empty()) out.push_back(s);
  return out;
}

void Router::add(std::string method, std::string pattern, Handler h) {
  auto segs = split_path(pattern);
  for (auto& r : routes_)
    if (r.method == method && r.segments == segs) {
      r.handler = std::move(h);
      return;
    }
  routes_.push_back({std::move(method), std::move(segs), std::move(h)});
}

bool Router::match(const Route& r, const std::vector<std::string>& segs, std::map<std::string, std::string>& params) {
  if (r.segments.size() != segs.size()) return false;
  params.clear();
  for (size_t i = 0; i < segs.size(); ++i) {
    const auto& p = r.segments[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') params[p.substr(1, p.size() - 2)] = segs[i];
    else if (p != segs[i]) return false;
  }
  return true;
}

HttpResponse Router::dispatch(const HttpRequest& req) const {
  auto segs = split_path(req.path);
  std::map<std::string, std::string> params;
  std::string allow;
  for (const auto& r : routes_) {
    if (!match(r, segs, params)) continue;
    if (r.method == req.method) {
      ApiCall call{req, params};
      return r.handler(call);
    }
    if (allow.find(r.method) == std::string::npos) allow += allow.empty() ? r.method : ", " + r.method;
  }
  if (allow.empty()) return fault(404, cat("unknown path ", req.path));
  HttpResponse resp = fault(405, cat(req.method, " is not allowed on ", req.path, " (allowed: ", allow, ")"));
  resp.headers.emplace_back("Allow", allow);
  return resp;
}

std::vector<std::string> Router::rows() const {
  std::vector<std::string> out;
  for (const auto& r : routes_) {
    std::string p;
    for (const auto& s : r.segments) p += "/" + s;
    out.push_back(r.method + " " + (p.empty() ? "/" : p));
  }
  return out;
}

}  // namespace vessel::vmm::api
