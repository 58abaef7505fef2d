#pragma once
// Listening endpoints in Twisted's string form: "tcp:PORT[:interface=ADDR][:backlog=N]",
// "udp:PORT[:interface=ADDR]" (a datagram listener: no backlog) and
// "ssl:PORT[:interface=ADDR][:backlog=N]:certKey=CERT.pem:privateKey=KEY.pem[...]"
// (TLS over TCP; the TLS options below).
// A colon inside a value is escaped with a backslash: "tcp:7007:interface=\:\:1".

#include <cstdint>
#include <string>
#include <vector>

namespace protohost::host {

/// One certificate of an ssl: listener: certKey=CERT (leaf first, then its
/// chain, PEM) and privateKey=KEY. Either may be left out when one PEM file
/// holds both, as in Twisted.
struct TlsCertificate {
  std::string cert;
  std::string key;
  bool operator==(const TlsCertificate&) const = default;
};

/// The TLS options of an ssl: endpoint, in Twisted's key names where Twisted
/// has one. Paths are absolute once HostConfig resolved them.
struct TlsOptions {
  /// Repeating certKey/privateKey adds certificates: the client's SNI name picks
  /// the one whose names (SAN, else CN) match it; the first is the default.
  std::vector<TlsCertificate> certificates;
  std::string extraCertChain;  // more intermediates, sent after every certificate's own chain
  std::string caCerts;         // client certificates (mTLS) are verified against this PEM file
  enum class ClientCert { Off, Optional, Required };
  ClientCert clientCert = ClientCert::Off;  // with caCerts: Required unless clientCert=optional
  std::vector<std::string> alpn;            // alpn=h2,http/1.1: the server's order of preference
  bool ktls = false;                        // ktls=on: the kernel's TLS record layer where it can
  bool operator==(const TlsOptions&) const = default;
};

struct Endpoint {
  std::string scheme = "tcp";
  std::uint16_t port = 0;  // 0: the kernel picks a free port (logged at start)
  std::string interface = "0.0.0.0";
  int backlog = 4096;  // the kernel caps it at net.core.somaxconn (4096 on Debian 12)
  TlsOptions tls;      // ssl: only

  std::string toString() const;  // "127.0.0.1:7007" / "[::1]:7007" (without the scheme)
  /// A udp: endpoint (served by a DatagramListener, not a Listener).
  bool isDatagram() const { return scheme == "udp"; }
  /// An ssl: endpoint (TLS over TCP).
  bool isTls() const { return scheme == "ssl"; }
  bool isIpv6() const { return interface.find(':') != std::string::npos; }
  /// True when both would bind the same port on overlapping addresses
  /// (tcp: and ssl: share TCP ports; udp: ports are apart).
  bool conflictsWith(const Endpoint& other) const;
};

/// Parses @p text into @p out; on failure returns false and sets @p error.
bool parseEndpoint(const std::string& text, Endpoint& out, std::string& error);

}  // namespace protohost::host
