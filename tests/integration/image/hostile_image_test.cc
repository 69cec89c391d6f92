// Hostile image input and crashes of the image store (issue 11, items 4 and 7):
// tar ids outside 0..2^32-2, names hiding a NUL, descriptor sizes that lie, layers
// that expand past the limit, FIFOs in a layout; the store lock held only while
// the index changes; kill -9 of import and build at every crash point leaves
// nothing that the next command does not remove, and no mount on the host.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "integration/image/image_fixture.h"

namespace vessel::image::testing {
namespace {

// One ustar header block (512 bytes) for `name` with type `type` and `size` bytes of data.
std::string ustar_header(const std::string& name, char type, size_t size, unsigned mode) {
  std::string h(512, '\0');
  std::snprintf(h.data(), 100, "%s", name.substr(0, 99).c_str());
  std::snprintf(h.data() + 100, 8, "%07o", mode);
  std::snprintf(h.data() + 108, 8, "%07o", 0);
  std::snprintf(h.data() + 116, 8, "%07o", 0);
  std::snprintf(h.data() + 124, 12, "%011lo", static_cast<unsigned long>(size));
  std::snprintf(h.data() + 136, 12, "%011o", 0);
  h[156] = type;
  std::memcpy(h.data() + 257, "ustar\0" "00", 8);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h.data() + 148, 8, "%06o", sum);
  h[155] = ' ';
  return h;
}

std::string pad512(std::string s) {
  s.resize((s.size() + 511) / 512 * 512, '\0');
  return s;
}

// A pax record "LEN key=value\n" (LEN counts the whole record).
std::string pax_record(const std::string& key, const std::string& value) {
  size_t body = key.size() + value.size() + 3;  // ' ' '=' '\n'
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

// A tar of one regular file `name` (mode, data) preceded by a pax header with `records`.
std::string pax_tar(const std::string& name, const std::string& data, unsigned mode, const std::string& records) {
  std::string t = ustar_header("PaxHeaders/x", 'x', records.size(), 0644) + pad512(records);
  t += ustar_header(name, '0', data.size(), mode) + pad512(data);
  t += std::string(1024, '\0');
  return t;
}

class HostileImage : public ImageFixture {
 protected:
  // `image import` of `path` fails with `needle`, and the store has no image, no layer and nothing in tmp/.
  void expect_import_fails(const std::string& path, const std::string& needle, int max_s = 30) {
    auto t0 = std::chrono::steady_clock::now();
    Output o = vessel({"image", "import", path, "--name", "bad"});
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(o.status, 0) << o.out;
    EXPECT_LT(secs, max_s);
    EXPECT_NE(o.err.find(needle), std::string::npos) << o.err;
    EXPECT_TRUE(dir_entries(images_ + "/layers").empty()) << "a layer was unpacked";
    EXPECT_TRUE(dir_entries(images_ + "/tmp").empty()) << "temporaries left";
    EXPECT_NE(vessel({"image", "inspect", "bad"}).status, 0);
  }
  std::string write(const std::string& name, const std::string& data) {
    std::string p = dir_ + "/" + name;
    EXPECT_TRUE(write_file(p, data).ok());
    return p;
  }
};

TEST_F(HostileImage, TarIdsOutsideTheRangeAreRefused) {
  // 4294967295 is (uid_t)-1: chown would keep root; with mode 4755 that was a setuid-root file.
  expect_import_fails(write("uid-1.tar", pax_tar("bin/su", "x", 04755, pax_record("uid", "4294967295"))),
                      "uid 4294967295 is out of range 0..4294967294");
  // 2^40 truncated to 0.
  expect_import_fails(write("uid40.tar", pax_tar("bin/su", "x", 04755, pax_record("uid", "1099511627776"))),
                      "uid 1099511627776 is out of range");
  expect_import_fails(write("gid-1.tar", pax_tar("bin/sg", "x", 02755, pax_record("gid", "4294967295"))),
                      "gid 4294967295 is out of range");
  // In range: kept exactly, setuid bit and all.
  Output o = vessel({"image", "import", write("ok.tar", pax_tar("bin/su", "x", 04755, pax_record("uid", "123456"))), "--name", "ok"});
  ASSERT_EQ(o.status, 0) << o.err;
  auto layers = dir_entries(images_ + "/layers");
  ASSERT_EQ(layers.size(), 1u);
  struct stat st{};
  ASSERT_EQ(::stat((images_ + "/layers/" + layers[0] + "/bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 123456u);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
}

TEST_F(HostileImage, NamesWithANulAreRefused) {
  expect_import_fails(write("nul.tar", pax_tar("placeholder", "x", 0644, pax_record("path", std::string("etc/passwd\0.evil", 16)))),
                      "pax path \"etc/passwd\\0.evil\" contains a NUL byte");
  expect_import_fails(write("nul-link.tar", pax_tar("placeholder", "", 0644, pax_record("linkpath", std::string("a\0b", 3)))),
                      "contains a NUL byte");
  // GNU long name with a NUL inside.
  std::string name = std::string("etc/shadow\0", 11) + std::string(120, 'a');
  std::string t = ustar_header("././@LongLink", 'L', name.size() + 1, 0644) + pad512(name + '\0');
  t += ustar_header("short", '0', 1, 0644) + pad512("x") + std::string(1024, '\0');
  expect_import_fails(write("gnu-nul.tar", t), "GNU long name \"etc/shadow\\0aaaa");
  // A plain ustar name field with bytes after its NUL ("etc/passwd\0.evil").
  std::string h = ustar_header("etc/passwd", '0', 1, 0644);
  std::memcpy(h.data() + 11, ".evil", 5);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h.data() + 148, 8, "%06o", sum);
  h[155] = ' ';
  expect_import_fails(write("ustar-nul.tar", h + pad512("x") + std::string(1024, '\0')),
                      "the name \"etc/passwd\\0.evil\" contains a NUL byte");
}

TEST_F(HostileImage, DescriptorSizesAreVerified) {
  busybox_tar(dir_ + "/bb.tar");
  std::string layout = dir_ + "/layout";
  oci_layout(layout, {dir_ + "/bb.tar"}, "hostile:size");
  // A manifest descriptor in index.json that lies about the size.
  auto index = nlohmann::json::parse(slurp(layout + "/index.json"));
  int64_t real = index["manifests"][0]["size"];
  index["manifests"][0]["size"] = real + 1;
  ASSERT_TRUE(write_file(layout + "/index.json", index.dump()).ok());
  expect_import_fails(layout, "its descriptor says size " + std::to_string(real + 1));
  index["manifests"][0]["size"] = -5;
  ASSERT_TRUE(write_file(layout + "/index.json", index.dump()).ok());
  expect_import_fails(layout, "size must be a non-negative integer");
  // A layer descriptor in the manifest that lies (the manifest is re-hashed to keep its digest valid).
  index["manifests"][0]["size"] = real;
  std::string md = index["manifests"][0]["digest"];
  auto manifest = nlohmann::json::parse(slurp(layout + "/blobs/sha256/" + md.substr(7)));
  manifest["layers"][0]["size"] = 4096;
  std::string mtext = manifest.dump();
  auto d = sha256(mtext);
  ASSERT_TRUE(write_file(layout + "/blobs/sha256/" + d.hex, mtext).ok());
  index["manifests"][0]["digest"] = d.str();
  index["manifests"][0]["size"] = mtext.size();
  ASSERT_TRUE(write_file(layout + "/index.json", index.dump()).ok());
  Output o = vessel({"image", "import", layout});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("its descriptor says size 4096"), std::string::npos) << o.err;
  EXPECT_TRUE(dir_entries(images_ + "/layers").empty());
}

TEST_F(HostileImage, LayerExpansionIsLimited) {
  // 64 MiB of zeros compress to ~64 KiB with gzip; the limit below is 8 MiB.
  busybox_tar(dir_ + "/bomb.tar.gz", {{"zeros", std::string(64 << 20, '\0')}}, "gzip");
  Output o = vessel_in(images_, {"image", "import", dir_ + "/bomb.tar.gz", "--name", "bomb"});
  ASSERT_EQ(o.status, 0) << "the default limit (8x + 1 GiB) lets it in: " << o.err;
  std::string other = dir_ + "/images2";
  std::vector<std::string> args = {"env", "VESSEL_MAX_LAYER_SIZE=8388608", VESSEL_BINARY, "--root", state_, "--image-root", other,
                                   "image", "import", dir_ + "/bomb.tar.gz", "--name", "bomb"};
  Output limited = run_command(args, "", 120);
  EXPECT_NE(limited.status, 0);
  EXPECT_NE(limited.err.find("the layer expands to more than 8388608 bytes (the limit: VESSEL_MAX_LAYER_SIZE"),
            std::string::npos)
      << limited.err;
  EXPECT_TRUE(dir_entries(other + "/layers").empty());
  EXPECT_TRUE(dir_entries(other + "/tmp").empty());
}

TEST_F(HostileImage, FifosInALayoutAreRefusedAtOnceWithoutHoldingTheStore) {
  busybox_tar(dir_ + "/bb.tar");
  std::string layout = dir_ + "/layout";
  oci_layout(layout, {dir_ + "/bb.tar"}, "hostile:fifo");
  std::string index = slurp(layout + "/index.json");
  ::unlink((layout + "/index.json").c_str());
  ASSERT_EQ(::mkfifo((layout + "/index.json").c_str(), 0600), 0);
  expect_import_fails(layout, "index.json: not a regular file", 10);
  ::unlink((layout + "/index.json").c_str());
  ASSERT_TRUE(write_file(layout + "/index.json", index).ok());
  // A layer blob that is a FIFO.
  auto j = nlohmann::json::parse(index);
  std::string md = j["manifests"][0]["digest"];
  auto manifest = nlohmann::json::parse(slurp(layout + "/blobs/sha256/" + md.substr(7)));
  std::string layer = manifest["layers"][0]["digest"];
  std::string blob = layout + "/blobs/sha256/" + layer.substr(7);
  ::unlink(blob.c_str());
  ASSERT_EQ(::mkfifo(blob.c_str(), 0600), 0);
  expect_import_fails(layout, ": not a regular file", 10);
  // A rootfs tar that is /dev/zero.
  expect_import_fails("/dev/zero", "/dev/zero: not a regular file", 10);
}

// `run --image` of one image does not wait for the import of another: the import holds the store
// lock only while it changes the index.
TEST_F(HostileImage, ImportDoesNotBlockOtherImageCommands) {
  busybox_tar(dir_ + "/bb.tar");
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "small"}).status, 0);
  // A big layer (random, so that it neither compresses nor dedups) keeps an import busy for a while.
  ASSERT_EQ(run_command({"sh", "-c", "head -c 128000000 /dev/urandom > " + dir_ + "/big.bin"}).status, 0);
  {
    TarBuilder t(dir_ + "/big.tar");
    t.file("big.bin", slurp(dir_ + "/big.bin"));
  }
  ::unlink((dir_ + "/big.bin").c_str());
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(VESSEL_BINARY, "vessel", "--root", state_.c_str(), "--image-root", images_.c_str(), "image", "import",
            (dir_ + "/big.tar").c_str(), "--name", "big", nullptr);
    ::_exit(127);
  }
  // Wait until the import is copying (its blob temp file exists).
  for (int i = 0; i < 200 && dir_entries(images_ + "/tmp").empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto t0 = std::chrono::steady_clock::now();
  Output o = vessel({"run", "--image", "small", "--rm", "--", "echo", "hi"});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int status = 0;
  bool import_still_running = ::waitpid(pid, &status, WNOHANG) == 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "hi\n");
  EXPECT_TRUE(import_still_running) << "run --image took " << secs << " s: it waited for the import";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::printf("run --image during an import: %.3f s\n", secs);
}

