#include "ProxyHeaderWriter.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

namespace protohost::plugins::portforward {

namespace {

struct Ip {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // v4: the first 4
  std::string text;                       // canonical (inet_ntop)
};

std::optional<Ip> parseIp(const std::string& host) {
  Ip ip;
  char text[INET6_ADDRSTRLEN] = {};
  if (::inet_pton(AF_INET, host.c_str(), ip.bytes.data()) == 1) {
    ::inet_ntop(AF_INET, ip.bytes.data(), text, sizeof text);
  } else if (::inet_pton(AF_INET6, host.c_str(), ip.bytes.data()) == 1) {
    ip.v6 = true;
    ::inet_ntop(AF_INET6, ip.bytes.data(), text, sizeof text);
  } else {
    return std::nullopt;
  }
  ip.text = text;
  return ip;
}

// ::ffff:a.b.c.d as a.b.c.d (what a dual-stack socket reports for an IPv4 peer).
std::optional<Ip> asV4(const Ip& ip) {
  if (!ip.v6) return ip;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.bytes.data(), kMapped, sizeof kMapped) != 0) return std::nullopt;
  Ip v4;
  std::memcpy(v4.bytes.data(), ip.bytes.data() + 12, 4);
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, v4.bytes.data(), text, sizeof text);
  v4.text = text;
  return v4;
}

// Both addresses in one family, or nothing (the header then says UNKNOWN / AF_UNSPEC).
bool sameFamily(const Address& source, const Address& destination, Ip& src, Ip& dst) {
  auto s = parseIp(source.host);
  auto d = parseIp(destination.host);
  if (!s || !d) return false;
  if (s->v6 != d->v6) {
    s = asV4(*s);
    d = asV4(*d);
    if (!s || !d) return false;
  }
  src = *s;
  dst = *d;
  return true;
}

void putBe16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

std::string proxyHeaderV1(const Address& source, const Address& destination) {
  Ip src, dst;
  if (!sameFamily(source, destination, src, dst)) return "PROXY UNKNOWN\r\n";
  return std::string("PROXY ") + (src.v6 ? "TCP6 " : "TCP4 ") + src.text + " " + dst.text + " " +
         std::to_string(source.port) + " " + std::to_string(destination.port) + "\r\n";
}

std::string proxyHeaderV2(const Address& source, const Address& destination) {
  std::string out("\r\n\r\n\0\r\nQUIT\n", 12);
  out.push_back(static_cast<char>(0x21));  // version 2, PROXY
  Ip src, dst;
  if (!sameFamily(source, destination, src, dst)) {
    out.push_back(static_cast<char>(0x00));  // AF_UNSPEC: the receiver uses the real endpoints
    putBe16(out, 0);
    return out;
  }
  const std::size_t n = src.v6 ? 16 : 4;
  out.push_back(static_cast<char>(src.v6 ? 0x21 : 0x11));  // TCP over IPv6 / IPv4
  putBe16(out, static_cast<std::uint16_t>(2 * n + 4));
  out.append(reinterpret_cast<const char*>(src.bytes.data()), n);
  out.append(reinterpret_cast<const char*>(dst.bytes.data()), n);
  putBe16(out, source.port);
  putBe16(out, destination.port);
  return out;
}

}  // namespace protohost::plugins::portforward
