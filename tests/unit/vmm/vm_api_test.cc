// The VMM API without sockets or KVM: HTTP request parsing and its limits,
// the router's 404/405, VmConfig JSON (field errors, Firecracker's config
// file), and every seed of the vm_api fuzz corpus.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "unit/corpus.h"
#include "vmm/api/http.h"
#include "vmm/api/router.h"
#include "vmm/config/vm_config.h"

namespace vessel::vmm {
namespace {

using api::HttpRequest;
using api::HttpResponse;
using api::RequestParser;
using State = RequestParser::State;
using nlohmann::json;

TEST(VmApiHttp, ParsesARequestFedByteByByte) {
  std::string msg = "PUT /drives/rootfs?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}";
  RequestParser p;
  State st = State::kNeedMore;
  for (char c : msg) st = p.feed(std::string_view(&c, 1));
  ASSERT_EQ(st, State::kDone);
  HttpRequest r = p.take();
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.path, "/drives/rootfs");
  EXPECT_EQ(r.query, "x=1");
  EXPECT_EQ(r.body, "{}");
  ASSERT_NE(r.header("host"), nullptr);
  EXPECT_EQ(*r.header("host"), "localhost");
  EXPECT_TRUE(r.keep_alive);
}

TEST(VmApiHttp, PipelinedRequestsComeOneByOne) {
  RequestParser p;
  ASSERT_EQ(p.feed("GET / HTTP/1.1\r\n\r\nGET /vm/config HTTP/1.0\r\n\r\n"), State::kDone);
  EXPECT_EQ(p.take().path, "/");
  ASSERT_EQ(p.advance(), State::kDone);
  HttpRequest r = p.take();
  EXPECT_EQ(r.path, "/vm/config");
  EXPECT_FALSE(r.keep_alive);  // HTTP/1.0
  EXPECT_EQ(p.advance(), State::kNeedMore);
}

TEST(VmApiHttp, ExpectContinue) {
  RequestParser p;
  EXPECT_EQ(p.feed("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"), State::kContinue);
  EXPECT_EQ(p.advance(), State::kNeedMore);
  EXPECT_EQ(p.feed("abc"), State::kDone);
  EXPECT_EQ(p.take().body, "abc");
}

TEST(VmApiHttp, AbsoluteFormTarget) {
  RequestParser p;
  ASSERT_EQ(p.feed("GET http://localhost/machine-config HTTP/1.1\r\n\r\n"), State::kDone);
  EXPECT_EQ(p.take().path, "/machine-config");
}

TEST(VmApiHttp, Limits) {
  struct Case {
    std::string text;
    int status;
  };
  std::vector<Case> cases = {
      {"PUT /x HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n", 413},
      {"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
      {"PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"GARBAGE\r\n\r\n", 400},
      {"GET x HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nExpect: something\r\n\r\n", 400},
      {"GET /" + std::string(2000, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nX: " + std::string(api::kMaxHeaderBytes, 'a'), 431},
  };
  for (const auto& c : cases) {
    RequestParser p;
    EXPECT_EQ(p.feed(c.text), State::kError) << c.text.substr(0, 60);
    EXPECT_EQ(p.error_status(), c.status) << c.text.substr(0, 60) << ": " << p.error_message();
    EXPECT_FALSE(p.error_message().empty());
  }
}

TEST(VmApiHttp, ResponsesRoundTrip) {
  HttpResponse r = api::fault(400, "drives[0].path_on_host: expected a string");
  std::string wire = "HTTP/1.1 100 Continue\r\n\r\n" + r.serialize(true);
  HttpResponse back;
  EXPECT_EQ(api::parse_response(wire.substr(0, wire.size() - 1), back), 0);  // incomplete
  ASSERT_EQ(api::parse_response(wire, back), static_cast<long>(wire.size()));
  EXPECT_EQ(back.status, 400);
  EXPECT_EQ(json::parse(back.body)["fault_message"], "drives[0].path_on_host: expected a string");
  EXPECT_EQ(api::parse_response("NOT HTTP\r\n\r\n", back), -1);
}

TEST(VmApiRouter, TableWith404And405) {
  api::Router r;
  std::string seen;
  r.add("PUT", "/drives/{drive_id}", [&](const api::ApiCall& c) {
    seen = c.param("drive_id");
    return api::no_content();
  });
  r.add("PATCH", "/drives/{drive_id}", [](const api::ApiCall&) { return api::no_content(); });
  HttpRequest req;
  req.method = "PUT";
  req.path = "/drives/rootfs";
  EXPECT_EQ(r.dispatch(req).status, 204);
  EXPECT_EQ(seen, "rootfs");
  req.path = "/drives";
  EXPECT_EQ(r.dispatch(req).status, 404);
  req.path = "/drives/a/b";
  EXPECT_EQ(r.dispatch(req).status, 404);
  req.method = "GET";
  req.path = "/drives/x";
  HttpResponse resp = r.dispatch(req);
  EXPECT_EQ(resp.status, 405);
  ASSERT_EQ(resp.headers.size(), 1u);
  EXPECT_EQ(resp.headers[0].second, "PUT, PATCH");
  EXPECT_EQ(r.rows().size(), 2u);
}

TEST(VmConfigJson, FirecrackerConfigFile) {
  auto c = parse_vm_config_text(R"({
    "boot-source": {"kernel_image_path": "vmlinux.bin", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"},
    "drives": [{"drive_id": "rootfs", "path_on_host": "bionic.rootfs.ext4", "is_root_device": true, "is_read_only": false,
                "rate_limiter": {"bandwidth": {"size": 1000000, "refill_time": 100}}}],
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false, "track_dirty_pages": true},
    "network-interfaces": [{"iface_id": "eth0", "guest_mac": "06:00:AC:10:00:02", "host_dev_name": "tap0"}],
    "entropy": {},
    "logger": {"log_path": "fc.log", "level": "Info"},
    "metrics": {"metrics_path": "metrics.fifo"}
  })");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->machine.vcpu_count, 2u);
  EXPECT_TRUE(c->machine.track_dirty_pages);
  ASSERT_EQ(c->drives.size(), 1u);
  EXPECT_EQ(c->drives[0].rate_limiter->bytes_per_second(), 10000000u);
  EXPECT_EQ(c->effective_boot_args(), "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw");
  EXPECT_TRUE(c->entropy.has_value());
  // Round trip through GET /vm/config's form.
  auto again = parse_vm_config(to_json(*c));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(to_json(*again), to_json(*c));
}

TEST(VmConfigJson, MergeableMemoryIsAVesselKeyOffByDefault) {
  auto plain = parse_vm_config_text(R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}})");
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_FALSE(plain->mem_mergeable);
  EXPECT_FALSE(to_json(*plain).contains("vessel"));
  auto c = parse_vm_config_text(R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
                                    "vessel": {"mem_mergeable": true}})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->mem_mergeable);
  auto again = parse_vm_config(to_json(*c));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(again->mem_mergeable);
  auto ring = parse_vm_config_text(R"({"vessel": {"dirty_ring_entries": 4096}})");
  ASSERT_TRUE(ring) << ring.error().message();
  EXPECT_EQ(ring->dirty_ring_entries, 4096u);
  EXPECT_EQ(to_json(*ring)["vessel"]["dirty_ring_entries"], 4096);
  EXPECT_EQ(plain->dirty_ring_entries, VmConfig::kDefaultDirtyRingEntries);
  auto odd = parse_vm_config_text(R"({"vessel": {"dirty_ring_entries": 1000}})");
  ASSERT_FALSE(odd);
  EXPECT_NE(odd.error().message().find("vessel.dirty_ring_entries: must be 0"), std::string::npos) << odd.error().message();
  auto bad = parse_vm_config_text(R"({"vessel": {"mem_mergeable": "yes"}})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("vessel.mem_mergeable"), std::string::npos) << bad.error().message();
}

TEST(VmConfigJson, ErrorsNameTheField) {
  struct Case {
    const char* text;
    const char* says;
  };
  Case cases[] = {
      {R"({"drives": [{"drive_id": "a", "path_on_host": 5}]})", "drives[0].path_on_host: expected a string"},
      {R"({"drives": [{"drive_id": "a"}]})", "drives[0].path_on_host: missing"},
      {R"({"machine-config": {"vcpu_count": 0, "mem_size_mib": 128}})", "machine-config.vcpu_count: must be between"},
      {R"({"machine-config": {"vcpu_count": 1}})", "machine-config.mem_size_mib: missing"},
      {R"({"machine-config": {"vcpu_count": -1, "mem_size_mib": 128}})", "must not be negative"},
      {R"({"machine-config": {"vcpu_count": 1.5, "mem_size_mib": 128}})", "expected an unsigned integer"},
      {R"({"network-interfaces": [{"iface_id": "e", "host_dev_name": "t", "guest_mac": "zz"}]})",
       "network-interfaces[0].guest_mac"},
      {R"({"boot-source": {"kernel_image_path": "/k", "colour": 1}})", "boot-source.colour: unknown field"},
      {R"({"drives": [{"drive_id": "a/b", "path_on_host": "/x"}]})", "drives[0].drive_id"},
      {R"({"drives": [{"drive_id": "a", "path_on_host": "/x", "rate_limiter": {"ops": {"size": 1}}}]})",
       "drives[0].rate_limiter.ops.refill_time: missing"},
      {R"({"drives": [{"drive_id": "a", "path_on_host": "/x"}, {"drive_id": "a", "path_on_host": "/y"}]})",
       "used twice"},
      {R"([1])", "expected a JSON object"},
      {R"({"drives": {}})", "drives: expected an array"},
      {R"({"boot-source": )", "malformed JSON"},
      {R"({"machine-config": {"vcpu_count": 1e999, "mem_size_mib": 1}})", "malformed JSON"},
  };
  for (const auto& c : cases) {
    auto r = parse_vm_config_text(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message().find(c.says), std::string::npos) << c.text << " -> " << r.error().message();
  }
}

TEST(VmConfigJson, StartNeedsAKernel) {
  VmConfig c;
  auto s = validate_for_start(c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("kernel_image_path"), std::string::npos);
}

TEST(VmApiFuzzCorpus, EverySeedParsesOrFailsCleanly) {
  for (const auto& [name, text] : vessel::testing::corpus_files("vm_api")) {
    RequestParser p;
    auto st = p.feed(std::string_view(text).substr(text.empty() ? 0 : 1));
    while (st == State::kContinue) st = p.advance();
    if (st == State::kDone) (void)parse_vm_config_text(p.take().body);
    if (st == State::kError) {
      EXPECT_GE(p.error_status(), 400) << name;
    }
  }
}

}  // namespace
}  // namespace vessel::vmm
