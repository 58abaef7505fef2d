#include "Settings.h"

#include <cctype>
#include <charconv>
#include <string_view>

namespace protohost::plugins::portforward {

namespace {

// Checks "tcp:HOST:PORT" or "ssl:HOST:PORT" (HOST a name, an IPv4 address or
// [IPv6]); returns the problem, or "" when it is well-formed.
std::string upstreamProblem(std::string_view v) {
  constexpr std::string_view kForm = " (expected tcp:HOST:PORT or ssl:HOST:PORT, e.g. tcp:127.0.0.1:8080)";
  if (v.substr(0, 4) != "tcp:" && v.substr(0, 4) != "ssl:")
    return "\"" + std::string(v) + "\" does not start with tcp: or ssl:" + std::string(kForm);
  std::string_view rest = v.substr(4);
  std::string_view host;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return "\"" + std::string(v) + "\": unterminated [IPv6 address";
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') return "\"" + std::string(v) + "\": no port" + std::string(kForm);
    rest.remove_prefix(1);
  } else {
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos) return "\"" + std::string(v) + "\": no port" + std::string(kForm);
    host = rest.substr(0, colon);
    rest.remove_prefix(colon + 1);
  }
  if (host.empty()) return "\"" + std::string(v) + "\": no host" + std::string(kForm);
  if (rest.find(':') != std::string_view::npos)
    return "\"" + std::string(v) + "\": options after the port are not accepted here (the connect timeout is "
           "connect_timeout_ms)";
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), port);
  if (rest.empty() || ec != std::errc() || ptr != rest.data() + rest.size() || port == 0 || port > 65535)
    return "\"" + std::string(v) + "\": port must be 1-65535";
  return {};
}

}  // namespace

Settings readSettings(const ConfigView& config) {
  Settings s;
  s.upstream = config.requireString("upstream");
  if (std::string problem = upstreamProblem(s.upstream); !problem.empty()) config.fail("upstream", problem);
  s.connectTimeoutMs = static_cast<int>(config.getInt("connect_timeout_ms", s.connectTimeoutMs, 1, 600000));
  const std::string proxy = config.getChoice("send_proxy", "off", {"off", "v1", "v2"});
  s.sendProxy = proxy == "v1" ? SendProxy::V1 : proxy == "v2" ? SendProxy::V2 : SendProxy::Off;
  s.bufferBytes = static_cast<std::size_t>(
      config.getInt("buffer_bytes", static_cast<std::int64_t>(s.bufferBytes), 1024, 16 << 20));
  s.endpoint = s.upstream + ":timeout=" + std::to_string(s.connectTimeoutMs);
  // ssl: upstreams: the certificate is verified against upstream_ca_certs (default:
  // the system's trust store) and names upstream_server_name (default: HOST).
  const bool tls = s.upstream.rfind("ssl:", 0) == 0;
  for (const char* key : {"upstream_ca_certs", "upstream_server_name"})
    if (!tls && config.has(key)) config.fail(key, "applies to an ssl: upstream only");
  if (tls) {
    const std::string ca = config.getPath("upstream_ca_certs");
    const std::string name = config.getString("upstream_server_name", "");
    if (ca.find(':') != std::string::npos) config.fail("upstream_ca_certs", "a path with ':' cannot be used here");
    for (char c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
        config.fail("upstream_server_name", "\"" + name + "\" is not a host name or IPv4 address");
    if (!ca.empty()) s.endpoint += ":caCerts=" + ca;
    if (!name.empty()) s.endpoint += ":hostname=" + name;
  }
  return s;
}

}  // namespace protohost::plugins::portforward
