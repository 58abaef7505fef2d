#pragma once
/// @file testing/MemoryPair.h
/// A client protocol connected to a server protocol in memory (Twisted's
/// iosim / loopbackAsync), pumped deterministically by the test:
///
///     ManualReactor reactor;
///     MyClient client;  MyServer server;
///     MemoryPair pair(client, server, reactor);   // connectionMade: server, then client
///     client.ask("GET x");
///     pair.pump();                                 // bytes both ways until quiet
///     EXPECT_EQ(client.answer, "x");
///
/// Each side is a MemoryTransport on the one reactor, so pauses, whenDrained,
/// whenReadingResumed and handles behave as they do there. pump() moves what
/// each side wrote to the other (in chunks of chunkSize bytes, down to 1) and
/// runs posted work, until nothing moves. Closing, as in the host:
///  - loseConnection: the rest of the output goes over, then the side is
///    lost (ClosedLocally; ClosedByPeer if it had the peer's EOF) and the
///    peer gets an EOF (readEnded); what the peer writes afterwards is dropped.
///  - shutdownWrite: the output goes over, then the peer gets an EOF; both
///    sides stay open.
///  - abortConnection: unsent output is dropped, the side is lost
///    (ClosedLocally) and the peer is lost with a reset (Error).
/// Back-pressure: a side's pendingBytes() is what its peer has not read
/// (held while the peer's reading is paused), so setPauseThreshold and
/// whenDrained on a side follow its peer's reading. Single-threaded.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "protohost/Protocol.h"
#include "protohost/testing/ManualReactor.h"
#include "protohost/testing/MemoryTransport.h"

namespace protohost::testing {

class MemoryPair {
 public:
  /// Connects @p client to @p server on @p reactor (server's connectionMade
  /// first). Both protocols must outlive the pair's use.
  MemoryPair(Protocol& client, Protocol& server, ManualReactor& reactor)
      : reactor_(reactor), client_{&client, MemoryTransport(reactor)}, server_{&server, MemoryTransport(reactor)} {
    client_.transport.setPeer(server_.transport.localAddress());
    client_.transport.setLocal(server_.transport.peerAddress());
    server_.transport.connect(server);
    client_.transport.connect(client);
  }
  MemoryPair(const MemoryPair&) = delete;
  MemoryPair& operator=(const MemoryPair&) = delete;

  /// Moves bytes, EOFs and closes both ways and runs posted work until
  /// nothing changes. Throws std::runtime_error when the two protocols keep
  /// talking for @p maxRounds rounds (a ping-pong that never ends).
  /// Returns how many bytes moved. Timers do not run: advance the reactor.
  std::size_t pump(std::size_t maxRounds = 100000) {
    std::size_t moved = 0;
    for (std::size_t round = 0;; ++round) {
      if (round == maxRounds) throw std::runtime_error("MemoryPair::pump: still busy after maxRounds rounds");
      const std::size_t before = moved;
      bool changed = reactor_.runPending() != 0;
      changed |= step(client_, server_, moved);
      changed |= step(server_, client_, moved);
      changed |= updatePending(client_, server_) | updatePending(server_, client_);
      if (!changed && moved == before) return moved;
    }
  }

  /// Bytes per dataReceived call on delivery (default: all that moved at once).
  void setChunkSize(std::size_t n) { chunk_ = std::max<std::size_t>(n, 1); }

  Protocol& client() { return *client_.protocol; }
  Protocol& server() { return *server_.protocol; }
  MemoryTransport& clientTransport() { return client_.transport; }
  MemoryTransport& serverTransport() { return server_.transport; }
  ManualReactor& reactor() { return reactor_; }
  /// Whether each side's connectionLost ran.
  bool clientLost() const { return client_.transport.lost(); }
  bool serverLost() const { return server_.transport.lost(); }

 private:
  struct Side {
    Protocol* protocol;
    MemoryTransport transport;
    bool eofSent = false;  // the peer got this side's EOF
    bool gotEof = false;   // this side got the peer's EOF
  };

  // One direction: @p from's output, EOF and close to @p to. True when something happened.
  bool step(Side& from, Side& to, std::size_t& moved) {
    if (from.transport.lost()) return false;
    if (from.transport.aborted()) {
      from.transport.clear();
      from.transport.disconnect(*from.protocol, {DisconnectReason::Kind::ClosedLocally, "aborted"});
      if (!to.transport.lost())
        to.transport.disconnect(*to.protocol, {DisconnectReason::Kind::Error, "Connection reset by peer"});
      return true;
    }
    bool changed = false;
    std::string bytes = from.transport.take();
    if (!bytes.empty() && !to.transport.lost()) {
      moved += bytes.size();
      to.transport.feed(*to.protocol, bytes, chunk_);
      changed = true;
    }
    const bool writeDone = from.transport.writeShutDown() || from.transport.closed();
    if (writeDone && !from.eofSent) {
      from.eofSent = true;
      if (!to.transport.lost()) {
        to.gotEof = true;
        to.transport.feedEof(*to.protocol);
      }
      changed = true;
    }
    if (from.transport.closed() && !from.transport.aborted() && from.eofSent) {
      const auto kind = from.gotEof ? DisconnectReason::Kind::ClosedByPeer : DisconnectReason::Kind::ClosedLocally;
      from.transport.disconnect(*from.protocol, {kind, "closed"});
      changed = true;
    }
    return changed;
  }

  // @p side's unsent output is what @p peer holds unread.
  static bool updatePending(Side& side, Side& peer) {
    const std::size_t pending = peer.transport.lost() ? 0 : peer.transport.heldBytes();
    if (pending == side.transport.pendingBytes()) return false;
    side.transport.setPendingBytes(pending);
    return true;
  }

  ManualReactor& reactor_;
  Side client_;
  Side server_;
  std::size_t chunk_ = SIZE_MAX;
};

inline MemoryPair& ManualReactor::acceptConnect(ConnectId id, Protocol& server) {
  auto it = connects_.find(id.value);
  if (it == connects_.end()) throw std::invalid_argument("ManualReactor::acceptConnect: no such pending connect");
  Connected c{std::move(it->second.protocol), nullptr};
  connects_.erase(it);
  c.pair = std::make_shared<MemoryPair>(*c.client, server, *this);
  connected_.push_back(std::move(c));
  return *connected_.back().pair;
}

}  // namespace protohost::testing
