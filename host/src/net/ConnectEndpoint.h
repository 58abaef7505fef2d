#pragma once
// Where an outbound connection goes, in Twisted's clientFromString form:
// "tcp:HOST:PORT[:timeout=MS]". HOST is a name, an IPv4 address or an IPv6
// address in brackets ("tcp:[::1]:7007"); PORT is 1-65535; timeout covers name
// resolution and the connect itself (default 10000 ms).
// "ssl:HOST:PORT[:timeout=MS][:caCerts=FILE][:hostname=NAME][:certKey=FILE:privateKey=FILE]"
// is TLS over it: the server's certificate is verified against caCerts (default:
// the system's trust store, /etc/ssl/certs) and against hostname (default:
// HOST; a name or an IP address), which is also the SNI name; certKey and
// privateKey: a client certificate. Paths are absolute or relative to the
// host's working directory, and may not contain ':'.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace protohost::host {

struct ConnectEndpoint {
  std::string host;        // without the brackets of an IPv6 address
  std::uint16_t port = 0;
  std::chrono::milliseconds timeout{10000};
  /// 0 for a name (to resolve), else AF_INET or AF_INET6 (a literal address: no resolution).
  int numericFamily = 0;
  // ssl: only
  bool tls = false;
  std::string caCerts;     // "" : the system's trust store
  std::string serverName;  // what the certificate must name, and the SNI; "" : HOST
  std::string certKey, privateKey;

  /// "HOST:PORT", "[V6]:PORT": the out= tag of the connection's log lines.
  std::string toString() const;
};

inline constexpr std::chrono::milliseconds kMaxConnectTimeout{24 * 60 * 60 * 1000};

/// Parses @p text into @p out. On failure returns false and sets @p error to
/// a message that names the 1-based character position where it went wrong,
/// e.g. "at character 14: port 70000 is not in 1-65535". Any thread.
bool parseConnectEndpoint(std::string_view text, ConnectEndpoint& out, std::string& error);

}  // namespace protohost::host
