#pragma once
// The system calls of a udp: listener's socket and nothing else: bind
// (V6ONLY for IPv6, never SO_REUSEPORT, like the TCP listener), a receive
// batch (recvmmsg into fixed slots of max_datagram_bytes, MSG_TRUNC marking
// a datagram that did not fit) and a bounded send batch (sendmmsg).
//
// On a wildcard bind (0.0.0.0, ::) each datagram's destination address is
// read (IP_PKTINFO / IPV6_RECVPKTINFO) and an answer to it is sent from that
// address (man 7 ip: ipi_spec_dst): otherwise the kernel picks the source by
// route, and a client that sent to another address of this host, with a
// connected socket, drops the answer.
//
// Memory: the receive slots are allocated once per socket; the send batch
// holds at most kMaxQueued datagrams (a full batch is sent at once), so
// nothing grows with load. Threading: one thread at a time (the listener's loop).

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/Endpoint.h"
#include "protohost/Transport.h"

namespace protohost::host {

/// A datagram's peer as the kernel gives it (and takes it back for sending).
struct DatagramPeer {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

/// The address a datagram was sent to, on a wildcard bind (else unset):
/// an answer goes out from it.
struct DatagramLocal {
  bool set = false;
  in6_addr address{};  // an IPv4 address in its first 4 bytes on an AF_INET socket
};

/// Converts @p peer to the SDK's {host, port}.
Address toAddress(const DatagramPeer& peer);
/// Converts @p address to a peer of @p family (AF_INET or AF_INET6); false when
/// its host is not a literal of that family.
bool toPeer(const Address& address, int family, DatagramPeer& peer);

class DatagramSocket {
 public:
  /// Datagrams queued before a send batch goes out by itself.
  static constexpr std::size_t kMaxQueued = 64;

  /// @p maxDatagramBytes: each receive slot's size.
  explicit DatagramSocket(std::size_t maxDatagramBytes);
  ~DatagramSocket();
  DatagramSocket(const DatagramSocket&) = delete;
  DatagramSocket& operator=(const DatagramSocket&) = delete;

  /// Opens and binds @p endpoint (net/BindSocket.h). Returns 0, or the errno
  /// with @p step naming the call that failed (nothing stays open).
  int bind(const Endpoint& endpoint, const char*& step);
  /// The bound port (the kernel's choice when the endpoint said 0).
  std::uint16_t localPort() const;
  int fd() const { return fd_; }
  int family() const { return family_; }
  /// Closes the socket (queued datagrams are dropped: send first).
  void close();

  /// One received datagram, valid until the next receive().
  struct Received {
    std::string_view data;
    const DatagramPeer* peer;
    bool truncated;  // longer than the slot: data holds its first maxDatagramBytes
    const DatagramLocal* local;  // where it was sent (set on a wildcard bind only)
  };
  /// One recvmmsg into the slots: the number of datagrams received (0 when
  /// none waits), or -1 with errno. at(i) gives each of them.
  int receive();
  Received at(int i) const;
  /// Resizes the receive slots for a new max_datagram_bytes (a reload kept
  /// the socket). Nothing may be received or queued but not yet sent.
  void setMaxDatagramBytes(std::size_t maxDatagramBytes);
  std::size_t maxDatagramBytes() const { return slotSize_; }
  /// How many slots a receive() fills at most.
  std::size_t slots() const { return msgs_.size(); }

  /// Queues a copy of @p data for @p peer, from @p local when it is set; sends
  /// the batch first when it is full.
  void queue(std::string_view data, const DatagramPeer& peer, const DatagramLocal& local = {});
  std::size_t queued() const { return queued_.size(); }
  /// What send() did: datagrams (and their bytes) the kernel took, and how
  /// many it refused (dropped: UDP does not queue for a full socket buffer).
  struct SendResult {
    std::size_t sent = 0, bytes = 0, failed = 0;
    int firstError = 0;  // errno of the first refused datagram
  };
  /// Sends everything queued with sendmmsg and empties the queue. A datagram
  /// the kernel refuses is dropped; on EAGAIN/ENOBUFS the rest of the batch too.
  SendResult send();
  /// The totals of the batches sent by themselves (queue() with a full batch) since the last call.
  SendResult takeAutoSent();

 private:
  int fd_ = -1;
  int family_ = 0;
  std::size_t slotSize_;
  std::unique_ptr<char[]> buffer_;     // slots() * slotSize_
  std::vector<mmsghdr> msgs_;          // receive headers, one per slot
  std::vector<iovec> iovs_;
  std::vector<DatagramPeer> peers_;
  bool pktinfo_ = false;  // a wildcard bind: destinations are read and answered from
  // One control buffer per receive slot and per queued datagram (an in6_pktinfo is the larger).
  struct Control {
    alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(in6_pktinfo))];
  };
  std::vector<Control> controls_;
  std::vector<DatagramLocal> locals_;
  struct Queued {
    std::size_t offset, length;
    DatagramPeer peer;
    DatagramLocal local;
  };
  std::vector<Control> sendControls_;
  std::string sendBytes_;              // queued datagrams, back to back
  std::vector<Queued> queued_;
  std::vector<mmsghdr> sendMsgs_;      // reused by send()
  std::vector<iovec> sendIovs_;
  SendResult autoSent_;
};

}  // namespace protohost::host
