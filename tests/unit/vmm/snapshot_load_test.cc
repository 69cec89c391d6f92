// PUT /snapshot/load's body: Firecracker's fields, network_overrides and
// vessel's clone / guest_mac, and the errors that name the field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "vmm/instance/vmm.h"

namespace vessel::vmm {
namespace {

using nlohmann::json;

TEST(SnapshotLoadBody, FirecrackerFieldsAndOverrides) {
  auto l = parse_snapshot_load(json::parse(R"({"snapshot_path":"/s/state",
      "mem_backend":{"backend_type":"File","backend_path":"/s/memory"}, "resume_vm":true, "clone":true,
      "network_overrides":[{"iface_id":"net0","host_dev_name":"ct0"},
                           {"iface_id":"net1","host_dev_name":"ct1","guest_mac":"52:54:00:aa:bb:cc"}]})"));
  ASSERT_TRUE(l.ok()) << l.error().message();
  EXPECT_EQ(l->state_path, "/s/state");
  EXPECT_EQ(l->memory_path, "/s/memory");
  EXPECT_TRUE(l->resume);
  EXPECT_TRUE(l->clone);
  ASSERT_EQ(l->network_overrides.size(), 2u);
  EXPECT_EQ(l->network_overrides[0].iface_id, "net0");
  EXPECT_EQ(l->network_overrides[0].host_dev_name, "ct0");
  EXPECT_EQ(l->network_overrides[1].guest_mac, "52:54:00:aa:bb:cc");
}

TEST(SnapshotLoadBody, BadOverridesNameTheField) {
  auto err = [](const char* body) {
    auto l = parse_snapshot_load(json::parse(body));
    EXPECT_FALSE(l.ok()) << body;
    return l.ok() ? std::string() : l.error().message();
  };
  EXPECT_NE(err(R"({"snapshot_path":"s","network_overrides":{}})").find("network_overrides: expected an array"),
            std::string::npos);
  EXPECT_NE(err(R"({"snapshot_path":"s","network_overrides":[{"host_dev_name":"t"}]})").find("network_overrides[0].iface_id"),
            std::string::npos);
  EXPECT_NE(err(R"({"snapshot_path":"s","network_overrides":[{"iface_id":"a","guest_mac":"zz"}]})")
                .find("network_overrides[0].guest_mac"),
            std::string::npos);
  EXPECT_NE(err(R"({"snapshot_path":"s","network_overrides":[{"iface_id":"a","host_dev_name":"0123456789abcdef"}]})")
                .find("longer than 15"),
            std::string::npos);
  EXPECT_NE(err(R"({"snapshot_path":"s","network_overrides":[{"iface_id":"a"},{"iface_id":"a"}]})").find("given twice"),
            std::string::npos);
  EXPECT_NE(err(R"({"snapshot_path":"s","network_overrides":[{"iface_id":"a","mtu":1}]})").find("network_overrides[0].mtu"),
            std::string::npos);
  EXPECT_NE(err(R"({"snapshot_path":"s","clone":"yes"})").find("clone"), std::string::npos);
}

TEST(ReceiveMigrationBody, NetOverridesNeedATapAndTakeNoMac) {
  auto ok = parse_net_overrides(json::parse(R"([{"iface_id":"eth0","host_dev_name":"vtap2"}])"), "net_overrides", false);
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].host_dev_name, "vtap2");
  auto err = [](const char* body) {
    auto l = parse_net_overrides(json::parse(body), "net_overrides", false);
    EXPECT_FALSE(l.ok()) << body;
    return l.ok() ? std::string() : l.error().message();
  };
  EXPECT_NE(err(R"([{"iface_id":"eth0"}])").find("net_overrides[0].host_dev_name"), std::string::npos);
  EXPECT_NE(err(R"([{"iface_id":"eth0","host_dev_name":""}])").find("empty"), std::string::npos);
  EXPECT_NE(err(R"([{"iface_id":"eth0","host_dev_name":"t","guest_mac":"02:00:00:00:00:01"}])")
                .find("net_overrides[0].guest_mac"),
            std::string::npos);
  EXPECT_NE(err(R"({})").find("net_overrides: expected an array"), std::string::npos);
}

}  // namespace
}  // namespace vessel::vmm
