#include "base/ListenerStats.h"

namespace protohost::host {

const char* refusalName(Refusal r) {
  switch (r) {
    case Refusal::HostMaxConnections: return "host_max_connections";
    case Refusal::MaxConnections: return "max_connections";
    case Refusal::MaxConnectionsPerIp: return "max_connections_per_ip";
    default: return "none";
  }
}

const char* closeKindName(std::size_t kind) {
  static const char* const names[kCloseKinds] = {"peer", "local", "error", "timeout", "overflow", "plugin_error", "shutdown"};
  return kind < kCloseKinds ? names[kind] : "unknown";
}

const char* connectErrorKindName(std::size_t kind) {
  static const char* const names[kConnectErrorKinds] = {"bad_endpoint", "unresolvable", "refused", "timeout",
                                                        "error",        "cancelled",    "shutdown"};
  return kind < kConnectErrorKinds ? names[kind] : "unknown";
}

}  // namespace protohost::host
