#include "net/Endpoint.h"

#include <arpa/inet.h>

#include <charconv>
#include <utility>
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

// An ALPN protocol name: 1-255 bytes (RFC 7301), printable here.
bool validAlpn(const std::string& p) {
  if (p.empty() || p.size() > 255) return false;
  for (unsigned char c : p)
    if (c <= ' ' || c > '~' || c == ',') return false;
  return true;
}

/// An ssl: option: returns false when @p k is not one; sets @p error when its value is bad.
bool parseTlsOption(const std::string& k, const std::string& v, TlsOptions& tls, std::string& error) {
  auto needValue = [&] {
    if (v.empty()) error = "endpoint option " + k + "= needs a value";
    return v.empty();
  };
  if (k == "certKey" || k == "privateKey") {
    if (needValue()) return true;
    // A key seen again starts the next certificate (certKey=a:privateKey=a.key:certKey=b:...).
    if (tls.certificates.empty() || !(k == "certKey" ? tls.certificates.back().cert : tls.certificates.back().key).empty())
      tls.certificates.emplace_back();
    (k == "certKey" ? tls.certificates.back().cert : tls.certificates.back().key) = v;
  } else if (k == "extraCertChain") {
    if (!needValue()) tls.extraCertChain = v;
  } else if (k == "caCerts") {
    if (!needValue()) tls.caCerts = v;
  } else if (k == "clientCert") {
    if (v == "required") tls.clientCert = TlsOptions::ClientCert::Required;
    else if (v == "optional") tls.clientCert = TlsOptions::ClientCert::Optional;
    else error = "bad clientCert \"" + v + "\" (required or optional)";
  } else if (k == "alpn") {
    tls.alpn.clear();
    std::string item;
    for (std::size_t i = 0; i <= v.size(); ++i) {
      if (i < v.size() && v[i] != ',') {
        item.push_back(v[i]);
        continue;
      }
      if (!validAlpn(item)) {
        error = "bad alpn list \"" + v + "\" (comma-separated protocol names, e.g. alpn=h2,http/1.1)";
        return true;
      }
      tls.alpn.push_back(std::exchange(item, {}));
    }
  } else if (k == "ktls") {
    if (v == "on") tls.ktls = true;
    else if (v == "off") tls.ktls = false;
    else error = "bad ktls \"" + v + "\" (on or off)";
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::string Endpoint::toString() const {
  return isIpv6() ? "[" + interface + "]:" + std::to_string(port)
                  : interface + ":" + std::to_string(port);
}

bool Endpoint::conflictsWith(const Endpoint& other) const {
  if (port == 0 || other.port == 0 || port != other.port || isDatagram() != other.isDatagram()) return false;
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
  if (ep.scheme == "unix") {
    error = "endpoint scheme \"unix:\" is not supported yet (tcp:, ssl: and udp:)";
    return false;
  }
  if (ep.scheme != "tcp" && ep.scheme != "udp" && ep.scheme != "ssl") {
    error = "expected an endpoint like tcp:PORT[:interface=ADDR], ssl:PORT:certKey=CERT:privateKey=KEY or "
            "udp:PORT[:interface=ADDR], got \"" + text + "\"";
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
    } else if (ep.isTls() && parseTlsOption(k, v, ep.tls, error)) {
      if (!error.empty()) return false;
    } else {
      error = "unknown endpoint option \"" + k + "\" (" +
              (ep.isDatagram() ? "interface"
               : ep.isTls()    ? "interface, backlog, certKey, privateKey, extraCertChain, caCerts, clientCert, alpn, ktls"
                               : "interface, backlog") +
              ")";
      return false;
    }
  }
  if (ep.isTls()) {
    if (ep.tls.certificates.empty()) {
      error = "an ssl: endpoint needs a certificate: certKey=CERT.pem[:privateKey=KEY.pem]";
      return false;
    }
    for (auto& c : ep.tls.certificates) {  // one PEM file with both, as Twisted allows
      if (c.cert.empty()) c.cert = c.key;
      if (c.key.empty()) c.key = c.cert;
    }
    if (ep.tls.caCerts.empty() && ep.tls.clientCert != TlsOptions::ClientCert::Off) {
      error = "clientCert needs caCerts=CA.pem (the CAs client certificates are verified against)";
      return false;
    }
    if (!ep.tls.caCerts.empty() && ep.tls.clientCert == TlsOptions::ClientCert::Off)
      ep.tls.clientCert = TlsOptions::ClientCert::Required;
  }
  out = ep;
  return true;
}

}  // namespace protohost::host
