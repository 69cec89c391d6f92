// VsockDevice: virtio-vsock (virtio 1.2, 5.10) with Firecracker's mapping of
// guest stream sockets to host unix sockets:
//
//   host -> guest: a host program connects to the unix socket `uds_path` and
//     writes "CONNECT <port>\n"; the device asks the guest for a connection
//     to that port, answers "OK <host port>\n" once the guest accepted, and
//     relays bytes both ways.
//   guest -> host: a guest connecting to CID 2 (the host), port P, is
//     connected to the unix socket "<uds_path>_P"; RST when nobody listens.
//
// Queues: 0 receive (device -> driver), 1 transmit, 2 events. Flow control
// is vsock's credit scheme: the guest may send at most our buf_alloc bytes
// beyond what we forwarded, we send the guest at most its advertised space.
// Every header field from the guest is checked (CIDs, type, length against
// the buffer, ports of a known connection); a bad packet is dropped (and
// answered with RST when it asked for something), never acted on.
//
// The device owns one epoll fd over its listening socket and every
// connection's socket; that fd is its single event fd for the worker.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/virtio/device.h"
#include "vmm/virtio/vsock/packet.h"

namespace vessel::vmm::virtio {

struct VsockOptions {
  uint64_t guest_cid = 3;
  // Host unix socket the device listens on; guest connections go to "<uds_path>_<port>".
  std::string uds_path;
};

// Counters (metrics, tests).
struct VsockCounters {
  uint64_t connections_opened = 0;
  uint64_t connections_closed = 0;
  uint64_t bad_packets = 0;      // dropped: wrong CID/type/length, unknown connection
  uint64_t bytes_to_guest = 0;
  uint64_t bytes_from_guest = 0;
};

// What a snapshot keeps: the CID. Connections are host sockets and do not
// survive; after a restore the driver gets a transport-reset event.
struct VsockState {
  uint64_t guest_cid = 0;
};

class VsockDevice : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Bytes the guest may send on one connection beyond what reached the host socket.
  static constexpr uint32_t kBufAlloc = 256 * 1024;
  static constexpr size_t kMaxConnections = 1024;
  // Host connections that have not finished their CONNECT line.
  static constexpr size_t kMaxPendingHost = 64;

  // Listens on `o.uds_path` (a stale socket nobody answers on is replaced; a live one is an error).
  static Result<std::unique_ptr<VsockDevice>> create(const VsockOptions& o);
  // Over a socket that already listens on `o.uds_path`, handed over by the
  // VMM that ran the VM on this host (vm upgrade): checked to be a listening
  // unix stream socket bound to that path. The path stays in place when the
  // device goes, until set_owns_path(true) (the VMM that handed it over still
  // needs it if the hand-over fails).
  static Result<std::unique_ptr<VsockDevice>> adopt(const VsockOptions& o, UniqueFd listener);
  ~VsockDevice() override;

  uint32_t device_type() const override { return vsock::kTypeVsock; }
  uint64_t device_features() const override { return 0; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize, kQueueSize, kQueueSize}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  Status activate(DeviceHost& host) override;
  Status process_queue(DeviceHost& host, unsigned index) override;
  std::vector<int> event_fds() const override { return {epoll_.get()}; }
  Status process_event(DeviceHost& host, int fd) override;
  void reset() override;

  uint64_t guest_cid() const { return cid_; }
  const std::string& uds_path() const { return uds_path_; }
  // The listening socket (what a hand-over passes on).
  int listener_fd() const { return listener_.get(); }
  // Whether the destructor removes uds_path: a device made by create() does;
  // a VMM that handed its socket over stops, the one that took it starts.
  void set_owns_path(bool owns) { owns_path_ = owns; }
  size_t connection_count() const { return conns_.size(); }
  const VsockCounters& counters() const { return counters_; }

  VsockState save() const { return {cid_}; }
  Status restore(const VsockState& s);
  // After a restore: tells the driver its connections are gone (on the event queue).
  Status send_transport_reset(DeviceHost& host);

 private:
  // One stream connection: a host unix socket and a guest (port).
  struct Conn {
    UniqueFd sock;
    uint32_t host_port = 0;
    uint32_t guest_port = 0;
    bool established = false;      // host-initiated ones wait for the guest's RESPONSE
    bool host_initiated = false;
    bool guest_shut_send = false;  // the guest sends no more
    bool host_eof = false;         // the host socket reached EOF (SHUTDOWN sent)
    uint32_t peer_buf_alloc = 0;   // the guest's receive buffer
    uint32_t peer_fwd_cnt = 0;     // bytes the guest consumed
    uint32_t rx_cnt = 0;           // bytes sent to the guest
    uint32_t fwd_cnt = 0;          // bytes of the guest written to the host socket
    uint32_t last_fwd_cnt_sent = 0;
    std::vector<uint8_t> tx_buf;   // guest bytes the host socket did not take yet
    uint32_t events = 0;           // what the epoll watch asks for
    bool watched = true;           // false once the socket left the epoll set (after EOF)
    bool readable = false;         // the socket has data (or EOF) not read yet
    uint32_t peer_credit() const { return peer_buf_alloc - (rx_cnt - peer_fwd_cnt); }
  };
  // A host client that has not sent its CONNECT line yet.
  struct PendingHost {
    UniqueFd sock;
    std::string line;
  };
  using Key = std::pair<uint32_t, uint32_t>;  // host port, guest port

  VsockDevice() = default;
  // Watches the listener (epoll), once listener_ listens on uds_path_.
  Status watch_listener();
  Status process_tx(DeviceHost& host);
  // Fills receive buffers: control packets first, then data of readable connections.
  Status process_rx(DeviceHost& host);
  void handle_packet(const vsock::Header& h, const DescriptorChain& chain);
  void guest_request(const vsock::Header& h);
  void guest_data(Conn& c, const DescriptorChain& chain, uint32_t len);
  void accept_host();
  void read_connect_line(int fd);
  void flush_tx(Conn& c);
  // Queues a control packet (RESPONSE, RST, CREDIT_UPDATE, REQUEST, SHUTDOWN) for the guest.
  void queue_control(uint16_t op, uint32_t host_port, uint32_t guest_port, uint32_t flags, const Conn* c);
  void close_conn(const Key& k, bool send_rst);
  void watch(Conn& c, uint32_t events);
  uint32_t next_host_port();

  uint64_t cid_ = 0;
  std::string uds_path_;
  bool owns_path_ = false;
  UniqueFd listener_, epoll_;
  std::map<Key, Conn> conns_;
  std::map<int, PendingHost> pending_host_;
  std::map<int, Key> by_fd_;
  std::deque<vsock::Header> control_;
  std::vector<uint8_t> rx_buf_;  // one packet's payload on its way to the guest
  uint32_t port_seq_ = 1u << 30;
  DeviceHost* host_ = nullptr;
  VsockCounters counters_;
};

}  // namespace vessel::vmm::virtio
