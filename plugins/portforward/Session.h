#pragma once
// One forwarded connection (Twisted's portforward.ProxyServer/ProxyClient
// pair; HAProxy's `mode tcp` stream): the client's accepted connection, the
// upstream connection it opens with Reactor::connect, and the rules between them.
//
//  - Until the upstream connects, the client's bytes (and its EOF) are held;
//    past Settings::bufferBytes its reading pauses.
//  - On connect: the PROXY header (send_proxy), then the held bytes.
//  - Back-pressure both ways: when more than bufferBytes is unsent to one side,
//    reading from the other pauses until at most half is left (whenDrained).
//  - Half-close: an EOF from one side becomes shutdownWrite() on the other;
//    once both sides sent theirs the upstream is closed (after its output is
//    flushed), then the client (after its output is flushed).
//  - RST maps to RST: a side lost with an error (reset, broken pipe), an
//    overflow or a plugin error aborts the other (abortConnection).
//  - The upstream cannot be reached (refused, timeout, unresolvable): a
//    warning through the client's logger and the client is closed; the host
//    counts the failure in protohost_connections_failed_total{direction="out"}.
//  - When the client ends first, the host closes the upstream (it is owned by
//    the client's connection: Reactor::connect).
//
// Ownership: the two protocols share the Session (shared_ptr); each side's
// transport pointer is cleared by its connectionLost. Threading: everything
// runs on the client connection's reactor thread (the upstream runs there too).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "Settings.h"
#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost::plugins::portforward {

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(std::shared_ptr<const Settings> settings) : settings_(std::move(settings)) {}

  // Client side (the accepted connection).
  void clientMade(Transport& client);
  void clientData(std::string_view data);
  void clientEnded();
  void clientLost(const DisconnectReason& reason);

  // Upstream side (the outbound connection).
  void upstreamMade(Transport& upstream);
  void upstreamData(std::string_view data);
  void upstreamEnded();
  void upstreamLost(const DisconnectReason& reason);
  void connectFailed(const ConnectError& error);

 private:
  /// Pauses the client until the upstream's unsent output is down to half the bound.
  void holdClient();
  void releaseClient();
  void holdUpstream();
  void releaseUpstream();
  /// Both sides sent their EOF: close the upstream, then (upstreamLost) the client.
  void closeWhenBothEnded();

  std::shared_ptr<const Settings> settings_;
  Transport* client_ = nullptr;    // null before connectionMade and after connectionLost
  Transport* upstream_ = nullptr;  // likewise
  bool connecting_ = false;
  std::string early_;              // client bytes that came before the upstream connected
  bool clientEnded_ = false;       // the client's EOF arrived
  bool upstreamEnded_ = false;     // the upstream's EOF arrived
  bool clientHeld_ = false;        // client reading paused by this session
  bool upstreamHeld_ = false;      // upstream reading paused by this session
};

/// The accepted connection's protocol. Thread: its reactor's.
class ClientProtocol : public Protocol {
 public:
  explicit ClientProtocol(std::shared_ptr<const Settings> settings)
      : session_(std::make_shared<Session>(std::move(settings))) {}
  void connectionMade() override { session_->clientMade(transport()); }
  void dataReceived(std::string_view data) override { session_->clientData(data); }
  void readEnded() override { session_->clientEnded(); }
  /// Draining: connections in flight go on until they end or the host's
  /// drain_timeout_ms closes them (HAProxy's soft stop).
  void stopRequested() override {}
  void connectionLost(const DisconnectReason& reason) override { session_->clientLost(reason); }

 private:
  std::shared_ptr<Session> session_;
};

/// The outbound connection's protocol. Thread: the client's reactor.
class UpstreamProtocol : public Protocol {
 public:
  explicit UpstreamProtocol(std::shared_ptr<Session> session) : session_(std::move(session)) {}
  void connectionMade() override { session_->upstreamMade(transport()); }
  void dataReceived(std::string_view data) override { session_->upstreamData(data); }
  void readEnded() override { session_->upstreamEnded(); }
  void stopRequested() override {}
  void connectionLost(const DisconnectReason& reason) override { session_->upstreamLost(reason); }

 private:
  std::shared_ptr<Session> session_;
};

/// Short name of a connect failure, as /metrics labels it ("refused", "timeout", ...).
const char* connectErrorName(ConnectError::Kind kind);

}  // namespace protohost::plugins::portforward
