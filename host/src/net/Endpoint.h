#pragma once
// Listening endpoints in Twisted's string form: "tcp:PORT[:interface=ADDR][:backlog=N]"
// and "udp:PORT[:interface=ADDR]" (a datagram listener: no backlog).
// A colon inside a value is escaped with a backslash: "tcp:7007:interface=\:\:1".
// Room is left for "ssl:" (refused as not supported yet).

#include <cstdint>
#include <string>

namespace protohost::host {

struct Endpoint {
  std::string scheme = "tcp";
  std::uint16_t port = 0;  // 0: the kernel picks a free port (logged at start)
  std::string interface = "0.0.0.0";
  int backlog = 4096;  // the kernel caps it at net.core.somaxconn (4096 on Debian 12)

  std::string toString() const;  // "127.0.0.1:7007" / "[::1]:7007" (without the scheme)
  /// A udp: endpoint (served by a DatagramListener, not a Listener).
  bool isDatagram() const { return scheme == "udp"; }
  bool isIpv6() const { return interface.find(':') != std::string::npos; }
  /// True when both would bind the same port on overlapping addresses
  /// (tcp: and udp: ports are apart).
  bool conflictsWith(const Endpoint& other) const;
};

/// Parses @p text into @p out; on failure returns false and sets @p error.
bool parseEndpoint(const std::string& text, Endpoint& out, std::string& error);

}  // namespace protohost::host
