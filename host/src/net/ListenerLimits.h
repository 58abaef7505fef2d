#pragma once
// Per-listener limits and connection policy the host enforces, from host-owned
// keys of [listener.NAME].

#include <cstddef>

namespace protohost::host {

struct ListenerLimits {
  std::size_t maxConnections = 0;       // 0 = unlimited
  std::size_t maxConnectionsPerIp = 0;  // 0 = unlimited
  int idleTimeoutMs = 0;                // 0 = none: close after this long without input or output
  /// A connection whose unsent output exceeds this is closed (Overflow).
  std::size_t maxOutputBytes = 64u << 20;
  /// Reading pauses while more than this much output is unsent (echo-style
  /// back-pressure); it resumes at half of it.
  std::size_t pauseReadingAbove = 1u << 20;
  /// proxy_protocol = required: every connection starts with a PROXY protocol
  /// header (v1 or v2), read and checked before any plugin code runs.
  bool proxyProtocol = false;
  /// How long a connection may take to send its complete PROXY header.
  int proxyProtocolTimeoutMs = 3000;
  /// udp: listeners: a larger datagram is dropped and counted (reason
  /// "too_large") before the protocol sees it. 65507 is the largest UDP
  /// payload over IPv4, so RFC 862 echo answers every datagram by default.
  std::size_t maxDatagramBytes = 65507;
  /// ssl: listeners: how long a connection may take to complete its TLS
  /// handshake (nginx's ssl_handshake_timeout), counted from the accept (or
  /// from the end of its PROXY header).
  int tlsHandshakeTimeoutMs = 10000;
};

}  // namespace protohost::host
