#include "net/ConnectEndpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cctype>
#include <charconv>

namespace protohost::host {
namespace {

// Positions in messages are 1-based characters of the whole endpoint string.
bool fail(std::string& error, std::size_t index, const std::string& why) {
  error = "at character " + std::to_string(index + 1) + ": " + why;
  return false;
}

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// Parses all of @p digits as an unsigned number not above @p max.
bool parseNumber(std::string_view digits, unsigned long max, unsigned long& value) {
  if (digits.empty() || digits.size() > 10) return false;
  for (char c : digits)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return ec == std::errc() && end == digits.data() + digits.size() && value <= max;
}

}  // namespace

std::string ConnectEndpoint::toString() const {
  const std::string h = numericFamily == AF_INET6 ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

bool parseConnectEndpoint(std::string_view text, ConnectEndpoint& out, std::string& error) {
  ConnectEndpoint ep;
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    return fail(error, 0, "expected \"tcp:HOST:PORT[:timeout=MS]\"");
  const std::string_view scheme = text.substr(0, colon);
  if (scheme == "tls" || scheme == "unix" || scheme == "udp")
    return fail(error, 0, "scheme \"" + std::string(scheme) + "\" is not supported (tcp or ssl)");
  if (scheme != "tcp" && scheme != "ssl")
    return fail(error, 0, "unknown scheme \"" + std::string(scheme) + "\" (expected tcp or ssl)");
  ep.tls = scheme == "ssl";

  // HOST
  std::size_t pos = colon + 1;
  if (pos < text.size() && text[pos] == '[') {
    const std::size_t close = text.find(']', pos);
    if (close == std::string_view::npos) return fail(error, pos, "IPv6 address without a closing ']'");
    ep.host = std::string(text.substr(pos + 1, close - pos - 1));
    in6_addr a6{};
    if (ep.host.empty() || ::inet_pton(AF_INET6, ep.host.c_str(), &a6) != 1)
      return fail(error, pos + 1, "\"" + ep.host + "\" is not an IPv6 address");
    ep.numericFamily = AF_INET6;
    pos = close + 1;
  } else {
    const std::size_t end = std::min(text.find(':', pos), text.size());
    ep.host = std::string(text.substr(pos, end - pos));
    if (ep.host.empty()) return fail(error, pos, "missing host");
    for (std::size_t i = 0; i < ep.host.size(); ++i)
      if (!isNameChar(ep.host[i]))
        return fail(error, pos + i, std::string("'") + ep.host[i] + "' in host \"" + ep.host +
                                        "\" (an IPv6 address goes in brackets: [::1])");
    if (ep.host.size() > 253) return fail(error, pos, "host name longer than 253 characters");
    in_addr a4{};
    bool dotsAndDigits = true;
    for (char c : ep.host) dotsAndDigits = dotsAndDigits && (c == '.' || std::isdigit(static_cast<unsigned char>(c)));
    if (::inet_pton(AF_INET, ep.host.c_str(), &a4) == 1) ep.numericFamily = AF_INET;
    else if (dotsAndDigits) return fail(error, pos, "\"" + ep.host + "\" is not an IPv4 address");
    pos = end;
  }

  // PORT
  if (pos >= text.size() || text[pos] != ':') return fail(error, pos, "expected ':PORT' after the host");
  ++pos;
  const std::size_t portEnd = std::min(text.find(':', pos), text.size());
  const std::string_view portText = text.substr(pos, portEnd - pos);
  unsigned long port = 0;
  if (portText.empty()) return fail(error, pos, "missing port");
  if (!parseNumber(portText, 65535, port) || port == 0)
    return fail(error, pos, "port \"" + std::string(portText) + "\" is not in 1-65535");
  ep.port = static_cast<std::uint16_t>(port);
  pos = portEnd;

  // Options
  bool timeoutSeen = false;
  while (pos < text.size()) {
    ++pos;  // the ':'
    const std::size_t optEnd = std::min(text.find(':', pos), text.size());
    const std::string_view opt = text.substr(pos, optEnd - pos);
    const std::size_t eq = opt.find('=');
    const std::string_view key = opt.substr(0, eq);
    if (ep.tls && (key == "caCerts" || key == "hostname" || key == "certKey" || key == "privateKey")) {
      const std::string value(eq == std::string_view::npos ? std::string_view() : opt.substr(eq + 1));
      if (value.empty()) return fail(error, pos, std::string(key) + "= needs a value");
      (key == "caCerts" ? ep.caCerts : key == "hostname" ? ep.serverName : key == "certKey" ? ep.certKey : ep.privateKey) =
          value;
      pos = optEnd;
      continue;
    }
    if (key != "timeout")
      return fail(error, pos, "unknown option \"" + std::string(key) + "\" (expected timeout=MS" +
                                  (ep.tls ? ", caCerts=FILE, hostname=NAME, certKey=FILE, privateKey=FILE)" : ")"));
    if (timeoutSeen) return fail(error, pos, "timeout given twice");
    timeoutSeen = true;
    unsigned long ms = 0;
    if (eq == std::string_view::npos) return fail(error, pos + key.size(), "expected timeout=MS");
    const std::string_view value = opt.substr(eq + 1);
    if (!parseNumber(value, static_cast<unsigned long>(kMaxConnectTimeout.count()), ms) || ms == 0)
      return fail(error, pos + eq + 1,
                  "timeout \"" + std::string(value) + "\" is not in 1-" + std::to_string(kMaxConnectTimeout.count()) + " ms");
    ep.timeout = std::chrono::milliseconds(ms);
    pos = optEnd;
  }
  if (ep.certKey.empty() != ep.privateKey.empty())
    return fail(error, 0, "certKey and privateKey go together (a client certificate and its key)");
  out = std::move(ep);
  return true;
}

}  // namespace protohost::host
