// runc parity (issue 17, "Hooks and seccomp"): each test passes against runc too
// (VESSEL=runc), unless it says why not.
#include <poll.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class ParityHooks : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    config_["process"]["capabilities"].erase("ambient");
    config_["linux"].erase("seccomp");
  }
  // A host hook: `sh -c SCRIPT` (the state on its stdin), with `env` when given.
  Json hook(const std::string& script, const std::vector<std::string>& env = {}) {
    Json h = {{"path", "/bin/sh"}, {"args", {"sh", "-c", script}}};
    if (!env.empty()) h["env"] = env;
    return h;
  }
};

// State, working directory and environment of each kind of hook, as runc gives them:
// prestart and createRuntime see `creating` and run in the bundle, createContainer runs in
// the rootfs; without an env of its own a hook inherits the runtime's, with one it gets only that.
TEST_F(ParityHooks, StateCwdAndEnvironment) {
  std::string out = dir_ + "/hooks.out";
  auto rec = [&](const std::string& name) {
    return "{ echo \"" + name + " $(pwd) mark=${PARITY2_MARK:-none} only=${ONLY:-none}\"; "
           "grep -o '\"status\": *\"[a-z]*\"' | tr -d ' '; } >> " + out;
  };
  // createContainer runs from the container's init: runc's has an environment of its own
  // (crun's and vessel's, the runtime's), so only its directory and state are compared.
  std::string in_init = "{ echo \"createContainer $(pwd)\"; grep -o '\"status\": *\"[a-z]*\"' | tr -d ' '; } >> " + out;
  config_["hooks"] = {{"prestart", {hook(rec("prestart"))}},
                      {"createRuntime", {hook(rec("createRuntime"), {"ONLY=1", "PATH=/usr/bin:/bin"})}},
                      {"createContainer", {hook(in_init)}}};
  ::setenv("PARITY2_MARK", "inherited", 1);
  Output o = run_script("true");
  ::unsetenv("PARITY2_MARK");
  EXPECT_EQ(o.status, 0) << o.err;
  std::string rootfs = bundle_ + "/rootfs";
  EXPECT_EQ(slurp(out), "prestart " + bundle_ + " mark=inherited only=none\n\"status\":\"creating\"\n"
                        "createRuntime " + bundle_ + " mark=none only=1\n\"status\":\"creating\"\n"
                        "createContainer " + rootfs + "\n\"status\":\"creating\"\n");
}

// startContainer hooks run in the container as its process will: under its seccomp filter
// and with only its fds; their state says `created`.
TEST_F(ParityHooks, StartContainerRunsAsTheProcess) {
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
  config_["root"]["readonly"] = false;
  config_["hooks"]["startContainer"] = {
      {{"path", "/bin/sh"},
       {"args", {"sh", "-c",
                 "{ mkdir /tmp/d 2>/dev/null && echo mkdir-ok || echo mkdir-refused;"
                 "  ls /proc/self/fd | tr '\\n' ' '; echo; grep -o '\"status\": *\"[a-z]*\"' | tr -d ' '; } > /tmp/hook.out"}}}};
  Output o = run_script("cat /tmp/hook.out");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "mkdir-refused\n0 1 2 3 \n\"status\":\"created\"\n") << o.err;
}

// A hook's stdout and stderr are collected, as runc collects them: never in the
// container's or the caller's streams, and in the error when it fails.
TEST_F(ParityHooks, HookOutputShowsOnlyInTheErrorOfAFailure) {
  config_["hooks"]["createRuntime"] = {hook("echo hook-says-hello; echo hook-warns >&2")};
  Output good = run_script("echo from-the-process");
  EXPECT_EQ(good.status, 0) << good.err;
  EXPECT_EQ(good.out, "from-the-process\n");
  EXPECT_EQ(good.err.find("hook-"), std::string::npos) << good.err;
  config_["hooks"]["createRuntime"] = {hook("echo partial; echo went-wrong >&2; exit 4")};
  Output bad = run_script("true", "c2");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("stdout: partial"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("stderr: went-wrong"), std::string::npos) << bad.err;
  if (!testing_peer())
    EXPECT_NE(bad.err.find("error running createRuntime hook #0: /bin/sh: exited with status 4"), std::string::npos)
        << bad.err;
}

// A startContainer hook without an env of its own gets the process's (runc's hooks.bats).
TEST_F(ParityHooks, StartContainerHookWithoutAnEnvGetsTheProcesss) {
  config_["process"]["env"] = {"PATH=/bin", "ONE=two", "ONE=three"};
  config_["hooks"]["startContainer"] = {
      {{"path", "/bin/sh"}, {"args", {"sh", "-c", "test \"$ONE\" = three && test \"$HOME\" = /root"}}}};
  Output o = run_script("echo ran");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "ran\n");
}

