#pragma once
// What a Connection (and the Listener that accepts it) needs of whoever owns
// it, without knowing plugins: the protocol to build, admission and its
// release, the limits, the counters, and the names its log lines carry.
// plugin/ListenerRuntime implements it for a listener's accepted connections
// and for the outbound connections of that listener's plugin code; a unit
// test implements it with a protocol of its own.
//
// The data members are plain fields, not virtual calls, because the hot path
// reads them per recv/send (stats, limits).
//
// Ownership: connections hold it by shared_ptr, so it (and the code it
// builds protocols with) outlives every protocol it made. Threading: the
// fields are written before the owner is shared and read-only afterwards
// (the stats are atomics); the methods say their own.

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "base/ListenerStats.h"
#include "base/PluginCall.h"
#include "net/ListenerLimits.h"
#include "reactor/OutboundService.h"
#include "protohost/Protocol.h"

namespace protohost::host {

struct ConnectionOwner : PluginCodeTag, OutboundProvider {
  std::string name;        // the listener section name: "listener=NAME" in log lines
  std::string pluginName;  // named when its code throws
  ListenerLimits limits;
  std::shared_ptr<ListenerStats> statsPtr;
  ListenerStats& stats;
  /// Outbound Connection objects holding this owner (any thread): a retired
  /// owner held only by its factory's own outbound connections is released.
  std::atomic<std::size_t> outboundHolders{0};

  explicit ConnectionOwner(std::shared_ptr<ListenerStats> shared = std::make_shared<ListenerStats>())
      : statsPtr(std::move(shared)), stats(*statsPtr) {}
  ConnectionOwner(const ConnectionOwner&) = delete;
  ConnectionOwner& operator=(const ConnectionOwner&) = delete;

  /// A protocol for a new accepted connection, or null to refuse it. Plugin
  /// code: the Connection calls it inside its exception boundary. Loop thread.
  virtual std::unique_ptr<Protocol> buildProtocol() = 0;
  /// Counts a new connection from @p ip against the limits; on Refusal::None the
  /// caller owns one admission and must call release(ip) exactly once. Any thread.
  virtual Refusal admit(const std::string& ip) = 0;
  virtual void release(const std::string& ip) = 0;
};

}  // namespace protohost::host
