#pragma once
// The one way the host opens a socket on a listening endpoint, for tcp:
// (Listener) and udp: (DatagramSocket): non-blocking and close-on-exec,
// IPV6_V6ONLY on IPv6, SO_REUSEADDR on stream sockets, never SO_REUSEPORT.

#include "net/Endpoint.h"

namespace protohost::host {

/// socket(@p type) + options + bind() of @p endpoint. Returns the fd, or -1
/// with @p err the errno and @p step the call that failed (nothing stays open).
/// Thread: any.
int bindEndpoint(const Endpoint& endpoint, int type, int& err, const char*& step);

}  // namespace protohost::host
