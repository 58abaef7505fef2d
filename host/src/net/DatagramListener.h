#pragma once
// A udp: listener: one socket on one reactor, one DatagramProtocol, and the
// DatagramTransport that protocol sends through. On readable it reads
// batches (recvmmsg), hands each datagram to the protocol inside the
// exception boundary (a throw drops that datagram only), drops and counts
// the datagrams longer than max_datagram_bytes (MSG_TRUNC), and sends what
// the protocol queued with sendTo in one sendmmsg after each batch; sends
// made outside a batch (timers, posts) go at the end of the dispatch round.
//
// Threading: construct and bind() on the main thread; serve(), close() and
// every DatagramTransport method on the loop's thread (or on the main thread
// while the loop is not running). Ownership: the Server's listener slot owns
// it; it owns the protocol and the reactor lent to it, and holds the owner
// (ListenerRuntime: factory and library) for as long as the protocol lives.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/Log.h"
#include "net/ConnectionOwner.h"
#include "net/DatagramSocket.h"
#include "net/Endpoint.h"
#include "reactor/EventLoop.h"
#include "reactor/TrackedReactor.h"
#include "protohost/DatagramProtocol.h"

namespace protohost::host {

class DatagramListener final : public IoHandler, public DatagramTransport {
 public:
  /// @p owner: names, limits (max_datagram_bytes) and counters. @p loop: where it reads. Main thread.
  DatagramListener(std::shared_ptr<ConnectionOwner> owner, Endpoint endpoint, EventLoop& loop);
  ~DatagramListener() override;
  DatagramListener(const DatagramListener&) = delete;
  DatagramListener& operator=(const DatagramListener&) = delete;

  /// Binds (no retry: a UDP port has no TIME_WAIT). Throws
  /// std::runtime_error("cannot listen on udp ADDR: bind: reason"). Main thread.
  void bind();
  /// The endpoint with the port the kernel assigned when it was 0.
  const Endpoint& endpoint() const { return endpoint_; }
  EventLoop& loop() const { return loop_; }
  const std::shared_ptr<ConnectionOwner>& owner() const { return owner_; }

  /// Serves @p protocol (built by @p owner's factory) from now on: the one
  /// before, if any, gets stopProtocol and is destroyed (a reload keeps the
  /// socket: no datagram is lost to a rebind), then @p protocol gets
  /// startProtocol and the socket is read. Loop thread.
  void serve(std::shared_ptr<ConnectionOwner> owner, std::unique_ptr<DatagramProtocol> protocol);
  /// Sends what is queued, stops and destroys the protocol and closes the
  /// socket. Safe to call twice. Loop thread (main once the loop stopped).
  void close();

  // DatagramTransport (the protocol's; loop thread)
  void sendTo(std::string_view datagram, const Address& to) override;
  std::size_t maxDatagramSize() const override { return owner_->limits.maxDatagramBytes; }
  Address localAddress() const override { return Address{endpoint_.interface, endpoint_.port}; }
  Reactor& reactor() override { return *reactor_; }
  Logger& logger() override { return *logger_; }
  void countDropped(std::string_view reason) override { owner_->stats.datagrams.countPluginDrop(reason); }

 private:
  void onIoEvent(std::uint32_t events) override;
  /// The datagrams of one receive batch, each to the protocol.
  void dispatch(int received);
  /// Sends the queue and counts what was sent and refused.
  void flush();
  /// Stops and destroys the protocol being served (flushing first).
  void stopProtocol();
  void pluginFailed(const char* hook, const std::string& what);
  void countDrop(DatagramDrop why, std::size_t n = 1);

  std::shared_ptr<ConnectionOwner> owner_;
  Endpoint endpoint_;
  EventLoop& loop_;
  DatagramSocket socket_;
  std::optional<ContextLogger> logger_;  // tagged with the owner's name (serve)
  std::unique_ptr<TrackedReactor> reactor_;  // lent to protocol_; cancelled with it
  std::unique_ptr<DatagramProtocol> protocol_;
  bool reading_ = false;
  bool inBatch_ = false;        // dispatching a receive batch: its sends go out after it
  bool flushScheduled_ = false;  // a runSoon flush is pending
  std::shared_ptr<DatagramListener*> self_;  // what a pending runSoon flush checks (reset by close)
  // The sender of the datagram being dispatched: sendTo(data, that address)
  // reuses its sockaddr instead of parsing the text again (echo's case).
  const Address* currentFrom_ = nullptr;
  const DatagramPeer* currentPeer_ = nullptr;
  const DatagramLocal* currentLocal_ = nullptr;  // its destination (wildcard binds): the answer's source
  // Senders converted to text, by the low bits of their port: a burst from a
  // few peers converts each once (inet_ntop and a string per datagram cost
  // more than the rest of the echo path).
  struct KnownPeer {
    DatagramPeer peer;
    Address address;
  };
  std::array<KnownPeer, 16> knownPeers_{};
  std::chrono::steady_clock::time_point lastErrorLog_{};
  std::uint64_t errorsSinceLog_ = 0;
};

}  // namespace protohost::host
