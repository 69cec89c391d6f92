#include "oci/resources.h"

#include <gtest/gtest.h>

namespace vessel::oci {
namespace {

using nlohmann::json;

constexpr const char* kFull = R"({
  "devices": [{"allow": false, "access": "rwm"},
              {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
  "memory": {"limit": 536870912, "reservation": 0, "swap": -1, "kernel": -1, "kernelTCP": 1024,
             "swappiness": 0, "disableOOMKiller": false, "useHierarchy": true, "checkBeforeUpdate": true},
  "cpu": {"shares": 1024, "quota": 1000000, "burst": 10, "period": 500000, "realtimeRuntime": 950000,
          "realtimePeriod": 1000000, "cpus": "2-3", "mems": "0-7", "idle": 1},
  "pids": {"limit": 32771},
  "blockIO": {"weight": 10, "leafWeight": 10,
              "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                               {"major": 8, "minor": 16, "weight": 500}],
              "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
              "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 601}],
              "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 602}],
              "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
  "hugepageLimits": [{"pageSize": "2MB", "limit": 9223372036854772000}],
  "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
  "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 1000}},
  "unified": {"io.max": "259:0 rbps=2097152 wiops=120", "memory.high": "1073741824"},
  "someFutureField": {"x": 1}
})";

TEST(Resources, ParsesTheWholeSpecObject) {
  auto r = parse_resources(json::parse(kFull));
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->devices.size(), 2u);
  EXPECT_FALSE(r->devices[0].allow);
  EXPECT_FALSE(r->devices[0].type);
  EXPECT_EQ(r->devices[1].type, "c");
  EXPECT_EQ(r->devices[1].minor, 229);
  EXPECT_EQ(r->memory->limit, 536870912);
  EXPECT_FALSE(r->memory->reservation) << "a zero reservation is \"not set\", as in runc";
  EXPECT_EQ(r->memory->swap, -1);
  EXPECT_EQ(r->memory->swappiness, 0u);
  EXPECT_EQ(r->memory->disable_oom_killer, false);
  EXPECT_EQ(r->memory->check_before_update, true);
  EXPECT_EQ(r->cpu->shares, 1024u);
  EXPECT_EQ(r->cpu->burst, 10u);
  EXPECT_EQ(r->cpu->cpus, "2-3");
  EXPECT_EQ(r->cpu->idle, 1);
  EXPECT_EQ(r->pids->limit, 32771);
  EXPECT_EQ(r->block_io->weight, 10);
  ASSERT_EQ(r->block_io->weight_device.size(), 2u);
  EXPECT_EQ(r->block_io->weight_device[0].leaf_weight, 300);
  EXPECT_FALSE(r->block_io->weight_device[1].leaf_weight);
  EXPECT_EQ(r->block_io->throttle_write_iops_device[0].rate, 300u);
  EXPECT_EQ(r->hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(r->network->class_id, 1048577u);
  EXPECT_EQ(r->network->priorities[0].name, "eth0");
  EXPECT_EQ(r->rdma["mlx5_1"].hca_handles, 3u);
  EXPECT_FALSE(r->rdma["mlx4_0"].hca_handles);
  EXPECT_EQ(r->unified["memory.high"], "1073741824");
}

TEST(Resources, EmptyObjectLeavesEverythingUnset) {
  auto r = parse_resources(json::parse(R"({"memory": {}, "cpu": null})"));
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->memory);
  EXPECT_FALSE(r->memory->limit);
  EXPECT_FALSE(r->cpu);
  EXPECT_FALSE(r->pids);
  EXPECT_TRUE(r->devices.empty());
}

TEST(Resources, RoundTripsThroughJson) {
  auto r = parse_resources(json::parse(kFull));
  ASSERT_TRUE(r);
  json out = to_json(*r);
  EXPECT_FALSE(out.contains("someFutureField"));
  EXPECT_FALSE(out["devices"][0].contains("type")) << "unset stays unset";
  auto again = parse_resources(out);
  ASSERT_TRUE(again);
  EXPECT_EQ(to_json(*again), out);
  EXPECT_FALSE(out["memory"].contains("reservation"));
  EXPECT_EQ(out["memory"]["swappiness"], 0) << "swappiness 0 is a value";
  EXPECT_EQ(out["blockIO"]["throttleReadIOPSDevice"][0]["rate"], 602);
}

TEST(Resources, ErrorsNameTheField) {
  auto expect_error = [](const char* text, const std::string& message) {
    auto r = parse_resources(json::parse(text));
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().message(), message);
  };
  expect_error(R"({"memory": {"limit": "1G"}})", "linux.resources.memory.limit: expected an integer");
  expect_error(R"({"memory": {"limit": 1.5}})", "linux.resources.memory.limit: expected an integer");
  expect_error(R"({"memory": {"swappiness": 200}})",
               "linux.resources.memory.swappiness: must be between 0 and 100, not 200");
  expect_error(R"({"memory": {"disableOOMKiller": 1}})", "linux.resources.memory.disableOOMKiller: expected a boolean");
  expect_error(R"({"memory": []})", "linux.resources.memory: expected an object");
  expect_error(R"({"cpu": {"shares": -1}})", "linux.resources.cpu.shares: value out of range");
  expect_error(R"({"cpu": {"cpus": 3}})", "linux.resources.cpu.cpus: expected a string");
  expect_error(R"({"devices": {}})", "linux.resources.devices: expected an array");
  expect_error(R"({"devices": [{"access": "rwm"}]})", "linux.resources.devices[0].allow: required");
  expect_error(R"({"devices": [{"allow": true}, {"allow": true, "type": "x"}]})",
               "linux.resources.devices[1].type: must be \"a\", \"c\" or \"b\", not \"x\"");
  expect_error(R"({"devices": [{"allow": true, "access": "xa"}]})",
               "linux.resources.devices[0].access: must contain r, w or m, not \"xa\"");
  expect_error(R"({"blockIO": {"weight": 70000}})", "linux.resources.blockIO.weight: value out of range");
  expect_error(R"({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}})",
               "linux.resources.blockIO.throttleReadBpsDevice[0].rate: required");
  expect_error(R"({"hugepageLimits": [{"limit": 1}]})", "linux.resources.hugepageLimits[0].pageSize: required");
  expect_error(R"({"network": {"priorities": [{"name": "eth0", "priority": "high"}]}})",
               "linux.resources.network.priorities[0].priority: expected an integer");
  expect_error(R"({"rdma": {"mlx5": 3}})", "linux.resources.rdma.mlx5: expected an object");
  expect_error(R"({"unified": {"memory.high": 5}})", "linux.resources.unified.memory.high: expected a string");
  expect_error(R"([])", "linux.resources: expected an object");
}

TEST(Resources, DeviceAccessKeepsOnlyRwm) {
  // runc ignores other letters ("rwa" is "rw").
  auto r = parse_resources(json::parse(R"({"devices": [{"allow": true, "type": "c", "access": "wra"}]})"));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->devices[0].access.value_or(""), "rw");
}

