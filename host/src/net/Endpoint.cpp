#include "net/Endpoint.h"

#include <arpa/inet.h>

#include <charconv>
#include <vector>

namespace protohost::host {
namespace {

std::vector<std::string> splitUnescaped(const std::string& s) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      parts.back().push_back(s[++i]);
    } else if (s[i] == ':') {
      parts.emplace_back();
    } else {
      parts.back().push_back(s[i]);
    }
  }
  return parts;
}

bool parseInt(const std::string& s, long long min, long long max, long long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size() && out >= min && out <= max;
}

bool isWildcard(const std::string& a) { return a == "0.0.0.0" || a == "::"; }

}  // namespace

std::string Endpoint::toString() const {
  return isIpv6() ? "[" + interface + "]:" + std::to_string(port)
                  : interface + ":" + std::to_string(port);
}

bool Endpoint::conflictsWith(const Endpoint& other) const {
  if (port == 0 || other.port == 0 || port != other.port || scheme != other.scheme) return false;
  if (interface == other.interface) return true;
  // A wildcard bind of one family overlaps every address of that family.
  if (isIpv6() == other.isIpv6() && (isWildcard(interface) || isWildcard(other.interface)))
    return true;
  return false;
}

bool parseEndpoint(const std::string& text, Endpoint& out, std::string& error) {
  auto parts = splitUnescaped(text);
  Endpoint ep;
  ep.scheme = parts[0];
  if (ep.scheme == "ssl" || ep.scheme == "unix") {
    error = "endpoint scheme \"" + ep.scheme + ":\" is not supported yet (only tcp: and udp:)";
    return false;
  }
  if (ep.scheme != "tcp" && ep.scheme != "udp") {
    error = "expected an endpoint like tcp:PORT[:interface=ADDR] or udp:PORT[:interface=ADDR], got \"" + text + "\"";
    return false;
  }
  if (parts.size() < 2 || parts[1].empty()) {
    error = "missing port in \"" + text + "\" (" + ep.scheme + ":PORT[:interface=ADDR])";
    return false;
  }
  long long port = 0;
  if (!parseInt(parts[1], 0, 65535, port)) {
    error = "bad port \"" + parts[1] + "\" (0-65535)";
    return false;
  }
  ep.port = static_cast<std::uint16_t>(port);
  for (std::size_t i = 2; i < parts.size(); ++i) {
    auto eq = parts[i].find('=');
    std::string k = parts[i].substr(0, eq);
    std::string v = eq == std::string::npos ? "" : parts[i].substr(eq + 1);
    if (k == "interface") {
      unsigned char buf[16];
      int family = inet_pton(AF_INET, v.c_str(), buf) == 1    ? AF_INET
                   : inet_pton(AF_INET6, v.c_str(), buf) == 1 ? AF_INET6
                                                              : 0;
      if (!family) {
        error = "bad interface address \"" + v + "\" (an IPv4 or IPv6 literal; escape ':' as '\\:')";
        return false;
      }
      // Canonical text ("0:0::1" -> "::1"), so equal addresses compare equal.
      char canonical[INET6_ADDRSTRLEN];
      ep.interface = inet_ntop(family, buf, canonical, sizeof canonical);
    } else if (k == "backlog" && !ep.isDatagram()) {
      long long b = 0;
      if (!parseInt(v, 1, 65535, b)) {
        error = "bad backlog \"" + v + "\" (1-65535)";
        return false;
      }
      ep.backlog = static_cast<int>(b);
    } else {
      error = "unknown endpoint option \"" + k + "\" (" + (ep.isDatagram() ? "interface" : "interface, backlog") + ")";
      return false;
    }
  }
  out = ep;
  return true;
}

}  // namespace protohost::host