// kill -9 of import at each of its crash points: the next command removes what it left in tmp/.
TEST_F(HostileImage, KilledImportLeavesNothingAfterTheNextCommand) {
  busybox_tar(dir_ + "/bb.tar.gz", {}, "gzip");
  std::string layout = dir_ + "/layout";
  busybox_tar(dir_ + "/bb.tar");
  oci_layout(layout, {dir_ + "/bb.tar"}, "hostile:crash");
  struct Case {
    std::string input, point;
  };
  std::vector<Case> cases = {{dir_ + "/bb.tar.gz", "store.blob-written"}, {dir_ + "/bb.tar.gz", "import.layer-tmp"},
                             {dir_ + "/bb.tar.gz", "layer.entry#5"},      {dir_ + "/bb.tar.gz", "import.layer-unpacked"},
                             {dir_ + "/bb.tar.gz", "import.copied"},      {layout, "store.blob-written#2"},
                             {layout, "layer.entry#3"},                   {layout, "import.layer-unpacked"}};
  int killed = 0;
  for (auto& c : cases) {
    std::vector<std::string> args = {"env", "VESSEL_CRASH_AT=" + c.point, VESSEL_BINARY, "--root", state_, "--image-root", images_,
                                     "image", "import", c.input, "--name", "crash"};
    Output o = run_command(args, "", 120);
    EXPECT_EQ(o.status, 128 + SIGKILL) << c.point << ": " << o.err;
    killed += o.status == 128 + SIGKILL;
    // The next image command (any) reclaims the dead import's temporaries.
    EXPECT_EQ(vessel({"image", "ls"}).status, 0);
    EXPECT_TRUE(dir_entries(images_ + "/tmp").empty()) << c.point << ": left " << dir_entries(images_ + "/tmp").size();
    // And the import works afterwards.
    Output again = vessel({"image", "import", c.input, "--name", "crash"});
    EXPECT_EQ(again.status, 0) << c.point << ": " << again.err;
    EXPECT_EQ(vessel({"image", "rm", "crash"}).status, 0);
    EXPECT_EQ(vessel({"image", "prune"}).status, 0);
  }
  EXPECT_EQ(killed, static_cast<int>(cases.size()));
  EXPECT_TRUE(dir_entries(images_ + "/layers").empty());
}

