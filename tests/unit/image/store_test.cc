#include "image/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "common/fs.h"

namespace vessel::image {
namespace {

TEST(Sha256, Vectors) {
  EXPECT_EQ(sha256("").hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc").hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hex,
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.digest().hex, sha256("abc").hex);
}

// sha256() hashes buffers up to 64 KiB itself and larger ones with libcrypto, as Sha256 does always.
TEST(Sha256, SmallBuffersAgreeWithLibcrypto) {
  std::string data;
  for (size_t n = 0; n <= 300; ++n) {  // every padding case: 55, 56, 63, 64, 119, 120, ...
    Sha256 h;
    h.update(data);
    ASSERT_EQ(sha256(data).hex, h.digest().hex) << "length " << n;
    data += static_cast<char>(n * 131 + 7);
  }
  for (size_t n : {4095u, 65535u, 65536u, 65537u, 200000u}) {
    std::string big(n, '\0');
    for (size_t i = 0; i < n; ++i) big[i] = static_cast<char>(i * 2654435761u >> 13);
    Sha256 h;
    h.update(big);
    EXPECT_EQ(sha256(big).hex, h.digest().hex) << "length " << n;
  }
  EXPECT_EQ(sha256(std::string(1000000, 'a')).hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(DigestTest, Parse) {
  EXPECT_TRUE(Digest::parse("sha256:" + std::string(64, 'a')).ok());
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(63, 'a')).ok());
  EXPECT_FALSE(Digest::parse("sha512:" + std::string(64, 'a')).ok());
  EXPECT_FALSE(Digest::parse("sha256:../../" + std::string(58, 'a')).ok());
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(64, 'A')).ok());
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-store-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)remove_tree(dir_); }
  std::string dir_;
};

TEST_F(StoreTest, BlobsAreContentAddressedAndVerified) {
  auto s = Store::open(dir_);
  ASSERT_TRUE(s.ok()) << s.error().message();
  auto d = s->put_blob("hello");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->hex, sha256("hello").hex);
  EXPECT_EQ(s->blob_path(*d), dir_ + "/blobs/sha256/" + d->hex);
  EXPECT_EQ(*s->read_blob(*d), "hello");
  EXPECT_TRUE(s->verify_blob(*d).ok());
  // Corruption on disk is caught on read.
  ASSERT_TRUE(write_file(s->blob_path(*d), "hellO").ok());
  EXPECT_FALSE(s->read_blob(*d).ok());
  EXPECT_FALSE(s->verify_blob(*d).ok());
}

TEST_F(StoreTest, IngestChecksExpectedDigest) {
  auto s = Store::open(dir_);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(write_file(dir_ + "/in", "data").ok());
  Digest wrong = sha256("other");
  UniqueFd fd(::open((dir_ + "/in").c_str(), O_RDONLY));
  auto r = s->ingest(fd.get(), &wrong);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(s->has_blob(wrong));
  EXPECT_FALSE(s->has_blob(sha256("data")));
  ::lseek(fd.get(), 0, SEEK_SET);
  Digest right = sha256("data");
  auto r2 = s->ingest(fd.get(), &right);
  ASSERT_TRUE(r2.ok()) << r2.error().message();
  EXPECT_TRUE(s->has_blob(right));
}

TEST(NameIndexTest, NormalizeTagFindUntag) {
  EXPECT_EQ(*normalize_name("busybox"), "busybox:latest");
  EXPECT_EQ(*normalize_name("localhost:5000/busybox"), "localhost:5000/busybox:latest");
  EXPECT_EQ(*normalize_name("localhost/busybox:1"), "localhost/busybox:1");
  EXPECT_FALSE(normalize_name("bad name").ok());
  EXPECT_FALSE(normalize_name("").ok());

  NameIndex idx;
  Digest a = sha256("a"), b = sha256("b");
  ASSERT_TRUE(idx.tag("busybox", a, "t").ok());
  ASSERT_TRUE(idx.tag("other:1", a, "t").ok());
  EXPECT_EQ((*idx.find("busybox:latest"))->manifest, a);
  EXPECT_EQ((*idx.find(a.str()))->manifest, a);
  EXPECT_EQ((*idx.find(a.hex.substr(0, 12)))->manifest, a);
  EXPECT_EQ(idx.find("nope").error().code(), ENOENT);
  // Moving a name to another image leaves the first with its other name.
  auto orphan = idx.tag("busybox", b, "t");
  ASSERT_TRUE(orphan.ok());
  EXPECT_FALSE(orphan->has_value());
  EXPECT_EQ((*idx.find("busybox"))->manifest, b);
  orphan = idx.tag("other:1", b, "t");
  ASSERT_TRUE(orphan->has_value());
  EXPECT_EQ(**orphan, a);

  auto round = NameIndex::parse(idx.to_json());
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->images().size(), 2u);
  EXPECT_EQ((*round->find("other:1"))->manifest, b);
  EXPECT_TRUE(round->untag(b, "busybox:latest") == false);
  EXPECT_TRUE(round->untag(b, "other:1"));
  EXPECT_FALSE(NameIndex::parse("{\"images\":[{\"manifest\":\"sha256:../x\"}]}").ok());
}

}  // namespace
}  // namespace vessel::image
