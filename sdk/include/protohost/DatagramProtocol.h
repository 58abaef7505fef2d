#pragma once
/// @file DatagramProtocol.h
/// UDP: one protocol per listening socket, one call per datagram (Twisted's
/// DatagramProtocol and listenUDP). A factory serves a `udp:` listener by
/// overriding Factory::buildDatagramProtocol. Since SDK 1.3 (appended).

#include <cstddef>
#include <string_view>

#include "protohost/Transport.h"

namespace protohost {

class Reactor;
class Logger;

/// One UDP socket, owned by the host. Every method must be called on the
/// socket's reactor thread (the one that runs its DatagramProtocol's hooks).
class __attribute__((visibility("default"))) DatagramTransport {
 public:
  virtual ~DatagramTransport() = default;

  /// Queues @p datagram for @p to. Never blocks and never fails: the host
  /// sends what was queued at the end of the reactor's dispatch round, in
  /// batches (sendmmsg); a datagram the kernel refuses at once (socket buffer
  /// full, unreachable, larger than maxDatagramSize) is dropped and counted
  /// in /metrics (protohost_datagrams_dropped_total), as UDP allows.
  virtual void sendTo(std::string_view datagram, const Address& to) = 0;

  /// The largest datagram the listener accepts (its max_datagram_bytes);
  /// larger ones are dropped and counted before the protocol sees them.
  virtual std::size_t maxDatagramSize() const = 0;

  /// The address the socket is bound to.
  virtual Address localAddress() const = 0;

  /// The reactor this socket runs on (timers, post); its calls end with the protocol.
  virtual Reactor& reactor() = 0;

  /// A logger that tags each line with the listener.
  virtual Logger& logger() = 0;

  /// Counts a datagram the protocol dropped on purpose (a rate limit, a loop
  /// guard) in protohost_datagrams_dropped_total{reason="@p reason"}.
  /// @p reason: 1 to 32 characters of [a-z0-9_]; anything else, and reasons
  /// beyond the host's bound per listener (16), are counted as "other".
  virtual void countDropped(std::string_view reason) = 0;
};

/// Base of every datagram protocol. The host builds one per udp: listener
/// (Factory::buildDatagramProtocol, after the factory's start), calls
/// startProtocol, then datagramReceived for each datagram, and stopProtocol
/// before it destroys it (TERM, a reload that replaced the factory, or the
/// listener removed). Every hook runs on the socket's reactor thread, never
/// two at once, and must not block. An exception from datagramReceived drops
/// that datagram only (logged, counted as reason "plugin_error").
class __attribute__((visibility("default"))) DatagramProtocol {
 public:
  virtual ~DatagramProtocol() = default;

  /// The socket is bound and about to be read; transport() is valid from here on.
  virtual void startProtocol() {}

  /// One datagram (possibly empty) from @p from. @p data is valid only during
  /// the call: copy what you keep.
  virtual void datagramReceived(std::string_view data, const Address& from) = 0;

  /// No more datagrams: cancel what you scheduled. Last hook; transport()
  /// must not be used after it returns.
  virtual void stopProtocol() {}

  /// The transport this protocol sends through. Valid from startProtocol through stopProtocol.
  DatagramTransport& transport() { return *transport_; }
  const DatagramTransport& transport() const { return *transport_; }

  /// Host only (and the SDK test kit): binds the transport before startProtocol.
  void attachTransport(DatagramTransport* transport) { transport_ = transport; }

 private:
  DatagramTransport* transport_ = nullptr;
};

}  // namespace protohost