// kill -9 of build at each crash point: no overlay mount on the host (the steps mount in a
// private namespace), and the next command or prune removes the step directories.
TEST_F(HostileImage, KilledBuildLeavesNoMountAndNothingAfterPrune) {
  busybox_tar(dir_ + "/bb.tar");
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "base"}).status, 0);
  std::string ctx = dir_ + "/ctx";
  ASSERT_TRUE(mkdir_p(ctx).ok());
  ASSERT_TRUE(write_file(ctx + "/f", "data\n").ok());
  ASSERT_TRUE(write_file(ctx + "/Dockerfile", "FROM base\nCOPY f /f\nRUN echo hi > /g\nWORKDIR /newdir\n").ok());
  int killed = 0;
  for (std::string point : {"build.step-mounted", "build.step-mounted#2", "build.step-unmounted", "build.layer-written",
                            "layer.entry#2", "import.layer-tmp", "import.layer-unpacked#2", "build.step-mounted#3"}) {
    std::vector<std::string> args = {"env", "VESSEL_CRASH_AT=" + point, VESSEL_BINARY, "--root", state_, "--image-root", images_,
                                     "image", "build", "--no-cache", "-t", "crash", ctx};
    Output o = run_command(args, "", 300);
    EXPECT_EQ(o.status, 128 + SIGKILL) << point << ": " << o.err;
    killed += o.status == 128 + SIGKILL;
    EXPECT_FALSE(mounted_below(images_)) << point << ": a build mount is left on the host";
    EXPECT_EQ(vessel({"image", "prune"}).status, 0);
    EXPECT_TRUE(dir_entries(images_ + "/tmp").empty()) << point;
  }
  EXPECT_EQ(killed, 8);
  Output ok = vessel({"image", "build", "-t", "crash", ctx});
  ASSERT_EQ(ok.status, 0) << ok.err;
  EXPECT_FALSE(mounted_below(images_));
  EXPECT_TRUE(dir_entries(images_ + "/tmp").empty());
}

