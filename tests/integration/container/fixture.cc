#include "integration/container/fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "cgroups/paths.h"

namespace vessel::testing {

std::string runtime_binary() {
  const char* env = std::getenv("VESSEL");
  return env && *env ? env : VESSEL_BINARY;
}

bool testing_peer() { return runtime_binary() != VESSEL_BINARY; }

Output run_command(const std::vector<std::string>& args, const std::string& input, int timeout_s) {
  int in[2], out[2], err[2];
  EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (!input.empty()) (void)!::write(in[1], input.data(), input.size());
  ::close(in[1]);
  Output o;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  // Read until the command exits; a detached container keeps our pipes open, so
  // EOF is not the end: after the exit, take what is buffered and stop.
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  ::fcntl(err[0], F_SETFL, O_NONBLOCK);
  char buf[4096];
  auto drain = [&] {
    for (int i = 0; i < 2; ++i) {
      ssize_t n;
      while ((n = ::read(i == 0 ? out[0] : err[0], buf, sizeof buf)) > 0) (i == 0 ? o.out : o.err).append(buf, static_cast<size_t>(n));
    }
  };
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    drain();
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "timed out: " << args[0] << " " << (args.size() > 3 ? args[3] : "");
      break;
    }
    pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    ::poll(p, 2, 5);
  }
  drain();
  ::close(out[0]);
  ::close(err[0]);
  o.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return o;
}

static void make_rootfs(const std::string& rootfs) {
  for (const char* d : {"", "/bin", "/proc", "/dev", "/sys", "/tmp", "/etc"}) ::mkdir((rootfs + d).c_str(), 0755);
  std::ifstream src("/bin/busybox", std::ios::binary);
  std::ofstream dst(rootfs + "/bin/busybox", std::ios::binary);
  dst << src.rdbuf();
  dst.close();
  ::chmod((rootfs + "/bin/busybox").c_str(), 0755);
  for (const char* a : {"sh", "cat", "echo", "ls", "id", "hostname", "sleep", "touch", "grep", "mount", "readlink", "stat",
                        "true", "false", "wc", "head", "ps", "kill", "mkdir", "domainname", "nproc", "test", "env",
                        "pwd", "umask", "ulimit", "uname", "dd", "ln", "rm", "find", "awk", "sed", "printf", "tr"})
    ::symlink("busybox", (rootfs + "/bin/" + a).c_str());
  std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
  std::ofstream(rootfs + "/etc/group") << "root:x:0:\n";
}

void ContainerTest::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (containers)";
  if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs /bin/busybox (apt-get install busybox-static)";
  char tmpl[] = "/tmp/vessel-itest-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  bundle_ = dir_ + "/bundle";
  root_ = dir_ + "/state";
  ::mkdir(bundle_.c_str(), 0755);
  make_rootfs(bundle_ + "/rootfs");
  Output o = run_command({runtime_binary(), "spec", "--bundle", bundle_});
  ASSERT_EQ(o.status, 0) << o.err;
  std::ifstream f(bundle_ + "/config.json");
  config_ = nlohmann::json::parse(f);
  config_["process"]["terminal"] = false;
}

void ContainerTest::TearDown() {
  if (dir_.empty()) return;
  for (const auto& id : state_entries()) run_command({runtime_binary(), "--root", root_, "delete", "--force", id});
  run_command({"rm", "-rf", dir_});
}

Output ContainerTest::vessel(const std::vector<std::string>& args, const std::string& input, int timeout_s) {
  std::vector<std::string> full = {runtime_binary(), "--root", root_};
  full.insert(full.end(), args.begin(), args.end());
  return run_command(full, input, timeout_s);
}

void ContainerTest::write_config() {
  std::ofstream f(bundle_ + "/config.json");
  f << config_.dump(2);
}

void ContainerTest::set_script(const std::string& script) { config_["process"]["args"] = {"sh", "-c", script}; }

Output ContainerTest::run_script(const std::string& script, const std::string& id) {
  set_script(script);
  write_config();
  return vessel({"run", "--bundle", bundle_, id});
}

int listen_unix(const std::string& path) {
  int srv = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(srv, 4) < 0) {
    ::close(srv);
    return -1;
  }
  return srv;
}

int accept_fd(int srv, std::string* payload) {
  int c = ::accept(srv, nullptr, nullptr);
  if (c < 0) return -1;
  char buf[8192];
  char cbuf[CMSG_SPACE(sizeof(int))];
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  int fd = -1;
  ssize_t n = ::recvmsg(c, &msg, 0);
  if (n > 0 && CMSG_FIRSTHDR(&msg)) std::memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(int));
  if (n > 0 && payload) payload->assign(buf, static_cast<size_t>(n));
  ::close(c);
  return fd;
}

bool process_running(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all;
  if (!std::getline(f, all)) return false;
  auto close = all.rfind(')');
  return close != std::string::npos && all.size() > close + 2 && all[close + 2] != 'Z';
}

pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid, int timeout_ms) {
  for (int waited = 0;; waited += 5) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 || waited >= timeout_ms) return -1;
    ::usleep(5000);
  }
}

std::vector<std::string> cgroup_mounts() {
  std::ifstream f("/proc/self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp, field;
    ss >> id >> parent >> dev >> root >> mp;
    while (ss >> field && field != "-") {
    }
    std::string fstype;
    ss >> fstype;
    if ((fstype == "cgroup" || fstype == "cgroup2") && std::find(out.begin(), out.end(), mp) == out.end())
      out.push_back(mp);
  }
  return out;
}

std::vector<int> processes_with_env(const std::string& entry) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/environ", std::ios::binary);
    std::string env((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t at = 0;
    while ((at = env.find(entry, at)) != std::string::npos) {
      bool starts = at == 0 || env[at - 1] == '\0';
      bool ends = at + entry.size() == env.size() || env[at + entry.size()] == '\0';
      if (starts && ends && process_running(pid)) {
        out.push_back(pid);
        break;
      }
      at += entry.size();
    }
  }
  ::closedir(d);
  return out;
}

std::vector<std::string> ContainerTest::mount_points() {
  std::ifstream f("/proc/self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp;
    ss >> id >> parent >> dev >> root >> mp;
    out.push_back(mp);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ContainerTest::cgroup_path(const std::string& id) const {
  return "/vessel/" + cgroups::default_cgroup_name(id, root_);
}

std::vector<std::string> ContainerTest::state_entries() const {
  std::vector<std::string> out;
  DIR* d = ::opendir(root_.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n[0] != '.') out.push_back(n);  // .seccomp-cache and the like are not containers
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vessel::testing
