// virtio-vsock: guest->host and host->guest stream connections over unix
// sockets (Firecracker's mapping), credit, shutdown/RST, and hostile packets.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "virtio_test_ring.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/vsock/vsock.h"

namespace vessel::vmm::virtio {
namespace {

using vsock::Header;

// A split ring at its own addresses (one per queue).
struct Ring {
  GuestMemory& mem;
  uint64_t base;
  uint16_t size = 16;
  uint16_t avail_idx = 0;
  uint64_t desc() const { return base; }
  uint64_t avail() const { return base + 0x1000; }
  uint64_t used_ring() const { return base + 0x2000; }
  void setup(Queue& q) {
    auto& s = q.state();
    s.size = size;
    s.desc_table = desc();
    s.avail_ring = avail();
    s.used_ring = used_ring();
    s.ready = true;
    ASSERT_TRUE(q.activate(mem));
  }
  void add(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags) {
    ASSERT_TRUE(mem.write_obj(desc() + 16ULL * i, Descriptor{addr, len, flags, 0}));
    ASSERT_TRUE(mem.write_obj<uint16_t>(avail() + 4 + 2ULL * (avail_idx % size), i));
    ++avail_idx;
    ASSERT_TRUE(mem.write_obj<uint16_t>(avail() + 2, avail_idx));
  }
  uint16_t used_idx() const { return *mem.read_obj<uint16_t>(used_ring() + 2); }
  std::pair<uint32_t, uint32_t> used(uint16_t i) const {
    uint64_t at = used_ring() + 4 + 8ULL * (i % size);
    return {*mem.read_obj<uint32_t>(at), *mem.read_obj<uint32_t>(at + 4)};
  }
};

struct FakeVsockHost : DeviceHost {
  GuestMemory mem = testing::make_memory(4 << 20);
  std::vector<Queue> queues = std::vector<Queue>(3, Queue(VsockDevice::kQueueSize));
  int irqs = 0;
  GuestMemory& memory() override { return mem; }
  Queue& queue(unsigned index) override { return queues.at(index); }
  uint64_t acked_features() const override { return bit(kFVersion1); }
  void notify_used(unsigned) override { ++irqs; }
};

constexpr uint64_t kGuestCid = 3;
constexpr uint64_t kRxData = 0x100000, kTxData = 0x200000;

size_t open_fds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (d && ::readdir(d)) ++n;
  if (d) ::closedir(d);
  return n;
}

struct VsockTest : ::testing::Test {
  FakeVsockHost host;
  Ring rx{host.mem, 0x10000}, tx{host.mem, 0x20000}, ev{host.mem, 0x30000};
  std::string dir, uds;
  std::unique_ptr<VsockDevice> dev;
  uint16_t rx_seen = 0, tx_slot = 0, rx_slot = 0;

  void SetUp() override {
    char tmpl[] = "/tmp/vessel-vsock-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    uds = dir + "/v.sock";
    auto d = VsockDevice::create({kGuestCid, uds});
    ASSERT_TRUE(d) << d.error().message();
    dev = std::move(d).value();
    rx.setup(host.queues[0]);
    tx.setup(host.queues[1]);
    ev.setup(host.queues[2]);
    ASSERT_TRUE(dev->activate(host));
    post_rx(8);
  }
  void TearDown() override {
    dev.reset();
    std::string cmd = "rm -rf " + dir;
    (void)!::system(cmd.c_str());
  }
  void post_rx(int n) {
    for (int i = 0; i < n; ++i) {
      uint16_t slot = rx_slot++ % rx.size;
      rx.add(slot, kRxData + 0x20000ULL * slot, 0x20000, kDescFWrite);
    }
  }
  static Header hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len = 0) {
    Header h{};
    h.src_cid = kGuestCid;
    h.dst_cid = vsock::kHostCid;
    h.src_port = src_port;
    h.dst_port = dst_port;
    h.len = len;
    h.type = vsock::kTypeStream;
    h.op = op;
    h.buf_alloc = 64 * 1024;
    return h;
  }
  // The guest sends one packet (header + payload in one readable buffer).
  void send(Header h, const std::string& payload = {}, uint32_t buffer_len = 0) {
    uint16_t slot = tx_slot++ % tx.size;
    uint64_t at = kTxData + 0x20000ULL * slot;
    ASSERT_TRUE(host.mem.write_obj(at, h));
    ASSERT_TRUE(host.mem.write(at + sizeof h, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(payload.data()), payload.size())));
    tx.add(slot, at, buffer_len ? buffer_len : static_cast<uint32_t>(sizeof h + payload.size()), 0);
    ASSERT_TRUE(dev->process_queue(host, 1));
  }
  // The next packet the device gave the guest, if any.
  std::optional<std::pair<Header, std::string>> receive() {
    if (rx.used_idx() == rx_seen) return std::nullopt;
    auto [id, len] = rx.used(rx_seen++);
    uint64_t at = kRxData + 0x20000ULL * id;
    Header h = *host.mem.read_obj<Header>(at);
    std::string data(len - sizeof h, '\0');
    (void)host.mem.read(at + sizeof h, std::span<uint8_t>(reinterpret_cast<uint8_t*>(data.data()), data.size()));
    post_rx(1);
    return std::make_pair(h, data);
  }
  void events() { ASSERT_TRUE(dev->process_event(host, dev->event_fds()[0])); }
  int listen_at(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd, 16), 0);
    return fd;
  }
  int connect_to(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }
  static std::string read_some(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) return "";
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
};