// WORKDIR creates the directory in the image, so an image whose last instruction is
// WORKDIR /newdir starts there.
TEST_F(HostileImage, WorkdirCreatesTheDirectory) {
  busybox_tar(dir_ + "/bb.tar");
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "base"}).status, 0);
  std::string ctx = dir_ + "/ctx";
  ASSERT_TRUE(mkdir_p(ctx).ok());
  ASSERT_TRUE(write_file(ctx + "/Dockerfile", "FROM base\nWORKDIR /newdir\nWORKDIR sub\nWORKDIR /tmp\nCMD [\"pwd\"]\n").ok());
  Output b = vessel({"image", "build", "-t", "wd", ctx});
  ASSERT_EQ(b.status, 0) << b.err;
  Output r = vessel({"run", "--image", "wd", "--rm", "--", "sh", "-c", "test -d /newdir/sub && pwd"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "/tmp\n");
  ASSERT_TRUE(write_file(ctx + "/Dockerfile", "FROM base\nWORKDIR /newdir\n").ok());
  b = vessel({"image", "build", "-t", "wd2", ctx});
  ASSERT_EQ(b.status, 0) << b.err;
  r = vessel({"run", "--image", "wd2", "--rm", "--", "pwd"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "/newdir\n");
}

}  // namespace
}  // namespace vessel::image::testing

