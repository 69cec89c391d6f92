// linux.seccomp through the real binary: errno, kill, notify, and the default profile.
#include <poll.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class Seccomp : public ContainerTest {};

TEST_F(Seccomp, DeniedSyscallReturnsItsErrno) {
  config_["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 13}},
                    {{"names", {"no_such_syscall_name"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
  Output o = run_script("grep ^Seccomp: /proc/self/status; mkdir /dev/shm/d 2>&1; echo rc=$?");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("Seccomp:\t2"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("Permission denied"), std::string::npos) << o.out;  // EACCES = 13
  EXPECT_NE(o.out.find("rc=1"), std::string::npos) << o.out;
}

TEST_F(Seccomp, ArgumentConditions) {
  // umask(0777) is refused, umask(022) is fine.
  config_["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"umask"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1},
                     {"args", {{{"index", 0}, {"value", 0777}, {"op", "SCMP_CMP_EQ"}}}}}}}};
  Output o = run_script("umask 022 && echo ok-022; umask 0777; umask");
  EXPECT_NE(o.out.find("ok-022"), std::string::npos) << o.out << o.err;
  EXPECT_NE(o.out.find("0022"), std::string::npos) << "umask 0777 must not have taken effect: " << o.out;
}

TEST_F(Seccomp, KillActionKills) {
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"syscalls", {{{"names", {"sync"}}, {"action", "SCMP_ACT_KILL_PROCESS"}}}}};
  ::symlink("busybox", (bundle_ + "/rootfs/bin/sync").c_str());
  Output o = run_script("sync; echo status=$?");
  EXPECT_NE(o.out.find("status=159"), std::string::npos) << "killed by SIGSYS: " << o.out << o.err;
}

TEST_F(Seccomp, DefaultProfileDeniesPrivilegedCalls) {
  // `vessel spec --hardened` adds the default profile: mount and unshare are not on its allow-list.
  std::string hard = dir_ + "/hardened";
  ::mkdir(hard.c_str(), 0755);
  ASSERT_EQ(vessel({"spec", "--hardened", "--bundle", hard}).status, 0);
  std::ifstream hf(hard + "/config.json");
  config_["linux"]["seccomp"] = nlohmann::json::parse(hf)["linux"]["seccomp"];
  config_["process"]["capabilities"]["bounding"].push_back("CAP_SYS_ADMIN");
  config_["process"]["capabilities"]["effective"].push_back("CAP_SYS_ADMIN");
  config_["process"]["capabilities"]["permitted"].push_back("CAP_SYS_ADMIN");
  Output o = run_script("mount -t tmpfs t /tmp 2>&1; echo rc=$?");
  EXPECT_NE(o.out.find("ermission denied"), std::string::npos) << o.out << o.err;
  EXPECT_NE(o.out.find("rc=1"), std::string::npos) << o.out;
  // The same with no filter: the capability alone would have allowed it.
  config_["linux"].erase("seccomp");
  Output free = run_script("mount -t tmpfs t /tmp 2>&1; echo rc=$?", "c2");
  EXPECT_NE(free.out.find("rc=0"), std::string::npos) << free.out << free.err;
}

TEST_F(Seccomp, UnknownActionIsAnError) {
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_EXPLODE"}};
  write_config();
  Output o = vessel({"create", "--bundle", bundle_, "c1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_EXPLODE\""), std::string::npos) << o.err;
}

TEST_F(Seccomp, NotifyListenerGetsTheFdAndAnswers) {
  std::string sock = dir_ + "/listener.sock";
  int srv = listen_unix(sock);
  ASSERT_GE(srv, 0);
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"listenerPath", sock},
                                 {"listenerMetadata", "hello-agent"},
                                 {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  std::string payload;
  std::atomic<int> answered{0};
  std::thread agent([&] {
    int fd = accept_fd(srv, &payload);
    if (fd < 0) return;
    // Answer every notified mkdir with success, without doing it.
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0 || (p.revents & (POLLHUP | POLLERR))) break;
      seccomp_notif* req = nullptr;
      seccomp_notif_resp* resp = nullptr;
      if (seccomp_notify_alloc(&req, &resp) != 0) break;
      if (seccomp_notify_receive(fd, req) == 0) {
        resp->id = req->id;
        resp->error = 0;
        resp->val = 0;
        resp->flags = 0;
        if (seccomp_notify_respond(fd, resp) == 0) ++answered;
      }
      seccomp_notify_free(req, resp);
    }
    ::close(fd);
  });
  Output o = run_script("mkdir /dev/shm/made && echo mkdir-ok; test -d /dev/shm/made && echo exists || echo not-made");
  ::shutdown(srv, SHUT_RDWR);
  ::close(srv);
  agent.join();
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "mkdir-ok\nnot-made\n") << "the agent answered instead of the kernel";
  EXPECT_GE(answered.load(), 1);
  ASSERT_FALSE(payload.empty());
  Json j = Json::parse(payload);
  EXPECT_EQ(j["fds"], Json::array({"seccompFd"}));
  EXPECT_EQ(j["metadata"], "hello-agent");
  EXPECT_EQ(j["state"]["id"], "c1");
  EXPECT_GT(j["pid"].get<int>(), 0);
}

}  // namespace
}  // namespace vessel::testing