TEST_F(VsockTest, GuestConnectsToAHostListener) {
  int l = listen_at(uds + "_5000");
  send(hdr(vsock::kOpRequest, 1234, 5000));
  auto resp = receive();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->first.op, vsock::kOpResponse);
  EXPECT_EQ(resp->first.src_port, 5000u);
  EXPECT_EQ(resp->first.dst_port, 1234u);
  EXPECT_EQ(resp->first.dst_cid, kGuestCid);
  EXPECT_EQ(resp->first.buf_alloc, VsockDevice::kBufAlloc);
  int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(s, 0);
  EXPECT_EQ(dev->connection_count(), 1u);

  send(hdr(vsock::kOpRw, 1234, 5000, 5), "hello");
  EXPECT_EQ(read_some(s), "hello");
  ASSERT_EQ(::write(s, "world", 5), 5);
  events();
  auto data = receive();
  ASSERT_TRUE(data);
  EXPECT_EQ(data->first.op, vsock::kOpRw);
  EXPECT_EQ(data->second, "world");
  EXPECT_EQ(data->first.fwd_cnt, 5u) << "the guest learns that its 5 bytes were forwarded";

  // The host half-closes: the guest is told (SHUTDOWN, no more sends) and can still send.
  ::shutdown(s, SHUT_WR);
  events();
  auto shut = receive();
  ASSERT_TRUE(shut);
  EXPECT_EQ(shut->first.op, vsock::kOpShutdown);
  EXPECT_EQ(shut->first.flags, vsock::kShutdownSend);
  send(hdr(vsock::kOpRw, 1234, 5000, 4), "tail");
  EXPECT_EQ(read_some(s), "tail");
  // The guest is done too: RST, all gone.
  ::close(s);
  send(hdr(vsock::kOpRst, 1234, 5000));
  EXPECT_EQ(dev->connection_count(), 0u);
  ::close(l);
}

TEST_F(VsockTest, GuestConnectToNobodyGetsRst) {
  send(hdr(vsock::kOpRequest, 1234, 6000));
  auto r = receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first.op, vsock::kOpRst);
  EXPECT_EQ(dev->connection_count(), 0u);
}

// With VIRTIO_F_EVENT_IDX the driver kicks only when its available index passes the
// device's avail_event: a device that ran out of receive buffers with packets still to
// deliver must publish it, or the driver's refill never wakes it (the connection hangs).
TEST_F(VsockTest, OutOfReceiveBuffersAsksTheDriverToNotifyTheRefill) {
  host.queues[0].state().event_idx = true;
  for (uint32_t port = 6000; port < 6010; ++port) send(hdr(vsock::kOpRequest, 1234, port));  // 10 RSTs, 8 buffers
  ASSERT_EQ(rx.used_idx(), 8);
  uint16_t avail_event = *host.mem.read_obj<uint16_t>(rx.used_ring() + 4 + 8ULL * rx.size);
  // The driver's next buffer (available index 8 -> 9) must notify: vring_need_event().
  EXPECT_EQ(avail_event, 8);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(receive());  // each posts one buffer back
  ASSERT_TRUE(dev->process_queue(host, 0));             // the driver's kick
  EXPECT_EQ(rx.used_idx(), 10);
}

