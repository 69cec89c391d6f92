// libFuzzer target: bytes of an API connection into the HTTP request parser
// (fed in chunks whose size the first byte picks), each complete request
// routed through a Router whose rows parse the bodies with the VmConfig
// readers of the real endpoints; every body is also tried as a whole
// Firecracker config file. Any input must give responses or errors: no
// crash, no exception, no hang, no unbounded buffering.
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVESSEL_FUZZ=ON && ninja -C build-fuzz vm_api_fuzz
//   build-fuzz/vm_api_fuzz tests/fuzz/corpus/vm_api -max_total_time=30
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "vmm/api/http.h"
#include "vmm/api/router.h"
#include "vmm/config/vm_config.h"

namespace {
using namespace vessel;
using namespace vessel::vmm;
using namespace vessel::vmm::api;

template <class F>
Handler parse_with(F f) {
  return [f](const ApiCall& c) -> HttpResponse {
    auto j = c.json();
    if (!j) return bad_request(j.error());
    auto r = f(*j);
    if (!r) return bad_request(r.error());
    return no_content();
  };
}

const Router& router() {
  static Router r = [] {
    Router r;
    r.add("GET", "/", [](const ApiCall&) { return json_ok({{"state", "Not started"}}); });
    r.add("PUT", "/boot-source", parse_with([](const nlohmann::json& j) { return parse_boot_source(j); }));
    r.add("PUT", "/machine-config", parse_with([](const nlohmann::json& j) { return parse_machine_spec(j, {}, true); }));
    r.add("PATCH", "/machine-config", parse_with([](const nlohmann::json& j) { return parse_machine_spec(j, {}, false); }));
    r.add("PUT", "/drives/{drive_id}", parse_with([](const nlohmann::json& j) { return parse_drive(j); }));
    r.add("PUT", "/network-interfaces/{iface_id}", parse_with([](const nlohmann::json& j) { return parse_net(j); }));
    r.add("PUT", "/entropy", parse_with([](const nlohmann::json& j) { return parse_entropy(j); }));
    r.add("PUT", "/logger", parse_with([](const nlohmann::json& j) { return parse_logger(j); }));
    r.add("PUT", "/metrics", parse_with([](const nlohmann::json& j) { return parse_metrics(j); }));
    return r;
  }();
  return r;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestParser p;
  while (!in.empty()) {
    size_t n = std::min(chunk, in.size());
    auto st = p.feed(in.substr(0, n));
    in.remove_prefix(n);
    for (;;) {
      if (st == RequestParser::State::kContinue) {
        st = p.advance();
        continue;
      }
      if (st != RequestParser::State::kDone) break;
      HttpRequest req = p.take();
      HttpResponse resp = router().dispatch(req);
      if (resp.status < 200 || resp.status > 599) abort();
      (void)resp.serialize(req.keep_alive);
      (void)parse_vm_config_text(req.body);
      st = p.advance();
    }
    if (st == RequestParser::State::kError) {
      if (p.error_status() < 400) abort();
      break;
    }
    // The parser never holds more than one request's head and body.
    if (p.buffered() > kMaxHeaderBytes + kMaxBodyBytes + 64) abort();
  }
  // The client-side response parser too.
  HttpResponse r;
  (void)parse_response(std::string_view(reinterpret_cast<const char*>(data), size), r);
  return 0;
}
