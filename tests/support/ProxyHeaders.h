#pragma once
/// @file ProxyHeaders.h
/// Builders of PROXY protocol headers (HAProxy's doc/proxy-protocol.txt) for
/// tests: v1 lines are plain strings; these make the v2 binary form, valid or
/// deliberately broken. Header-only, standard library only.
///
///     std::string h = proxyv2::header(proxyv2::kProxy, proxyv2::kTcp4,
///                                     proxyv2::inet4({192, 0, 2, 1}, {198, 51, 100, 7}, 49152, 443));

#include <array>
#include <cstdint>
#include <string>

namespace protohost::testing::proxyv2 {

/// The 12-byte signature.
inline std::string signature() { return std::string("\r\n\r\n\0\r\nQUIT\n", 12); }

/// Version 2 with the LOCAL / PROXY command (the 13th byte).
inline constexpr std::uint8_t kLocal = 0x20;
inline constexpr std::uint8_t kProxy = 0x21;
/// Family and transport (the 14th byte).
inline constexpr std::uint8_t kUnspec = 0x00;
inline constexpr std::uint8_t kTcp4 = 0x11;
inline constexpr std::uint8_t kUdp4 = 0x12;
inline constexpr std::uint8_t kTcp6 = 0x21;
inline constexpr std::uint8_t kUnixStream = 0x31;

inline std::string be16(std::uint16_t v) {
  return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}

/// Signature, @p verCmd, @p famProto, the length of @p block (or @p lengthOverride
/// when >= 0, for lying headers) and @p block.
inline std::string header(std::uint8_t verCmd, std::uint8_t famProto, const std::string& block = {},
                          long lengthOverride = -1) {
  const auto len = static_cast<std::uint16_t>(lengthOverride >= 0 ? lengthOverride : static_cast<long>(block.size()));
  return signature() + static_cast<char>(verCmd) + static_cast<char>(famProto) + be16(len) + block;
}

/// The AF_INET address block: source, destination, source port, destination port.
inline std::string inet4(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst, std::uint16_t sport,
                         std::uint16_t dport) {
  std::string b;
  for (auto x : src) b.push_back(static_cast<char>(x));
  for (auto x : dst) b.push_back(static_cast<char>(x));
  return b + be16(sport) + be16(dport);
}

/// The AF_INET6 address block.
inline std::string inet6(std::array<std::uint8_t, 16> src, std::array<std::uint8_t, 16> dst, std::uint16_t sport,
                         std::uint16_t dport) {
  std::string b;
  for (auto x : src) b.push_back(static_cast<char>(x));
  for (auto x : dst) b.push_back(static_cast<char>(x));
  return b + be16(sport) + be16(dport);
}

/// 2001:db8::@p last (documentation prefix).
inline std::array<std::uint8_t, 16> docV6(std::uint8_t last) {
  return {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
}

/// The AF_UNIX address block: two 108-byte paths.
inline std::string unixPaths(const std::string& src, const std::string& dst) {
  std::string a = src, b = dst;
  a.resize(108, '\0');
  b.resize(108, '\0');
  return a + b;
}

/// One TLV: type, 16-bit length, value.
inline std::string tlv(std::uint8_t type, const std::string& value) {
  return static_cast<char>(type) + be16(static_cast<std::uint16_t>(value.size())) + value;
}

}  // namespace protohost::testing::proxyv2
