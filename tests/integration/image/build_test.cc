// `vessel image build` end to end (root): a two-stage recipe built from a
// busybox image, run, rebuilt from the cache, rebuilt after a change; ADD and
// FROM scratch; bad recipes; a hostile context and base image.
#include <chrono>

#include "integration/image/image_fixture.h"

namespace vessel::image::testing {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

class BuildTest : public ImageFixture {
 protected:
  void SetUp() override {
    ImageFixture::SetUp();
    if (dir_.empty()) return;
    ctx_ = dir_ + "/ctx";
    ASSERT_TRUE(mkdir_p(ctx_).ok());
  }
  // A busybox image named `name` (plus `extra` files).
  void base_image(const std::string& name, const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    std::string tar = dir_ + "/" + name + ".tar";
    busybox_tar(tar, extra);
    auto imp = vessel({"image", "import", tar, "--name", name});
    ASSERT_EQ(imp.status, 0) << imp.err;
  }
  void put(const std::string& rel, const std::string& data) {
    auto p = ctx_ + "/" + rel;
    ASSERT_TRUE(mkdir_p(p.substr(0, p.rfind('/'))).ok());
    ASSERT_TRUE(write_file(p, data).ok());
  }
  Output build(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"image", "build", "-t", "built"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(ctx_);
    return vessel(args);
  }
  // Nothing of a build is left behind: no mounts, no work dirs, no containers.
  void expect_clean() {
    EXPECT_FALSE(mounted_below(images_));
    auto tmp = run_command({"sh", "-c", "ls -A " + images_ + "/tmp " + images_ + "/containers"});
    EXPECT_EQ(tmp.out, images_ + "/containers:\n\n" + images_ + "/tmp:\n") << tmp.out;
    auto list = vessel({"list", "-q"});
    EXPECT_EQ(list.out, "");
  }

  std::string ctx_;
};

constexpr const char* kTwoStage = R"(# two stages: build an artifact, then copy it into a fresh image
ARG GREETING_DEFAULT=hello
FROM base AS build
RUN mkdir -p /out && echo built > /out/artifact && cat /proc/sys/kernel/random/uuid > /out/stamp \
    && echo RUN-EXECUTED
FROM base
ARG GREETING_DEFAULT
ENV GREETING="${GREETING_DEFAULT} world" EMPTY=
COPY --from=build /out /app/
COPY msg.txt sub /app/
RUN rm /etc/motd && echo RUN-EXECUTED
WORKDIR /app
LABEL org.example.test=yes
EXPOSE 8080
CMD ["/bin/sh", "-c", "echo $GREETING; cat artifact msg.txt dir/a.txt; test -e /etc/motd || echo motd-gone; test -e secret.txt || echo no-secret; pwd"]
)";

