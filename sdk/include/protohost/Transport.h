#pragma once
/// @file Transport.h
/// The narrow interface a Protocol writes through (Twisted's ITransport).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "protohost/Handles.h"

namespace protohost {

class Reactor;
class Logger;

/// An endpoint address, e.g. {"127.0.0.1", 7007}.
struct Address {
  std::string host;
  std::uint16_t port = 0;

  std::string toString() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
  }
};

/// What a TLS connection negotiated (Twisted's ISSLTransport and
/// INegotiated.negotiatedProtocol): Transport::tls() returns it on an ssl:
/// listener, and on an outbound ssl: connection, once the handshake is done
/// (a protocol is built only after it). Fixed for the connection's life.
struct TlsInfo {
  std::string version;      ///< "TLSv1.3" or "TLSv1.2"
  std::string cipher;       ///< OpenSSL's name: "TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"
  std::string serverName;   ///< SNI the client sent; empty when it sent none (or on an outbound connection: the name verified)
  std::string alpn;         ///< the protocol ALPN selected, e.g. "h2"; empty when none
  /// The peer's certificate: on a listener with caCerts (mTLS) the client's,
  /// verified against that CA file; on an outbound connection the server's.
  /// Empty when the peer sent none.
  std::string peerSubject;      ///< RFC 2253 form: "CN=client,O=Example"
  std::string peerFingerprint;  ///< SHA-256 of its DER form, lowercase hex (64 characters)
};

/// One connection, owned by the host. Every method must be called on the
/// connection's reactor thread (the thread that runs its Protocol's hooks) and
/// none blocks. After connectionLost the transport is gone: do not keep it.
class __attribute__((visibility("default"))) Transport {
 public:
  virtual ~Transport() = default;

  /// Queues @p bytes for sending, in order. Never blocks and never fails: the
  /// host enforces its per-connection output bound by closing the connection.
  /// Ignored once the connection is closing.
  virtual void write(std::string_view bytes) = 0;

  /// Closes after everything written so far has been sent (loseConnection).
  virtual void loseConnection() = 0;

  /// Closes now and drops unsent output (abortConnection). The peer sees a
  /// reset (RST), not an orderly FIN, so that a proxy can pass a reset on.
  virtual void abortConnection() = 0;

  /// True once loseConnection or abortConnection was called or the host is closing it.
  virtual bool isClosing() const = 0;

  /// Bytes written but not yet accepted by the kernel.
  virtual std::size_t pendingBytes() const = 0;

  /// Stops calling dataReceived until resumeReading (producer flow control).
  /// Input the protocol already has is its own to hold (see readingPaused).
  virtual void pauseReading() = 0;
  virtual void resumeReading() = 0;

  virtual Address peerAddress() const = 0;
  virtual Address localAddress() const = 0;

  /// The reactor this connection runs on (timers, post).
  virtual Reactor& reactor() = 0;

  /// A logger that tags each line with the listener and the peer.
  virtual Logger& logger() = 0;

  /// Producer flow control (Twisted's resumeProducing): calls @p fn once,
  /// later on this connection's thread (never from inside this call), when at
  /// most @p bytes are left unsent. A protocol that streams writes its next
  /// piece from @p fn instead of piling output up for a slow peer. Replaces an
  /// earlier request; an empty @p fn cancels. Not called once the connection
  /// is closing. Since SDK 1.2 (appended: older plugins never call it).
  virtual void whenDrained(std::size_t bytes, std::function<void()> fn) = 0;

  /// True while the host holds input back: the protocol paused reading, or
  /// its unsent output passed the listener's pause_reading_above (reading goes
  /// on once at most half of that is left). A protocol that takes its input in
  /// pieces (LineProtocol: line by line) stops at the next piece, keeps the
  /// rest and goes on from whenReadingResumed. Since SDK 1.3 (appended).
  virtual bool readingPaused() const = 0;

  /// Calls @p fn once, later on this connection's thread (never from inside
  /// this call), when reading is not paused (soon if it is not paused now).
  /// Replaces an earlier request; an empty @p fn cancels. Not called once the
  /// connection is closing. LineProtocol makes this request while it holds
  /// lines back, so its subclasses leave it to LineProtocol. While a request
  /// waits the host reads nothing (no input, no EOF): it fires first. Since SDK 1.3
  /// (appended: older plugins never call it).
  virtual void whenReadingResumed(std::function<void()> fn) = 0;

  // ---- Since SDK 1.3 (appended), continued ----

  /// Half-close (Twisted's loseWriteConnection): sends everything written so
  /// far, then shuts down the sending side (FIN); reading goes on until the
  /// peer closes. Later writes are ignored. Thread: the connection's.
  virtual void shutdownWrite() = 0;
  /// Queues several pieces in order as one write (one writev when they go out
  /// at once): the same as write() of each, without joining them first.
  virtual void writeSequence(std::span<const std::string_view> pieces) = 0;
  /// A token that reaches this connection from any thread, safely after it is
  /// gone (see Handles.h). Thread: the connection's (the handle: any).
  virtual ConnectionHandle handle() = 0;

  // ---- SDK 1.3 (TLS): appended, with a body, so transports written before it still compile.

  /// What TLS negotiated, or null on a plain TCP connection. The pointer stays
  /// valid while the connection lives. Thread: the connection's.
  virtual const TlsInfo* tls() const { return nullptr; }
};

}  // namespace protohost
