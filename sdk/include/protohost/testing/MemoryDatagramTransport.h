#pragma once
/// @file testing/MemoryDatagramTransport.h
/// An in-memory DatagramTransport for unit tests (Twisted's
/// proto_helpers.FakeDatagramTransport): records every sendTo and every
/// countDropped, with no sockets.
///
///     MemoryDatagramTransport t;
///     EchoDatagramProtocol p;
///     t.start(p);                                  // attachTransport + startProtocol
///     t.receive(p, "hello", {"127.0.0.1", 5555});  // datagramReceived
///     ASSERT_EQ(t.sent().size(), 1u);
///     EXPECT_EQ(t.sent()[0].data, "hello");
///     t.stop(p);                                   // stopProtocol
///
/// Like the host it drops (and counts as "too_large") a datagram longer than
/// maxDatagramSize() before the protocol sees it, and a sendTo longer than
/// that is dropped and counted as "send_too_large". Timers run on its
/// ManualReactor (advance). Single-threaded.

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protohost/DatagramProtocol.h"
#include "protohost/Transport.h"
#include "protohost/testing/ManualReactor.h"
#include "protohost/testing/MemoryKit.h"

namespace protohost::testing {

class MemoryDatagramTransport : public DatagramTransport, public MemoryKit {
 public:
  /// One datagram the protocol sent.
  struct Sent {
    std::string data;
    Address to;
  };

  MemoryDatagramTransport() = default;
  explicit MemoryDatagramTransport(Reactor& reactor) : MemoryKit(reactor) {}
  MemoryDatagramTransport(const MemoryDatagramTransport&) = delete;
  MemoryDatagramTransport& operator=(const MemoryDatagramTransport&) = delete;

  void sendTo(std::string_view datagram, const Address& to) override {
    if (datagram.size() > maxSize_) {
      countDropped("send_too_large");
      return;
    }
    sent_.push_back({std::string(datagram), to});
  }
  std::size_t maxDatagramSize() const override { return maxSize_; }
  Address localAddress() const override { return local_; }
  Reactor& reactor() override { return kitReactor(); }
  Logger& logger() override { return kitLogger(); }
  void countDropped(std::string_view reason) override { ++dropped_[std::string(reason)]; }

  // ---- test-only helpers (not transport methods) ----

  /// Binds @p protocol to this transport and calls startProtocol.
  void start(DatagramProtocol& protocol) {
    protocol.attachTransport(this);
    protocol.startProtocol();
  }
  /// Delivers one datagram from @p from, as the host does: dropped and
  /// counted ("too_large") when longer than maxDatagramSize().
  void receive(DatagramProtocol& protocol, std::string_view data, const Address& from) {
    if (data.size() > maxSize_) {
      countDropped("too_large");
      return;
    }
    protocol.datagramReceived(data, from);
  }
  /// Calls stopProtocol as the host does before destroying the protocol.
  void stop(DatagramProtocol& protocol) { protocol.stopProtocol(); }

  /// Every datagram sent so far, in order.
  const std::vector<Sent>& sent() const { return sent_; }
  /// Returns and forgets what was sent so far.
  std::vector<Sent> take() { return std::exchange(sent_, {}); }
  /// How many datagrams were counted as dropped with @p reason.
  std::size_t dropped(const std::string& reason) const {
    auto it = dropped_.find(reason);
    return it == dropped_.end() ? 0 : it->second;
  }
  const std::map<std::string, std::size_t>& droppedByReason() const { return dropped_; }
  void setMaxDatagramSize(std::size_t n) { maxSize_ = n; }
  void setLocal(Address a) { local_ = std::move(a); }

 private:
  std::vector<Sent> sent_;
  std::map<std::string, std::size_t> dropped_;
  std::size_t maxSize_ = 65507;  // the host's default max_datagram_bytes
  Address local_{"127.0.0.1", 7};
};

}  // namespace protohost::testing