TEST_F(BuildTest, TwoStageRecipeRunsAndRebuildsFromTheCache) {
  base_image("base", {{"etc/motd", "welcome\n"}});
  put("Dockerfile", kTwoStage);
  put("msg.txt", "from the context\n");
  put("sub/dir/a.txt", "A\n");
  put("secret.txt", "do not copy\n");
  put(".dockerignore", "# not sent\nsecret.txt\n");

  auto b1 = build();
  ASSERT_EQ(b1.status, 0) << b1.err;
  ASSERT_EQ(b1.out.rfind("sha256:", 0), 0u) << b1.out;
  EXPECT_EQ(count(b1.err, "RUN-EXECUTED"), 2u) << b1.err;
  expect_clean();

  auto run = vessel({"run", "--image", "built", "--rm", "--name", "b1"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "hello world\nbuilt\nfrom the context\nA\nmotd-gone\nno-secret\n/app\n");

  auto inspect = vessel({"image", "inspect", "built"});
  ASSERT_EQ(inspect.status, 0) << inspect.err;
  auto info = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(info["layers"].size(), 4u);  // base + COPY + COPY + RUN (the first stage is not in it)
  EXPECT_EQ(info["workingDir"], "/app");
  EXPECT_NE(info["env"].dump().find("GREETING=hello world"), std::string::npos) << info["env"];

  // Nothing changed: every layer step from the cache, no RUN, the same image.
  auto b2 = build();
  ASSERT_EQ(b2.status, 0) << b2.err;
  EXPECT_EQ(b2.out, b1.out);
  EXPECT_EQ(count(b2.err, "RUN-EXECUTED"), 0u) << b2.err;

  // A changed context file: its COPY and the RUN after it run again, the first stage does not.
  put("msg.txt", "changed\n");
  auto b3 = build();
  ASSERT_EQ(b3.status, 0) << b3.err;
  EXPECT_NE(b3.out, b1.out);
  EXPECT_EQ(count(b3.err, "RUN-EXECUTED"), 1u) << b3.err;

  // A build argument reaches ENV; --no-cache runs both RUNs; -q hides their output.
  auto b4 = build({"--build-arg", "GREETING_DEFAULT=bye", "--no-cache", "-q"});
  ASSERT_EQ(b4.status, 0) << b4.err;
  EXPECT_EQ(count(b4.err, "RUN-EXECUTED"), 0u) << b4.err;
  auto run4 = vessel({"run", "--image", "built", "--rm", "--name", "b4"});
  EXPECT_EQ(run4.out.substr(0, run4.out.find('\n')), "bye world") << run4.err;
  expect_clean();
}

TEST_F(BuildTest, AddUnpacksArchivesIntoScratch) {
  busybox_tar(dir_ + "/ctx/rootfs.tar.gz", {{"etc/from-tar", "yes\n"}}, "gzip");
  put("Dockerfile",
      "FROM scratch\nADD rootfs.tar.gz /\nCOPY --chown=app --chmod=640 note.txt /home/\nUSER app\n"
      "ENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"id -u; id -g; cat /etc/from-tar; stat -c '%a %u:%g' /home/note.txt\"]\n");
  put("note.txt", "n\n");
  auto b = build();
  ASSERT_EQ(b.status, 0) << b.err;
  auto run = vessel({"run", "--image", "built", "--rm", "--name", "b2"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "1000\n1000\nyes\n640 1000:1000\n");
  expect_clean();
}

TEST_F(BuildTest, BadRecipesFailClearlyAndLeaveNothing) {
  base_image("base");
  struct Case {
    std::string recipe, message;
  } cases[] = {
      {"FROM base\nFROB x\n", "line 2"},
      {"FROM nosuchimage\n", "nosuchimage"},
      {"FROM base\nCOPY missing.txt /\n", "missing.txt"},
      {"FROM base\nRUN echo partial > /f; exit 3\n", "status 3"},
      {"FROM base\nCOPY --bogus=1 a /\n", "--bogus"},
      {"FROM base\nCOPY ../outside /\n", "outside the build context"},
      {"FROM base\nADD http://example.com/x /\n", "URLs"},
      {"FROM base\nUSER nobody\nRUN true\n", "nobody"},
      {"FROM base\nEXPOSE 99999\n", "99999"},
  };
  for (auto& c : cases) {
    put("Dockerfile", c.recipe);
    auto b = build();
    EXPECT_NE(b.status, 0) << c.recipe;
    EXPECT_NE(b.err.find(c.message), std::string::npos) << c.recipe << " -> " << b.err;
    expect_clean();
  }
  EXPECT_NE(vessel({"image", "build", "-t", "x", dir_ + "/nonexistent"}).status, 0);
  EXPECT_NE(vessel({"image", "build", "-t", "bad name!", ctx_}).status, 0);
}

TEST_F(BuildTest, HostileContextAndBaseStayInside) {
  // A RUN leaves /target as an absolute symlink to a path of the host; COPY through it must stay in the image.
  std::string host_victim = dir_ + "/victim";
  ASSERT_TRUE(mkdir_p(host_victim).ok());
  base_image("base");
  ASSERT_EQ(::symlink("/etc", (ctx_ + "/etc-link").c_str()), 0);
  put("file.txt", "payload\n");
  put("Dockerfile", "FROM base\nRUN /bin/busybox ln -s " + host_victim + " /target\nCOPY file.txt /target/\n");
  auto b = build();
  ASSERT_EQ(b.status, 0) << b.err;
  // The copy went into the image's own tree, never to the host directory.
  EXPECT_FALSE(path_exists(host_victim + "/file.txt"));
  auto run = vessel({"run", "--image", "built", "--rm", "--name", "b3", "--", "cat", host_victim + "/file.txt"});
  EXPECT_EQ(run.out, "payload\n") << run.err;
  // A symlink in the context resolves inside the context: /etc of the host is not reachable.
  put("Dockerfile", "FROM base\nCOPY etc-link/shadow /\n");
  auto b2 = build();
  EXPECT_NE(b2.status, 0);
  EXPECT_NE(b2.err.find("etc-link/shadow"), std::string::npos) << b2.err;
  expect_clean();
}

TEST_F(BuildTest, BaseImageConfigOfWrongTypesIsNoCrash) {
  busybox_tar(dir_ + "/bb.tar");
  oci_layout(dir_ + "/layout", {dir_ + "/bb.tar"}, "localhost/odd:1",
             {{"WorkingDir", 7}, {"Labels", "x"}, {"Env", "y"}, {"User", 5}, {"Cmd", "sh"}, {"ExposedPorts", 1}});
  ASSERT_EQ(vessel({"image", "import", dir_ + "/layout"}).status, 0);
  put("Dockerfile", "FROM localhost/odd:1\nLABEL a=b\nEXPOSE 80\nVOLUME /v\nRUN echo ok > /ok\nCMD [\"cat\", \"/ok\"]\n");
  auto b = build();
  ASSERT_EQ(b.status, 0) << b.err;
  auto run = vessel({"run", "--image", "built", "--rm", "--name", "b7"});
  EXPECT_EQ(run.out, "ok\n") << run.err;
  expect_clean();
}

TEST_F(BuildTest, RunResolvesNamesLikeTheHostAndLeavesNoResolvConf) {
  if (!path_exists("/etc/resolv.conf")) GTEST_SKIP() << "the host has no /etc/resolv.conf";
  base_image("base", {{"etc/hosts", "127.0.0.1 from-the-image\n"}});
  put("Dockerfile",
      "FROM base\nRUN cat /etc/resolv.conf > /resolv.copy; cat /etc/hosts > /hosts.copy; echo x > /etc/resolv.conf || echo read-only\n"
      "CMD [\"sh\", \"-c\", \"test -e /etc/resolv.conf && echo has-resolv || echo no-resolv; cat /etc/hosts\"]\n");
  auto b = build();
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.err.find("read-only"), std::string::npos) << b.err;
  auto run = vessel({"run", "--image", "built", "--rm", "--name", "b8"});
  EXPECT_EQ(run.out, "no-resolv\n127.0.0.1 from-the-image\n") << run.err;
  auto copy = vessel({"run", "--image", "built", "--rm", "--name", "b9", "--", "cat", "/resolv.copy", "/hosts.copy"});
  EXPECT_EQ(copy.out, slurp("/etc/resolv.conf") + slurp("/etc/hosts")) << copy.err;
  expect_clean();
}

TEST_F(BuildTest, SigtermStopsALongRunAndCleansUp) {
  base_image("base");
  put("Dockerfile", "FROM base\nRUN echo started; sleep 60\n");
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_command({"sh", "-c",
                        "\"$0\" --root \"$1\" --image-root \"$2\" image build -t built \"$3\" & b=$!; sleep 2; kill -TERM $b; "
                        "wait $b; echo rc=$?",
                        VESSEL_BINARY, state_, images_, ctx_},
                       "", 60);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.out, "rc=1\n") << r.err;
  EXPECT_NE(r.err.find("started"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
  EXPECT_LT(secs, 20) << "the RUN was not stopped";
  EXPECT_NE(vessel({"image", "inspect", "built"}).status, 0);
  expect_clean();
}

TEST_F(BuildTest, PruneRemovesWhatOnlyTheCacheUsed) {
  base_image("base");
  put("Dockerfile", "FROM base AS first\nRUN echo tmp > /t\nFROM base\nCOPY --from=first /t /kept\n");
  ASSERT_EQ(build().status, 0);
  auto layers_before = run_command({"sh", "-c", "ls " + images_ + "/layers | wc -l"}).out;
  EXPECT_EQ(layers_before, "3\n");  // base, the first stage's RUN, the COPY
  auto prune = vessel({"image", "prune"});
  ASSERT_EQ(prune.status, 0) << prune.err;
  EXPECT_NE(prune.out.find("1 layers"), std::string::npos) << prune.out;
  EXPECT_EQ(run_command({"sh", "-c", "ls " + images_ + "/layers | wc -l"}).out, "2\n");
  auto run = vessel({"run", "--image", "built", "--rm", "--name", "b5", "--", "cat", "/kept"});
  EXPECT_EQ(run.out, "tmp\n") << run.err;
  // The pruned step runs again; the kept COPY is still cached.
  auto again = build({"--progress"});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(count(again.err, "Using cache"), 1u) << again.err;
  // With the image gone, prune leaves only the base image.
  ASSERT_EQ(vessel({"image", "rm", "built"}).status, 0);
  ASSERT_EQ(vessel({"image", "prune"}).status, 0);
  EXPECT_EQ(run_command({"sh", "-c", "ls " + images_ + "/layers | wc -l"}).out, "1\n");
  EXPECT_EQ(vessel({"run", "--image", "base", "--rm", "--name", "b6", "--", "sh", "-c", "exit 0"}).status, 0);
  expect_clean();
}

TEST_F(BuildTest, RebuildLeavesADanglingImageThatPruneRemovesAndTagKeeps) {
  base_image("base");
  put("Dockerfile", "FROM base\nRUN echo one > /v\n");
  ASSERT_EQ(build().status, 0);
  auto tag = vessel({"image", "tag", "built", "localhost/keep:v1"});
  ASSERT_EQ(tag.status, 0) << tag.err;
  put("Dockerfile", "FROM base\nRUN echo two > /v\n");
  ASSERT_EQ(build().status, 0);
  put("Dockerfile", "FROM base\nRUN echo three > /v\n");
  ASSERT_EQ(build().status, 0);  // "two" lost its only name: dangling
  auto prune = vessel({"image", "prune"});
  ASSERT_EQ(prune.status, 0) << prune.err;
  EXPECT_NE(prune.out.find("removed 1 dangling images"), std::string::npos) << prune.out;
  auto ls = nlohmann::json::parse(vessel({"image", "ls", "--format", "json"}).out);
  EXPECT_EQ(ls.size(), 3u) << ls.dump();  // base, built ("three"), localhost/keep:v1 ("one")
  EXPECT_EQ(vessel({"run", "--image", "localhost/keep:v1", "--rm", "--name", "b10", "--", "cat", "/v"}).out, "one\n");
  EXPECT_EQ(vessel({"run", "--image", "built", "--rm", "--name", "b11", "--", "cat", "/v"}).out, "three\n");
  EXPECT_NE(vessel({"image", "tag", "nosuch", "x:y"}).status, 0);
  EXPECT_NE(vessel({"image", "tag", "built", "Bad Name"}).status, 0);
  expect_clean();
}

TEST_F(BuildTest, BuiltImageLoadsIntoPodmanAndRunsWithVesselAsRuntime) {
  if (!have_tool("podman")) GTEST_SKIP() << "podman is not installed";
  base_image("base");
  put("Dockerfile", "FROM base\nRUN echo built-by-vessel > /msg\nENV WHO=podman\nCMD [\"sh\", \"-c\", \"cat /msg; echo $WHO\"]\n");
  ASSERT_EQ(build().status, 0);
  auto exp = vessel({"image", "export", "built", dir_ + "/built.tar"});
  ASSERT_EQ(exp.status, 0) << exp.err;
  auto load = podman({"load", "-i", dir_ + "/built.tar"});
  ASSERT_EQ(load.status, 0) << load.err;
  auto run = podman({"--runtime", VESSEL_BINARY, "run", "--rm", "localhost/built:latest"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "built-by-vessel\npodman\n");
}

}  // namespace
}  // namespace vessel::image::testing
