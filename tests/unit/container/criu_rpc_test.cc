// The hand-written protobuf coding of CRIU's rpc.proto messages (container/criu_rpc.h).
#include "container/criu_rpc.h"

#include <gtest/gtest.h>

namespace vessel::container::criu {
namespace {

// A criu_resp as CRIU would send it, built field by field.
std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string field_varint(int f, uint64_t v) { return varint(static_cast<uint64_t>(f) << 3) + varint(v); }
std::string field_bytes(int f, const std::string& v) { return varint((static_cast<uint64_t>(f) << 3) | 2) + varint(v.size()) + v; }

TEST(CriuRpc, EncodesADumpRequestThatDecodesBack) {
  Request req;
  req.type = ReqType::kDump;
  Opts o;
  o.images_dir_fd = 7;
  o.pid = 1234;
  o.leave_running = true;
  o.log_file = "dump.log";
  o.root = "/var/lib/c1/rootfs";
  o.parent_img = "../pre";
  o.ext_mnt = {{"/etc/hosts", "/etc/hosts"}, {"/proc/kcore", "/dev/null"}};
  o.cg_root = {{"", "/vessel/c1"}, {"memory", "/m"}};
  o.inherit_fd = {{"pipe:[99]", 1}, {"extRootNetNS", 4}};
  o.manage_cgroups_mode = CgMode::kSoft;
  o.external = {"net[4026531992]:extRootNetNS"};
  o.freeze_cgroup = "/sys/fs/cgroup/vessel/c1";
  req.opts = o;
  auto back = decode_request(encode(req));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->type, ReqType::kDump);
  ASSERT_TRUE(back->opts);
  const Opts& b = *back->opts;
  EXPECT_EQ(b.images_dir_fd, 7);
  EXPECT_EQ(b.pid, 1234);
  EXPECT_EQ(b.leave_running, true);
  EXPECT_EQ(b.log_file, "dump.log");
  EXPECT_EQ(b.root, o.root);
  EXPECT_EQ(b.parent_img, "../pre");
  EXPECT_EQ(b.ext_mnt, o.ext_mnt);
  EXPECT_EQ(b.cg_root, o.cg_root);
  EXPECT_EQ(b.inherit_fd, o.inherit_fd);
  EXPECT_EQ(b.manage_cgroups_mode, CgMode::kSoft);
  EXPECT_EQ(b.external, o.external);
  EXPECT_EQ(b.freeze_cgroup, o.freeze_cgroup);
  EXPECT_FALSE(b.tcp_established);  // unset stays unset
}

TEST(CriuRpc, KnownBytes) {
  // criu_req{type: NOTIFY, notify_success: true} is 08 06 18 01.
  Request ack;
  ack.type = ReqType::kNotify;
  ack.notify_success = true;
  EXPECT_EQ(encode(ack), std::string("\x08\x06\x18\x01", 4));
  // A negative int32 takes ten bytes (sign-extended).
  Request r;
  r.type = ReqType::kRestore;
  r.opts = Opts{};
  r.opts->images_dir_fd = -1;
  std::string e = encode(r);
  EXPECT_EQ(e.substr(0, 4), std::string("\x08\x02\x12\x0b", 4));
  EXPECT_EQ(e.substr(4), std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11));
}

TEST(CriuRpc, DecodesResponses) {
  std::string notify = field_varint(1, 6) + field_varint(2, 1) +
                       field_bytes(5, field_bytes(1, "post-restore") + field_varint(2, 4321));
  auto n = decode_response(notify);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->type, ReqType::kNotify);
  EXPECT_TRUE(n->success);
  EXPECT_EQ(n->notify_script, "post-restore");
  EXPECT_EQ(n->notify_pid, 4321);

  std::string restored = field_varint(1, 2) + field_varint(2, 1) + field_bytes(4, field_varint(1, 77)) +
                         field_varint(99, 5);  // an unknown field is skipped
  auto r = decode_response(restored);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->restored_pid, 77);

  std::string failed = field_varint(1, 1) + field_varint(2, 0) + field_varint(7, 13) + field_bytes(9, "bad image");
  auto f = decode_response(failed);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->success);
  EXPECT_EQ(f->cr_errno, 13);
  EXPECT_EQ(f->cr_errmsg, "bad image");

  std::string features = field_varint(1, 9) + field_varint(2, 1) + field_bytes(8, field_varint(1, 1) + field_varint(2, 0));
  auto ft = decode_response(features);
  ASSERT_TRUE(ft.ok());
  EXPECT_EQ(ft->mem_track, true);
  EXPECT_EQ(ft->lazy_pages, false);
}

TEST(CriuRpc, RejectsMalformedResponses) {
  EXPECT_FALSE(decode_response(field_varint(2, 1)).ok());                       // no type
  EXPECT_FALSE(decode_response(std::string("\x08", 1)).ok());                   // truncated varint
  EXPECT_FALSE(decode_response(field_varint(1, 2) + "\x22\x10\x08").ok());      // length past the end
  EXPECT_FALSE(decode_response(field_varint(1, 2) + field_varint(2, 1) + "\x0b").ok());  // wire type 3
  EXPECT_FALSE(decode_response(std::string(11, '\xff')).ok());                  // varint too long
}

TEST(CriuRpc, CgroupModes) {
  EXPECT_EQ(*parse_cg_mode(""), CgMode::kDefault);
  EXPECT_EQ(*parse_cg_mode("soft"), CgMode::kSoft);
  EXPECT_EQ(*parse_cg_mode("strict"), CgMode::kStrict);
  auto bad = parse_cg_mode("loose");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("--manage-cgroups-mode"), std::string::npos);
}

}  // namespace
}  // namespace vessel::container::criu