// A failing poststop hook is logged and the next ones still run (runtime-spec, crun).
TEST_F(ParityHooks, PoststopHooksAllRunAfterAFailure) {
  if (testing_peer()) GTEST_SKIP() << "runc 1.1.5 stops at the first failing poststop hook";
  std::string marker = dir_ + "/second-ran";
  config_["hooks"]["poststop"] = {hook("exit 3"), hook("touch " + marker)};
  Output o = run_script("true");
  EXPECT_EQ(o.status, 0) << o.err;
  struct stat st{};
  EXPECT_EQ(::stat(marker.c_str(), &st), 0) << "the second poststop hook did not run: " << o.err;
  EXPECT_NE(o.err.find("error running poststop hook #0"), std::string::npos) << o.err;
}

// A syscall numbered above all the profile names (newer than the profile) gets ENOSYS, so
// that a C library falls back, while one it knows and does not allow gets the default
// (EPERM), as runc's patched filter does. perl (from the host's /usr) makes the raw calls.
TEST_F(ParityHooks, SyscallNewerThanTheProfileGetsEnosys) {
  if (::access("/usr/bin/perl", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/perl";
  config_["mounts"].push_back({{"destination", "/usr"}, {"type", "bind"}, {"source", "/usr"}, {"options", {"rbind", "ro"}}});
  for (const char* l : {"lib", "lib64"}) ::symlink((std::string("usr/") + l).c_str(), (bundle_ + "/rootfs/" + l).c_str());
  // Everything up to rseq (334) but getppid (110).
  Json names = Json::array();
  for (int nr = 0; nr <= 334; ++nr) {
    if (nr == 110) continue;
    char* name = ::seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
    if (name) names.push_back(name);
    std::free(name);
  }
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ERRNO"},
                                 {"architectures", {"SCMP_ARCH_X86_64"}},
                                 {"syscalls", {{{"names", names}, {"action", "SCMP_ACT_ALLOW"}}}}};
  // faccessat2 is 439; getppid 110.
  config_["process"]["args"] = {"/usr/bin/perl", "-e",
                                "my $p = q(/); $!=0; syscall(439, -100, $p, 0, 0); print $!+0, qq(\\n); $!=0; syscall(110); print $!+0, qq(\\n);"};
  write_config();
  Output o = vessel({"run", "--bundle", bundle_, "c1"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "38\n1\n") << "ENOSYS (38) for the newer call, EPERM (1) for the refused one; " << o.err;
}

// SCMP_ACT_NOTIFY on write is refused: the runtime's own write would wait for the agent.
TEST_F(ParityHooks, NotifyOnWriteIsRefused) {
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"listenerPath", dir_ + "/agent.sock"},
                                 {"syscalls", {{{"names", {"write"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  Output o = run_script("echo never");
  EXPECT_NE(o.status, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find("SCMP_ACT_NOTIFY cannot be used for the write syscall"), std::string::npos) << o.err;
}

// exec into a container whose profile notifies: the exec'd process's listener fd goes to
// the agent too, which answers its calls.
TEST_F(ParityHooks, ExecIntoANotifyContainer) {
  std::string sock = dir_ + "/agent.sock";
  int srv = listen_unix(sock);
  ASSERT_GE(srv, 0);
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"listenerPath", sock},
                                 {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  std::atomic<bool> stop{false};
  std::atomic<int> listeners{0}, answered{0};
  std::thread agent([&] {
    std::vector<int> fds;
    while (!stop) {
      std::vector<pollfd> p{{srv, POLLIN, 0}};
      for (int fd : fds) p.push_back({fd, POLLIN, 0});
      if (::poll(p.data(), p.size(), 50) <= 0) continue;
      if (p[0].revents & POLLIN) {
        int fd = accept_fd(srv);
        if (fd >= 0) {
          fds.push_back(fd);
          ++listeners;
        }
      }
      for (size_t i = 1; i < p.size(); ++i) {
        if (!(p[i].revents & POLLIN)) continue;
        seccomp_notif* req = nullptr;
        seccomp_notif_resp* resp = nullptr;
        if (seccomp_notify_alloc(&req, &resp) != 0) continue;
        if (seccomp_notify_receive(p[i].fd, req) == 0) {
          resp->id = req->id;
          resp->error = 0;
          resp->val = 0;
          resp->flags = 0;
          if (seccomp_notify_respond(p[i].fd, resp) == 0) ++answered;
        }
        seccomp_notify_free(req, resp);
      }
    }
    for (int fd : fds) ::close(fd);
  });
  set_script("exec sleep 1000");
  write_config();
  Output r = vessel({"run", "-d", "--bundle", bundle_, "c1"});
  EXPECT_EQ(r.status, 0) << r.err;
  Output e = vessel({"exec", "c1", "sh", "-c", "mkdir /tmp/made && echo mkdir-ok; test -d /tmp/made || echo not-made"});
  vessel({"delete", "--force", "c1"});
  stop = true;
  agent.join();
  ::close(srv);
  EXPECT_EQ(e.status, 0) << e.err;
  EXPECT_EQ(e.out, "mkdir-ok\nnot-made\n") << e.err;
  EXPECT_EQ(listeners.load(), 2) << "one listener for the init, one for the exec'd process";
  EXPECT_GE(answered.load(), 1);
}

}  // namespace
}  // namespace vessel::testing