TEST_F(VsockTest, HostConnectsToTheGuest) {
  int c = connect_to(uds);
  ASSERT_EQ(::write(c, "CONNECT 52\n", 11), 11);
  events();
  auto req = receive();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->first.op, vsock::kOpRequest);
  EXPECT_EQ(req->first.dst_port, 52u);
  EXPECT_EQ(req->first.src_cid, vsock::kHostCid);
  uint32_t host_port = req->first.src_port;
  send(hdr(vsock::kOpResponse, 52, host_port));
  EXPECT_EQ(read_some(c), "OK " + std::to_string(host_port) + "\n");
  ASSERT_EQ(::write(c, "ping", 4), 4);
  events();
  auto d = receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->second, "ping");
  send(hdr(vsock::kOpRw, 52, host_port, 4), "pong");
  EXPECT_EQ(read_some(c), "pong");
  // The guest shuts down both ways: RST, and the host sees EOF.
  Header sd = hdr(vsock::kOpShutdown, 52, host_port);
  sd.flags = vsock::kShutdownRcv | vsock::kShutdownSend;
  send(sd);
  EXPECT_EQ(dev->connection_count(), 0u);
  EXPECT_EQ(read_some(c), "");
  ::close(c);
}

TEST_F(VsockTest, GuestRefusingAHostConnectionClosesIt) {
  int c = connect_to(uds);
  ASSERT_EQ(::write(c, "CONNECT 53\n", 11), 11);
  events();
  auto req = receive();
  ASSERT_TRUE(req);
  send(hdr(vsock::kOpRst, 53, req->first.src_port));
  EXPECT_EQ(dev->connection_count(), 0u);
  EXPECT_EQ(read_some(c), "");
  ::close(c);
}

TEST_F(VsockTest, BadConnectLinesAreClosed) {
  for (const std::string& line : std::vector<std::string>{"CONNECT\n", "CONNECT x1\n", "CONNECT 99999999999\n", "HELLO 1\n", std::string(64, 'A')}) {
    int c = connect_to(uds);
    ASSERT_EQ(::write(c, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    events();
    EXPECT_FALSE(receive()) << line;
    EXPECT_EQ(read_some(c), "") << line;
    ::close(c);
  }
  EXPECT_EQ(dev->connection_count(), 0u);
}

TEST_F(VsockTest, HostilePacketsAreDroppedOrRefused) {
  int l = listen_at(uds + "_5000");
  // Not from our CID, or not to the host: dropped without an answer.
  Header h = hdr(vsock::kOpRequest, 1, 5000);
  h.src_cid = 99;
  send(h);
  h = hdr(vsock::kOpRequest, 1, 5000);
  h.dst_cid = 7;
  send(h);
  EXPECT_FALSE(receive());
  EXPECT_EQ(dev->counters().bad_packets, 2u);
  // A length beyond the buffer, an unknown op, a wrong type: RST, nothing opened.
  send(hdr(vsock::kOpRw, 1, 5000, 1000), "short");
  h = hdr(99, 1, 5000);
  send(h);
  h = hdr(vsock::kOpRequest, 1, 5000);
  h.type = 2;  // SEQPACKET: not offered
  send(h);
  for (int i = 0; i < 3; ++i) {
    auto r = receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first.op, vsock::kOpRst);
  }
  EXPECT_EQ(dev->connection_count(), 0u);
  // A buffer shorter than a header.
  send(hdr(vsock::kOpRequest, 1, 5000), "", 10);
  EXPECT_FALSE(receive());
  // Data on a connection that does not exist: RST.
  send(hdr(vsock::kOpRw, 1, 5000, 3), "abc");
  auto r = receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first.op, vsock::kOpRst);
  ::close(l);
}

TEST_F(VsockTest, DataBeyondTheCreditResetsTheConnection) {
  int l = listen_at(uds + "_5000");
  send(hdr(vsock::kOpRequest, 1, 5000));
  ASSERT_EQ(receive()->first.op, vsock::kOpResponse);
  int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(s, 0);
  // Nobody reads `s`: the socket buffer fills, then our credit runs out.
  std::string chunk(60000, 'x');
  bool reset = false;
  for (int i = 0; i < 200 && !reset; ++i) {
    send(hdr(vsock::kOpRw, 1, 5000, static_cast<uint32_t>(chunk.size())), chunk);
    while (auto p = receive())
      if (p->first.op == vsock::kOpRst) reset = true;
  }
  EXPECT_TRUE(reset) << "a guest ignoring its credit must be reset";
  EXPECT_EQ(dev->connection_count(), 0u);
  ::close(s);
  ::close(l);
}

TEST_F(VsockTest, AThousandConnectionsLeaveNothingBehind) {
  int l = listen_at(uds + "_7000");
  size_t fds = open_fds();
  for (uint32_t i = 0; i < 1000; ++i) {
    send(hdr(vsock::kOpRequest, 10000 + i, 7000));
    auto r = receive();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->first.op, vsock::kOpResponse) << i;
    int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(s, 0);
    ::close(s);
    send(hdr(vsock::kOpRst, 10000 + i, 7000));
  }
  events();
  while (receive()) {
  }
  EXPECT_EQ(dev->connection_count(), 0u);
  EXPECT_EQ(dev->counters().connections_opened, 1000u);
  EXPECT_EQ(dev->counters().connections_closed, 1000u);
  EXPECT_EQ(open_fds(), fds);
  ::close(l);
}