TEST(Resources, TheUpdateVerbNamesItsOwnPath) {
  auto r = parse_resources(json::parse(R"({"pids": {"limit": "x"}})"), "update");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "update.pids.limit: expected an integer");
}

// What Docker 20.10 puts in every config.json and `update` body: zeros everywhere.
constexpr const char* kDockerDefaults = R"({
  "devices": [{"allow": false, "access": "rwm"}],
  "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0, "disableOOMKiller": false},
  "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": ""},
  "pids": {"limit": 0},
  "blockIO": {"weight": 0, "leafWeight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0}]},
  "network": {"classID": 0}
})";

TEST(Resources, ZerosThatRuncReadsAsUnsetAreUnset) {
  auto r = parse_resources(json::parse(kDockerDefaults));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->memory->limit);
  EXPECT_FALSE(r->memory->reservation);
  EXPECT_FALSE(r->memory->swap);
  EXPECT_FALSE(r->memory->kernel);
  EXPECT_FALSE(r->memory->kernel_tcp);
  EXPECT_FALSE(r->cpu->shares) << "cpu.shares must keep the kernel's 1024, not become 2";
  EXPECT_FALSE(r->cpu->quota);
  EXPECT_FALSE(r->cpu->period);
  EXPECT_FALSE(r->cpu->realtime_runtime);
  EXPECT_FALSE(r->cpu->realtime_period);
  EXPECT_FALSE(r->cpu->cpus);
  EXPECT_FALSE(r->cpu->mems);
  EXPECT_FALSE(r->pids->limit);
  EXPECT_FALSE(r->block_io->weight) << "the kernel refuses 0 in blkio.bfq.weight";
  EXPECT_FALSE(r->block_io->leaf_weight);
  EXPECT_FALSE(r->block_io->weight_device[0].weight);
  EXPECT_FALSE(r->network->class_id);
  ASSERT_EQ(r->devices.size(), 1u) << "device rules are not values: they stay";
}

TEST(Resources, NonZeroAndSpecialValuesStay) {
  auto r = parse_resources(json::parse(R"({
    "memory": {"limit": -1, "swap": -1, "swappiness": 0},
    "cpu": {"shares": 2, "quota": -1, "idle": 0, "burst": 0},
    "pids": {"limit": -1},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
    "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}]}
  })"));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->memory->limit, -1);
  EXPECT_EQ(r->memory->swap, -1);
  EXPECT_EQ(r->memory->swappiness, 0u);
  EXPECT_EQ(r->cpu->shares, 2u);
  EXPECT_EQ(r->cpu->quota, -1);
  EXPECT_EQ(r->cpu->idle, 0);
  EXPECT_EQ(r->cpu->burst, 0u);
  EXPECT_EQ(r->pids->limit, -1) << "-1 is unlimited, not unset";
  EXPECT_EQ(r->hugepage_limits[0].limit, 0u) << "a zero hugepage limit forbids huge pages";
  EXPECT_EQ(r->block_io->throttle_read_bps_device[0].rate, 0u) << "rate 0 removes a throttle";
}

TEST(Resources, SwappinessMinusOneIsUnset) {
  for (const char* text : {R"({"memory": {"swappiness": -1}})", R"({"memory": {"swappiness": 18446744073709551615}})"}) {
    auto r = parse_resources(json::parse(text));
    ASSERT_TRUE(r) << text << ": " << r.error().message();
    EXPECT_FALSE(r->memory->swappiness) << text;
  }
  auto bad = parse_resources(json::parse(R"({"memory": {"swappiness": -2}})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "linux.resources.memory.swappiness: value out of range");
}

}  // namespace
}  // namespace vessel::oci
