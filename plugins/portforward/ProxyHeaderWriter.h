#pragma once
// Builds the PROXY protocol header (HAProxy's doc/proxy-protocol.txt, v1 text
// or v2 binary) that portforward sends upstream before the client's first
// byte, from the client connection's addresses as the host reports them
// (Transport::peerAddress / localAddress: already the original client's when
// the listener has proxy_protocol = required). Pure; no sockets.

#include <string>

#include "protohost/Transport.h"

namespace protohost::plugins::portforward {

/// "PROXY TCP4 SRC DST SPORT DPORT\r\n" (TCP6 for IPv6), or "PROXY UNKNOWN\r\n"
/// when an address is not numeric or the two families differ (an IPv4-mapped
/// IPv6 address counts as IPv4 beside an IPv4 one).
std::string proxyHeaderV1(const Address& source, const Address& destination);

/// The 16-byte v2 header with command PROXY and a TCP over IPv4 (12-byte) or
/// IPv6 (36-byte) address block; AF_UNSPEC with no block in the cases v1 says UNKNOWN.
std::string proxyHeaderV2(const Address& source, const Address& destination);

}  // namespace protohost::plugins::portforward
