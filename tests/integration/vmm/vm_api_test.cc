// Detached VMs through the real binary: `vm run -d`, the API socket
// (Firecracker's endpoints), the lifecycle verbs and bad input. Tiny PVH
// guests on the host's /dev/kvm. Every test uses its own --root under
// /tmp/vessel-vmapi-* and checks that nothing is left behind.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/vmm/cli_run.h"
#include "integration/vmm/tiny_guest.h"
#include "integration/vmm/tiny_pvh.h"
#include "vmm/api/client.h"

namespace vessel::vmm::testing {
namespace {

using nlohmann::json;
using CmdResult = CliResult;

class VmApi : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-vmapi-XXXXXX";
    dir_ = mkdtemp(tmpl);
    root_ = dir_ + "/root";
  }
  void TearDown() override {
    // Nothing may be left: every VM's state directory was deleted by the test.
    auto ids = list_dir(root_ + "/vm");
    for (const auto& id : ids) {
      ADD_FAILURE() << "VM state left behind: " << id;
      vessel({"vm", "delete", "--force", id});
    }
    std::string cmd = "rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }

  static std::vector<std::string> list_dir(const std::string& d) {
    std::vector<std::string> out;
    if (DIR* dd = opendir(d.c_str())) {
      while (dirent* e = readdir(dd))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
      closedir(dd);
    }
    return out;
  }

  CmdResult vessel(std::vector<std::string> args) { return run_vessel(root_, dir_, std::move(args)); }

  std::string tiny(const std::string& mode, const std::string& msg = "Hello\n") {
    std::string out = dir_ + "/tiny-" + mode + ".elf";
    EXPECT_TRUE(write_tiny_pvh(out, mode, msg)) << out;
    return out;
  }

  std::string vm_dir(const std::string& id) { return root_ + "/vm/" + id; }
  std::string sock(const std::string& id) { return vm_dir(id) + "/api.sock"; }

  json state(const std::string& id) {
    CmdResult r = vessel({"vm", "state", id});
    EXPECT_EQ(r.status, 0) << r.err;
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  }

  // Waits until `pred` holds (polling), at most `ms`.
  template <class F>
  static bool eventually(F pred, int ms = 5000) {
    for (int i = 0; i < ms / 10; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }

  static size_t file_size(const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  }

  static bool pid_alive(int pid) {
    std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
    if (s.empty()) return false;
    auto close = s.rfind(')');
    return close != std::string::npos && s[close + 2] != 'Z';
  }

  static api::HttpResponse call(const std::string& sock, const std::string& method, const std::string& path,
                                const std::string& body = "") {
    auto r = api::call(sock, method, path, body, 10000);
    EXPECT_TRUE(r) << method << " " << path << ": " << (r ? "" : r.error().message());
    return r ? *r : api::HttpResponse{};
  }

  std::string dir_, root_;
};

std::string fault_of(const api::HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("fault_message") ? j["fault_message"].get<std::string>() : "<no fault_message>";
}

TEST_F(VmApi, DetachedCounterPauseResumeStateListStopDelete) {
  VESSEL_REQUIRE_KVM();
  CmdResult r = vessel({"vm", "run", "-d", "--name", "c1", "--kernel", tiny("count", "start\n"), "--cpus", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string log = vm_dir("c1") + "/serial.log";
  ASSERT_TRUE(eventually([&] { return file_size(log) > 10; })) << slurp(log);

  json st = state("c1");
  EXPECT_EQ(st["status"], "running");
  EXPECT_EQ(st["vcpus"], 2);
  EXPECT_EQ(st["memory_mib"], 128);
  int pid = st["pid"].get<int>();
  EXPECT_TRUE(pid_alive(pid));

  // Paused: the counter does not advance for a second.
  r = vessel({"vm", "pause", "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(state("c1")["status"], "paused");
  size_t before = file_size(log);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(file_size(log), before) << "the guest ran while paused";

  // Pausing twice is an error; the VM stays paused.
  r = vessel({"vm", "pause", "c1"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("already paused"), std::string::npos) << r.err;

  r = vessel({"vm", "resume", "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually([&] { return file_size(log) > before; })) << "the guest did not continue";
  EXPECT_EQ(state("c1")["status"], "running");

  r = vessel({"vm", "list", "--format", "json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto list = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << r.out;
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], "c1");
  EXPECT_EQ(list[0]["status"], "running");
  r = vessel({"vm", "list"});
  EXPECT_NE(r.out.find("c1"), std::string::npos) << r.out;

  // delete refuses a running VM; kill stops it at once.
  r = vessel({"vm", "delete", "c1"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("is running"), std::string::npos) << r.err;
  r = vessel({"vm", "kill", "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(pid_alive(pid));
  st = state("c1");
  EXPECT_EQ(st["status"], "stopped");
  EXPECT_EQ(st["exit_reason"], "stopped");
  EXPECT_FALSE(std::ifstream(sock("c1")).good()) << "API socket left behind";
  EXPECT_FALSE(std::ifstream(vm_dir("c1") + "/console.sock").good()) << "console socket left behind";

  r = vessel({"vm", "delete", "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(list_dir(root_ + "/vm").empty());
}

TEST_F(VmApi, SendCtrlAltDelStopsTheGuestCleanly) {
  VESSEL_REQUIRE_KVM();
  CmdResult r = vessel({"vm", "run", "-d", "--name", "cad", "--kernel", tiny("ctrlaltdel")});
  ASSERT_EQ(r.status, 0) << r.err;
  int pid = state("cad")["pid"].get<int>();
  r = vessel({"vm", "stop", "cad", "--timeout", "10"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(pid_alive(pid));
  json st = state("cad");
  EXPECT_EQ(st["status"], "stopped");
  EXPECT_EQ(st["exit_reason"], "poweroff") << st.dump();
  EXPECT_EQ(vessel({"vm", "delete", "cad"}).status, 0);
}

TEST_F(VmApi, GuestPoweroffEndsTheVmm) {
  VESSEL_REQUIRE_KVM();
  CmdResult r = vessel({"vm", "run", "-d", "--name", "p1", "--kernel", tiny("poweroff", "bye\n")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually([&] { return state("p1")["status"] == "stopped"; }));
  EXPECT_EQ(state("p1")["exit_reason"], "poweroff");
  EXPECT_EQ(slurp(vm_dir("p1") + "/serial.log"), "bye\n");
  EXPECT_EQ(vessel({"vm", "delete", "p1"}).status, 0);
}

// Firecracker's getting-started sequence, as curl sends it (through our client here;
// the harness test uses curl itself).
TEST_F(VmApi, CreateThenConfigureOverTheSocketLikeFirecracker) {
  VESSEL_REQUIRE_KVM();
  std::string api = dir_ + "/firecracker.socket";
  CmdResult r = vessel({"vm", "create", "--name", "fc", "--api-sock", api});
  ASSERT_EQ(r.status, 0) << r.err;
  auto info = call(api, "GET", "/");
  EXPECT_EQ(info.status, 200);
  EXPECT_EQ(json::parse(info.body)["state"], "Not started");
  EXPECT_EQ(state("fc")["status"], "created");

  std::string logfile = dir_ + "/fc.log";
  EXPECT_EQ(call(api, "PUT", "/logger",
                 R"({"log_path": ")" + logfile + R"(", "level": "Debug", "show_level": true, "show_log_origin": true})")
                .status,
            204);
  EXPECT_EQ(call(api, "PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "smt": false})").status, 204);
  EXPECT_EQ(call(api, "PUT", "/boot-source",
                 R"({"kernel_image_path": ")" + tiny("count") + R"(", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"})")
                .status,
            204);
  std::string img = dir_ + "/rootfs.ext4";
  std::ofstream(img) << std::string(1 << 20, '\0');
  EXPECT_EQ(call(api, "PUT", "/drives/rootfs",
                 R"({"drive_id": "rootfs", "path_on_host": ")" + img + R"(", "is_root_device": true, "is_read_only": false})")
                .status,
            204);
  EXPECT_EQ(call(api, "PUT", "/entropy", "{}").status, 204);
  std::string metrics = dir_ + "/metrics.json";
  EXPECT_EQ(call(api, "PUT", "/metrics", R"({"metrics_path": ")" + metrics + R"(", "flush_interval_s": 1})").status, 204);
  auto twice = call(api, "PUT", "/metrics", R"({"metrics_path": ")" + metrics + R"("})");
  EXPECT_EQ(twice.status, 400);
  EXPECT_NE(fault_of(twice).find("configured already"), std::string::npos) << twice.body;
  auto start = call(api, "PUT", "/actions", R"({"action_type": "InstanceStart"})");
  EXPECT_EQ(start.status, 204) << fault_of(start);
  EXPECT_EQ(json::parse(call(api, "GET", "/").body)["state"], "Running");

  auto cfg = json::parse(call(api, "GET", "/vm/config").body);
  EXPECT_EQ(cfg["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(cfg["drives"][0]["drive_id"], "rootfs");
  EXPECT_NE(state("fc")["devices"].dump().find("virtio-rng"), std::string::npos);

  // Pre-boot only, and a second start: 400 naming the problem; the VM keeps running.
  auto again = call(api, "PUT", "/actions", R"({"action_type": "InstanceStart"})");
  EXPECT_EQ(again.status, 400);
  EXPECT_NE(fault_of(again).find("started already"), std::string::npos) << again.body;
  auto late = call(api, "PUT", "/boot-source", R"({"kernel_image_path": "/x"})");
  EXPECT_EQ(late.status, 400);
  EXPECT_NE(fault_of(late).find("before InstanceStart"), std::string::npos) << late.body;

  // PATCH /vm as Firecracker: Paused, Resumed.
  EXPECT_EQ(call(api, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(json::parse(call(api, "GET", "/").body)["state"], "Paused");
  EXPECT_EQ(call(api, "PATCH", "/vm", R"({"state": "Resumed"})").status, 204);

  // PATCH /drives on the running VM: a new backing file (bigger) and a rate limit.
  std::string img2 = dir_ + "/rootfs2.ext4";
  std::ofstream(img2) << std::string(2 << 20, '\0');
  auto patch = call(api, "PATCH", "/drives/rootfs",
                    R"({"drive_id": "rootfs", "path_on_host": ")" + img2 +
                        R"(", "rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 1000}}})");
  EXPECT_EQ(patch.status, 204) << fault_of(patch);
  auto bad_patch = call(api, "PATCH", "/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "/nonexistent/d"})");
  EXPECT_EQ(bad_patch.status, 400);
  EXPECT_NE(fault_of(bad_patch).find("/nonexistent/d"), std::string::npos) << bad_patch.body;
  cfg = json::parse(call(api, "GET", "/vm/config").body);
  EXPECT_EQ(cfg["drives"][0]["path_on_host"], img2);
  EXPECT_EQ(cfg["drives"][0]["rate_limiter"]["bandwidth"]["size"], 1048576);
  EXPECT_EQ(json::parse(call(api, "GET", "/").body)["state"], "Running");

  EXPECT_EQ(call(api, "PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  // Periodic lines (every second here) plus the one asked for: Firecracker's names.
  EXPECT_TRUE(eventually([&] {
    std::string m = slurp(metrics);
    return std::count(m.begin(), m.end(), '\n') >= 2;
  }, 4000))
      << slurp(metrics);
  std::string all = slurp(metrics);
  std::istringstream lines(all);
  std::string text;
  uint64_t io_out = 0, updates = 0, serial_bytes = 0;
  int n = 0;
  while (std::getline(lines, text)) {
    auto line = json::parse(text, nullptr, false);
    ASSERT_TRUE(line.is_object()) << text;
    ++n;
    EXPECT_GT(line["vmm"]["rss_kib"].get<uint64_t>(), 0u) << text;
    EXPECT_TRUE(line.contains("utc_timestamp_ms")) << text;
    if (line["vessel"]["status"] == "created") continue;  // a periodic line before InstanceStart: no devices yet
    ASSERT_TRUE(line.contains("block_rootfs")) << text;
    EXPECT_TRUE(line["block_rootfs"].contains("read_bytes")) << text;
    EXPECT_TRUE(line["entropy"].contains("entropy_bytes")) << text;
    io_out += line["vcpu"]["exit_io_out"].get<uint64_t>();  // the guest's counter is port I/O to COM1
    updates += line["block_rootfs"]["update_count"].get<uint64_t>();
    serial_bytes += line["uart"]["write_count"].get<uint64_t>();
  }
  EXPECT_GE(n, 2);
  EXPECT_GT(io_out, 0u);
  EXPECT_EQ(updates, 2u) << all;  // the new path and the limits, counted once over all lines (deltas)
  EXPECT_GT(serial_bytes, 0u);
  auto st = vessel({"vm", "state", "--stats", "fc"});
  auto sj = json::parse(st.out, nullptr, false);
  EXPECT_EQ(sj["stats"]["metrics"]["block_rootfs"]["update_count"], 2) << st.out;

  EXPECT_EQ(vessel({"vm", "kill", "fc"}).status, 0);
  EXPECT_FALSE(std::ifstream(api).good()) << "--api-sock socket left behind";
  EXPECT_EQ(vessel({"vm", "delete", "fc"}).status, 0);
}

// Bad requests against an unconfigured VMM (no KVM needed): each gets a
// 4xx naming what was wrong, and the VMM serves on.
TEST_F(VmApi, BadRequestsGet4xxAndTheVmmServesOn) {
  CmdResult r = vessel({"vm", "create", "--name", "bad"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string api = sock("bad");
  std::string kernel = tiny("count");
  struct Case {
    const char* method;
    const char* path;
    std::string body;
    int status;
    const char* says;
  };
  std::vector<Case> cases = {
      {"GET", "/nope", "", 404, "unknown path"},
      {"DELETE", "/machine-config", "", 405, "not allowed"},
      {"PUT", "/actions", "{\"action_type\": ", 400, "malformed JSON"},
      {"PUT", "/actions", "", 400, "no JSON body"},
      {"PUT", "/actions", R"({"action_type": 7})", 400, "action_type: expected a string"},
      {"PUT", "/actions", R"({"action_type": "Reboot"})", 400, "action_type"},
      {"PUT", "/actions", R"({"action_type": "InstanceStart", "extra": 1})", 400, "extra: unknown field"},
      {"PUT", "/actions", R"({"action_type": "InstanceStart"})", 400, "kernel_image_path"},
      {"PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})", 400, "not running"},
      {"PUT", "/actions", R"({"action_type": "FlushMetrics"})", 400, "PUT /metrics first"},
      {"PATCH", "/vm", R"({"state": "Sleeping"})", 400, "state"},
      {"PATCH", "/vm", R"({"state": "Paused"})", 400, "not started"},
      {"PATCH", "/vm", R"({"state": "Resumed"})", 400, "not paused"},
      {"PUT", "/machine-config", R"({"vcpu_count": "2", "mem_size_mib": 64})", 400, "vcpu_count: expected an unsigned"},
      {"PUT", "/machine-config", R"({"vcpu_count": 2})", 400, "mem_size_mib: missing"},
      {"PUT", "/boot-source", R"({"kernel_image_path": "/nonexistent/vmlinux"})", 400, "/nonexistent/vmlinux"},
      {"PUT", "/drives/a", R"({"drive_id": "b", "path_on_host": "/x"})", 400, "does not match"},
      {"PUT", "/drives/a", R"({"drive_id": "a", "path_on_host": "/nonexistent/disk"})", 400, "/nonexistent/disk"},
      {"PUT", "/network-interfaces/e", R"({"iface_id": "e", "host_dev_name": "t", "guest_mac": "xx"})", 400,
       "guest_mac"},
      {"PUT", "/metrics", R"({"metrics_path": "/nonexistent/dir/m"})", 400, "metrics_path"},
      {"PUT", "/actions", "[1,2,3]", 400, "expected a JSON object"},
      // Migration: each field of the send and the receive named; nothing starts listening.
      {"PUT", "/vm.send-migration", "{}", 400, "destination_url: missing"},
      {"PUT", "/vm.send-migration", R"({"destination_url": "ftp:x"})", 400, "destination_url"},
      {"PUT", "/vm.send-migration", R"({"destination_url": "unix:/tmp/x", "max_rounds": 0})", 400, "max_rounds"},
      {"PUT", "/vm.send-migration", R"({"destination_url": "tcp:127.0.0.1:1", "local": true})", 400,
       "destination_url must be unix"},
      {"PUT", "/vm.send-migration", R"({"destination_url": "unix:/tmp/x", "local": true, "postcopy": true})", 400,
       "postcopy"},
      {"PUT", "/vm.send-migration", R"({"destination_url": "unix:/tmp/x", "local": true, "copy_disks": true})", 400,
       "copy_disks: a local migration keeps the disks"},
      {"PUT", "/vm.send-migration", R"({"destination_url": "unix:/tmp/x", "copy_disks": 1})", 400,
       "copy_disks: expected true or false"},
      {"PUT", "/vm.send-migration", R"({"destination_url": "unix:/tmp/x"})", 400, "must be running"},
      {"PUT", "/vm.receive-migration", "{}", 400, "receiver_url: missing"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "tcp:nowhere"})", 400, "receiver_url"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "unix:/tmp/x", "net_overrides": {}})", 400,
       "net_overrides: expected an array"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "unix:/tmp/x", "vsock_override": "/v.sock"})", 400,
       "vsock_override"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "unix:/tmp/x", "vsock_override": {}})", 400,
       "vsock_override.uds_path: missing"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "unix:/tmp/x", "vsock_override": {"uds_path": ""}})", 400,
       "vsock_override.uds_path: empty"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "unix:/tmp/x", "vsock_override": {"uds_path": 7}})", 400,
       "vsock_override.uds_path: expected a string"},
      {"PUT", "/vm.receive-migration",
       R"({"receiver_url": "unix:/tmp/x", "vsock_override": {"uds_path": "/v.sock", "cid": 3}})", 400,
       "vsock_override.cid: unknown field"},
      {"PUT", "/vm.receive-migration",
       R"({"receiver_url": "unix:/tmp/x", "vsock_override": {"uds_path": ")" + std::string(100, 'v') + R"("}})", 400,
       "too long for a unix socket"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "unix:/tmp/x", "disk_dir": "/no/such/dir"})", 400,
       "disk_dir '/no/such/dir': not a directory"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "unix:/tmp/x", "disk_dir": ""})", 400, "disk_dir: empty"},
      {"PUT", "/vm.receive-migration", R"({"receiver_url": "unix:/tmp/x", "disk_dir": 5})", 400,
       "disk_dir: expected a string"},
  };
  for (const auto& c : cases) {
    auto resp = call(api, c.method, c.path, c.body);
    EXPECT_EQ(resp.status, c.status) << c.method << " " << c.path << " " << c.body << " -> " << resp.body;
    EXPECT_NE(fault_of(resp).find(c.says), std::string::npos) << c.method << " " << c.path << ": " << resp.body;
  }
  // Nothing of the bad requests was applied.
  EXPECT_EQ(json::parse(call(api, "GET", "/vm.migration").body).value("phase", "none"), "none")
      << call(api, "GET", "/vm.migration").body;
  EXPECT_FALSE(std::ifstream("/tmp/x").good());
  auto cfg = json::parse(call(api, "GET", "/vm/config").body);
  EXPECT_FALSE(cfg.contains("boot-source")) << cfg.dump();
  EXPECT_TRUE(cfg["drives"].empty());
  EXPECT_EQ(cfg["machine-config"]["vcpu_count"], 1);
  // A good request after the bad ones.
  EXPECT_EQ(call(api, "PUT", "/boot-source", R"({"kernel_image_path": ")" + kernel + R"("})").status, 204);
  EXPECT_EQ(state("bad")["status"], "created");

  // Raw socket abuse: a client that disconnects mid-request, a 10 MB body,
  // 1000 connections at once.
  auto connect_raw = [&]() {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", api.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  };
  {
    int fd = connect_raw();
    ASSERT_GE(fd, 0);
    std::string half = "PUT /actions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"act";
    ASSERT_EQ(write(fd, half.data(), half.size()), static_cast<ssize_t>(half.size()));
    close(fd);
  }
  {
    int fd = connect_raw();
    ASSERT_GE(fd, 0);
    std::string head = "PUT /actions HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n";
    ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
    char buf[512] = {};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    EXPECT_GT(n, 0);
    EXPECT_NE(std::string(buf).find("413"), std::string::npos) << buf;
    std::string chunk(65536, 'x');
    for (int i = 0; i < 160; ++i)
      if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;  // the server closed
    close(fd);
  }
  {
    std::vector<int> fds;
    for (int i = 0; i < 1000; ++i) {
      int fd = connect_raw();
      if (fd >= 0) fds.push_back(fd);
    }
    EXPECT_GE(fds.size(), 100u);
    // While they are open, a new client is refused (503) or served, never left hanging.
    auto resp = api::call(api, "GET", "/", "", 5000);
    if (resp) {
      EXPECT_TRUE(resp->status == 200 || resp->status == 503) << resp->status;
    }
    for (int fd : fds) close(fd);
  }
  // The API answers again and the VMM's fds did not grow.
  EXPECT_TRUE(eventually([&] {
    auto resp = api::call(api, "GET", "/", "", 2000);
    return resp && resp->status == 200;
  }));
  int pid = state("bad")["pid"].get<int>();
  EXPECT_TRUE(eventually([&] { return list_dir("/proc/" + std::to_string(pid) + "/fd").size() < 20; }))
      << list_dir("/proc/" + std::to_string(pid) + "/fd").size() << " fds open in the VMM";
  EXPECT_EQ(vessel({"vm", "delete", "--force", "bad"}).status, 0);
  EXPECT_FALSE(pid_alive(pid));
}

// Firecracker's InstanceStart with a VM that cannot be built (no KVM device):
// a 400 naming the device, the VMM stays configured and serves on.
TEST_F(VmApi, FailedStartLeavesTheVmmConfigured) {
  CmdResult r = vessel({"vm", "create", "--name", "nokvm", "--kernel", tiny("poweroff"), "--kvm-device", "/nonexistent/kvm"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(state("nokvm")["status"], "created");
  r = vessel({"vm", "start", "nokvm"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("/nonexistent/kvm"), std::string::npos) << r.err;
  EXPECT_EQ(state("nokvm")["status"], "created");
  r = vessel({"vm", "stop", "nokvm"});
  EXPECT_NE(r.err.find("not running"), std::string::npos) << r.err;
  EXPECT_EQ(vessel({"vm", "kill", "nokvm"}).status, 0);
  EXPECT_EQ(state("nokvm")["status"], "stopped");
  EXPECT_EQ(vessel({"vm", "delete", "nokvm"}).status, 0);
}

TEST_F(VmApi, BadVerbInput) {
  auto one_line = [](const CmdResult& r, const std::string& what) {
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(r.err.rfind("vessel: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << "expected '" << what << "' in: " << r.err;
  };
  one_line(vessel({"vm", "state", "ghost"}), "'ghost' does not exist");
  one_line(vessel({"vm", "pause", "ghost"}), "'ghost' does not exist");
  one_line(vessel({"vm", "delete", "ghost"}), "'ghost' does not exist");
  one_line(vessel({"vm", "state", "../etc"}), "may only contain");
  one_line(vessel({"vm", "run", "-d", "--name", "x", "--serial", "stdio", "--kernel", "/k"}), "--serial stdio");
  one_line(vessel({"vm", "run", "--name", "x", "--kernel", "/k"}), "--name needs -d");
  std::string cfg = dir_ + "/bad.json";
  std::ofstream(cfg) << R"({"boot-source": {"kernel_image_path": "/k"}, "drives": [{"drive_id": "a", "path_on_host": 5}]})";
  one_line(vessel({"vm", "run", "--config-file", cfg}), "drives[0].path_on_host: expected a string");
  one_line(vessel({"vm", "run", "--config-file", cfg, "--kernel", "/k"}), "--kernel cannot be combined");
  // Failures of the VMM itself come back through `run -d`, leaving nothing.
  one_line(vessel({"vm", "run", "-d", "--name", "nokernel", "--kernel", "/nonexistent/vmlinuz"}), "/nonexistent/vmlinuz");
  EXPECT_TRUE(list_dir(root_ + "/vm").empty());
}

TEST_F(VmApi, ConfigFileInFirecrackerFormat) {
  VESSEL_REQUIRE_KVM();
  std::string cfg = dir_ + "/vm.json";
  std::ofstream(cfg) << R"({
    "boot-source": {"kernel_image_path": ")" + tiny("poweroff", "from config\n") + R"(", "boot_args": "console=ttyS0"},
    "drives": [],
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 64, "smt": false, "track_dirty_pages": false},
    "network-interfaces": []
  })";
  std::string serial = dir_ + "/serial.txt";
  CmdResult r = vessel({"vm", "run", "--config-file", cfg, "--serial", "file:" + serial});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(slurp(serial), "from config\n");
}

}  // namespace
}  // namespace vessel::vmm::testing
