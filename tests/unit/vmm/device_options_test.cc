// Parsing of --disk and --net.
#include <gtest/gtest.h>

#include "vmm/device_options.h"

namespace vessel::vmm {
namespace {

TEST(DiskSpec, ParsesOptions) {
  auto d = parse_disk_spec("/img/a.qcow2,readonly,serial=abc,bandwidth=10M,iops=500");
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->path, "/img/a.qcow2");
  EXPECT_TRUE(d->options.readonly);
  EXPECT_EQ(d->options.serial, "abc");
  EXPECT_EQ(d->options.bandwidth, 10u << 20);
  EXPECT_EQ(d->options.iops, 500u);
  auto plain = parse_disk_spec("disk.raw");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->options.readonly);
}

TEST(DiskSpec, RejectsBadOptions) {
  EXPECT_FALSE(parse_disk_spec("").ok());
  EXPECT_FALSE(parse_disk_spec(",readonly").ok());
  EXPECT_FALSE(parse_disk_spec("a,bogus=1").ok());
  EXPECT_FALSE(parse_disk_spec("a,iops=0").ok());
  EXPECT_FALSE(parse_disk_spec("a,bandwidth=x").ok());
  EXPECT_FALSE(parse_disk_spec("a,serial=123456789012345678901").ok());
}

TEST(NetSpec, ParsesOptions) {
  auto n = parse_net_spec("tap=vtap0,mac=52:54:00:ab:CD:01,iops=1000");
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_EQ(n->tap, "vtap0");
  EXPECT_TRUE(n->mac_set);
  EXPECT_EQ(n->mac[4], 0xcd);
  EXPECT_EQ(n->iops, 1000u);
  EXPECT_FALSE(parse_net_spec("mac=52:54:00:ab:cd:01").ok());  // no tap
  EXPECT_FALSE(parse_net_spec("tap=t,mac=01:00:00:00:00:00").ok());  // multicast
  EXPECT_FALSE(parse_net_spec("tap=t,mac=52:54:00:ab:cd").ok());
  EXPECT_FALSE(parse_net_spec("tap=averyveryverylongname").ok());
}

TEST(BalloonSpec, ParsesOptions) {
  auto b = parse_balloon_spec("256M,deflate_on_oom,stats=5,reporting");
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(b->target_pages, 256u * 256);
  EXPECT_TRUE(b->deflate_on_oom);
  EXPECT_TRUE(b->free_page_reporting);
  EXPECT_EQ(b->stats_interval_s, 5u);
  auto zero = parse_balloon_spec("0");
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->target_pages, 0u);
  EXPECT_FALSE(zero->free_page_reporting);
  EXPECT_FALSE(parse_balloon_spec("").ok());
  EXPECT_FALSE(parse_balloon_spec("1000").ok());  // not whole MiB
  EXPECT_FALSE(parse_balloon_spec("1028K").ok());
  EXPECT_FALSE(parse_balloon_spec("64M,stats=x").ok());
  EXPECT_FALSE(parse_balloon_spec("64M,stats=100000").ok());
  EXPECT_FALSE(parse_balloon_spec("64M,bogus").ok());
  EXPECT_FALSE(parse_balloon_spec("64M,reporting=1").ok());
}

TEST(VsockSpec, ParsesOptions) {
  auto v = parse_vsock_spec("cid=3,uds=/run/v.sock");
  ASSERT_TRUE(v.ok()) << v.error().message();
  EXPECT_EQ(v->guest_cid, 3u);
  EXPECT_EQ(v->uds_path, "/run/v.sock");
  EXPECT_FALSE(parse_vsock_spec("cid=2,uds=/x").ok());  // the host's CID
  EXPECT_FALSE(parse_vsock_spec("cid=4294967295,uds=/x").ok());
  EXPECT_FALSE(parse_vsock_spec("cid=3k,uds=/x").ok());
  EXPECT_FALSE(parse_vsock_spec("uds=/x").ok());
  EXPECT_FALSE(parse_vsock_spec("cid=3").ok());
  EXPECT_FALSE(parse_vsock_spec("cid=3,uds=/x,port=1").ok());
}

}  // namespace
}  // namespace vessel::vmm
