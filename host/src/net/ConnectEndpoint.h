#pragma once
// Where an outbound connection goes, in Twisted's clientFromString form:
// "tcp:HOST:PORT[:timeout=MS]". HOST is a name, an IPv4 address or an IPv6
// address in brackets ("tcp:[::1]:7007"); PORT is 1-65535; timeout covers name
// resolution and the connect itself (default 10000 ms). Room is left for
// "ssl:" (refused as not supported yet).

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

  /// "HOST:PORT", "[V6]:PORT": the out= tag of the connection's log lines.
  std::string toString() const;
};

inline constexpr std::chrono::milliseconds kMaxConnectTimeout{24 * 60 * 60 * 1000};

/// Parses @p text into @p out. On failure returns false and sets @p error to
/// a message that names the 1-based character position where it went wrong,
/// e.g. "at character 14: port 70000 is not in 1-65535". Any thread.
bool parseConnectEndpoint(std::string_view text, ConnectEndpoint& out, std::string& error);

}  // namespace protohost::host