namespace vessel::image::testing {
namespace {

// kill -9 of build while a RUN step runs: its container must not outlive the
// build; the next image command removes it (step.container) with the step directory.
TEST_F(HostileImage, KilledBuildDuringRunLeavesNoContainer) {
  busybox_tar(dir_ + "/bb.tar");
  ASSERT_EQ(vessel({"image", "import", dir_ + "/bb.tar", "--name", "base"}).status, 0);
  std::string ctx = dir_ + "/ctx-run";
  ASSERT_TRUE(mkdir_p(ctx).ok());
  ASSERT_TRUE(write_file(ctx + "/Dockerfile", "FROM base\nRUN sleep 120\n").ok());
  pid_t builder = ::fork();
  ASSERT_GE(builder, 0);
  if (builder == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(VESSEL_BINARY, "vessel", "--root", state_.c_str(), "--image-root", images_.c_str(), "image", "build",
            "--no-cache", "-t", "runcrash", ctx.c_str(), nullptr);
    ::_exit(127);
  }
  // Wait for the RUN container to run.
  bool running = false;
  for (int i = 0; i < 600 && !running; ++i) {
    Output l = vessel({"list"});
    running = l.out.find("vessel-build-") != std::string::npos && l.out.find("running") != std::string::npos;
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(running) << "the RUN step never started";
  ::kill(builder, SIGKILL);
  int st = 0;
  ::waitpid(builder, &st, 0);
  EXPECT_EQ(vessel({"image", "prune"}).status, 0);
  Output after = vessel({"list"});
  EXPECT_EQ(after.out.find("vessel-build-"), std::string::npos) << "the RUN container outlived its build:\n" << after.out;
  EXPECT_FALSE(mounted_below(images_));
  EXPECT_TRUE(dir_entries(images_ + "/tmp").empty());
}

}  // namespace
}  // namespace vessel::image::testing