TEST_F(VsockTest, TransportResetAfterRestore) {
  ASSERT_TRUE(host.mem.fill(kRxData + 0x2f0000, 0xff, 4));
  ev.add(0, kRxData + 0x2f0000, 8, kDescFWrite);
  ASSERT_TRUE(dev->restore(dev->save()));
  ASSERT_TRUE(dev->send_transport_reset(host));
  EXPECT_EQ(ev.used_idx(), 1);
  EXPECT_EQ(*host.mem.read_obj<uint32_t>(kRxData + 0x2f0000), vsock::kEventTransportReset);
}

// vm upgrade: the new VMM's device adopts the old one's listening socket.
// The path stays while the old device goes (it no longer owns it), host
// connections reach the new device, and the path goes with the device that
// owns it then.
TEST_F(VsockTest, AdoptedListenerTakesHostConnectionsAndOwnsThePathOnlyWhenTold) {
  UniqueFd copy(::fcntl(dev->listener_fd(), F_DUPFD_CLOEXEC, 0));
  auto adopted = VsockDevice::adopt({kGuestCid, uds}, std::move(copy));
  ASSERT_TRUE(adopted) << adopted.error().message();
  std::unique_ptr<VsockDevice> b = std::move(*adopted);
  dev->set_owns_path(false);
  dev.reset();
  ASSERT_EQ(::access(uds.c_str(), F_OK), 0) << "the old device removed the path it handed over";
  ASSERT_TRUE(b->activate(host));
  int c = connect_to(uds);
  ASSERT_EQ(::write(c, "CONNECT 52\n", 11), 11);
  ASSERT_TRUE(b->process_event(host, b->event_fds()[0]));
  auto req = receive();
  ASSERT_TRUE(req) << "the new device did not take the host's connection";
  EXPECT_EQ(req->first.op, vsock::kOpRequest);
  EXPECT_EQ(req->first.dst_port, 52u);
  ::close(c);
  b->set_owns_path(true);
  b.reset();
  EXPECT_NE(::access(uds.c_str(), F_OK), 0) << "the path is left behind";
}

TEST_F(VsockTest, AdoptRefusesWhatIsNotItsListeningSocket) {
  auto expect_refused = [&](int fd, const std::string& uds_path, const std::string& why) {
    auto r = VsockDevice::adopt({kGuestCid, uds_path}, UniqueFd(fd));
    ASSERT_FALSE(r) << why;
    EXPECT_NE(r.error().message().find(uds_path), std::string::npos) << r.error().message();
  };
  expect_refused(::fcntl(dev->listener_fd(), F_DUPFD_CLOEXEC, 0), dir + "/other.sock", "bound to another path");
  expect_refused(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), uds, "not listening");
  expect_refused(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), uds, "not a stream socket");
  expect_refused(::open("/dev/null", O_RDONLY | O_CLOEXEC), uds, "not a socket");
  EXPECT_EQ(::access(uds.c_str(), F_OK), 0) << "a refused adoption removed the path";
}

TEST(Vsock, CreateChecksItsInput) {
  char tmpl[] = "/tmp/vessel-vsock-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string d = tmpl, p = d + "/s";
  EXPECT_FALSE(VsockDevice::create({2, p})) << "CID 2 is the host's";
  EXPECT_FALSE(VsockDevice::create({3, ""}));
  EXPECT_FALSE(VsockDevice::create({3, d + "/" + std::string(120, 'x')}));
  {
    auto a = VsockDevice::create({3, p});
    ASSERT_TRUE(a) << a.error().message();
    auto b = VsockDevice::create({4, p});
    ASSERT_FALSE(b) << "a live socket is another VM's";
    EXPECT_NE(b.error().message().find("in use"), std::string::npos) << b.error().message();
  }
  EXPECT_NE(::access(p.c_str(), F_OK), 0) << "the device removes its socket";
  // A stale socket file (its owner gone) is replaced.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(fd);
  EXPECT_TRUE(VsockDevice::create({3, p}));
  // A regular file is not ours to remove.
  ASSERT_EQ(::close(::open(p.c_str(), O_CREAT | O_WRONLY, 0600)), 0);
  EXPECT_FALSE(VsockDevice::create({3, p}));
  std::string cmd = "rm -rf " + d;
  (void)!::system(cmd.c_str());
}

}  // namespace
}  // namespace vessel::vmm::virtio
