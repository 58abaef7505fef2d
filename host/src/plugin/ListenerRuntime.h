#pragma once
// What one configured listener shares with all of its connections: the
// factory, the library that made it, limits, admission counts and counters.
// Connections hold a shared_ptr to it, so the factory and library outlive
// every protocol.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/ListenerStats.h"
#include "net/ConnectionOwner.h"
#include "net/ListenerLimits.h"
#include "plugin/PluginLibrary.h"
#include "reactor/OutboundService.h"
#include "protohost/Factory.h"

namespace protohost::host {

/// Host-wide connection count and limit, shared by every listener.
/// maxConnections is written by a reload (main thread) while the accept loop
/// reads it, hence atomic; relaxed is enough: it orders nothing else.
struct HostCounters {
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> maxConnections{0};  // 0 = unlimited
};

struct ListenerRuntime final : ConnectionOwner, std::enable_shared_from_this<ListenerRuntime> {
  // name, pluginName, limits, stats and outboundHolders: ConnectionOwner.
  std::string factoryName;
  // Declaration order is destruction order reversed: the factory goes before its library.
  std::shared_ptr<PluginLibrary> library;  // null for the host's own admin listener
  std::unique_ptr<Factory> factory;
  std::shared_ptr<HostCounters> host;

  Refusal admit(const std::string& ip) override;
  void release(const std::string& ip) override;
  /// The factory's buildProtocol() (the Connection calls it inside its boundary).
  std::unique_ptr<Protocol> buildProtocol() override { return factory->buildProtocol(); }

  /// The factory's isReady(), behind the plugin exception boundary: a throw is
  /// logged, counted as a plugin error and reads as not ready. Any thread.
  bool factoryReady() const;

  /// The outbound connections (Reactor::connect) of one owner, a connection
  /// or this listener's factory, whose reactor is @p reactor on @p loop. The
  /// connections it makes hold this runtime, so the plugin stays loaded while
  /// they live (a runtime not held by a shared_ptr cannot connect: Shutdown). Loop thread.
  std::unique_ptr<OutboundService> outboundFor(EventLoop& loop, TrackedReactor& reactor) override;

  explicit ListenerRuntime(std::shared_ptr<ListenerStats> shared = std::make_shared<ListenerStats>())
      : ConnectionOwner(std::move(shared)) {}
  ~ListenerRuntime() override { factory.reset(); }
};

}  // namespace protohost::host
