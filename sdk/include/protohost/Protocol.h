#pragma once
/// @file Protocol.h
/// One connection's protocol logic (Twisted's Protocol).

#include <string>
#include <string_view>

#include "protohost/Transport.h"

namespace protohost {

/// Why a connection ended.
struct DisconnectReason {
  enum class Kind {
    ClosedByPeer,   ///< the peer closed (EOF) and the host finished flushing
    ClosedLocally,  ///< the protocol called loseConnection/abortConnection
    Error,          ///< a socket error (reset, broken pipe, ...)
    Timeout,        ///< idle or request deadline passed
    Overflow,       ///< the per-connection output bound was exceeded
    PluginError,    ///< a hook of this protocol threw
    Shutdown,       ///< the host is stopping
  };
  Kind kind = Kind::ClosedByPeer;
  std::string detail;  ///< human-readable, e.g. "Connection reset by peer"
};

/// Base of every protocol. The host creates one per connection through the
/// listener's Factory, calls the hooks below on the connection's reactor thread
/// (never two at once, never after connectionLost), and destroys it after
/// connectionLost. Hooks must not block. An exception from a hook closes this
/// connection only (logged with plugin and listener) and the host serves on.
class __attribute__((visibility("default"))) Protocol {
 public:
  virtual ~Protocol() = default;

  /// The connection is established; transport() is valid from here on.
  virtual void connectionMade() {}

  /// Bytes arrived. @p data is only valid during the call: copy what you keep.
  /// Data may arrive split or coalesced anywhere. Default (since SDK 1.3, the
  /// same vtable slot): ignore it, for a protocol that only writes.
  virtual void dataReceived(std::string_view data) { (void)data; }

  /// The peer shut down its sending side (EOF). Default: close after flushing
  /// what was written, as RFC 862 and most request/response protocols want.
  virtual void readEnded() { transport().loseConnection(); }

  /// The host is draining (SIGTERM): no new connections are accepted. Finish
  /// what is in flight and close; the host force-closes whatever is still open
  /// after its drain_timeout_ms. Default: close after flushing what was written.
  virtual void stopRequested() { transport().loseConnection(); }

  /// The connection is gone. Last hook; transport() must not be used after it returns.
  virtual void connectionLost(const DisconnectReason& reason) { (void)reason; }

  /// The transport this protocol writes to. Valid from connectionMade through connectionLost.
  Transport& transport() { return *transport_; }
  const Transport& transport() const { return *transport_; }

  /// Host only (and the SDK test kit): binds the transport before connectionMade.
  void attachTransport(Transport* transport) { transport_ = transport; }

 private:
  Transport* transport_ = nullptr;
};

}  // namespace protohost
