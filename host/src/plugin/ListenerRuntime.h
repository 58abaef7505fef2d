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

#include "net/ListenerLimits.h"
#include "plugin/PluginLibrary.h"
#include "reactor/OutboundService.h"
#include "protohost/Factory.h"

namespace protohost::host {

/// Why an accepted connection was refused at once.
enum class Refusal { None, HostMaxConnections, MaxConnections, MaxConnectionsPerIp, Count };
const char* refusalName(Refusal r);

/// How a connection ended, for counters (mirrors DisconnectReason::Kind).
inline constexpr std::size_t kCloseKinds = 7;
const char* closeKindName(std::size_t kind);

/// Why an outbound connect failed (mirrors ConnectError::Kind).
inline constexpr std::size_t kConnectErrorKinds = 7;
const char* connectErrorKindName(std::size_t kind);

/// Outbound connections (Reactor::connect) made by one listener's plugin code:
/// its protocols' and its factory's. Shown with direction="out" in /metrics.
struct OutboundStats {
  std::atomic<std::uint64_t> opened{0};  // connects that succeeded
  std::atomic<std::uint64_t> active{0};  // connected and not yet closed
  std::array<std::atomic<std::uint64_t>, kConnectErrorKinds> failed{};
  std::array<std::atomic<std::uint64_t>, kCloseKinds> closed{};
};

/// Counters and admission counts of one listener NAME. Shared by every
/// generation of that listener across reloads, so counters never go back.
struct ListenerStats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open{0};  // admitted and not yet finished
  std::atomic<std::uint64_t> bytesIn{0};
  std::atomic<std::uint64_t> bytesOut{0};
  std::atomic<std::uint64_t> pluginErrors{0};
  std::atomic<std::uint64_t> acceptErrors{0};
  std::atomic<std::uint64_t> proxyHeaderErrors{0};  // malformed, missing or late PROXY headers
  std::atomic<std::int64_t> lastProxyErrorLogMs{0};  // steady-clock ms of the last logged one (rate limit)
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Refusal::Count)> refused{};
  std::array<std::atomic<std::uint64_t>, kCloseKinds> closed{};
  OutboundStats outbound;  // not part of the counters above, nor of the limits

  std::mutex ipMutex;
  std::unordered_map<std::string, std::size_t> perIp;
};

/// Host-wide connection count and limit, shared by every listener.
/// maxConnections is written by a reload (main thread) while the accept loop
/// reads it, hence atomic; relaxed is enough: it orders nothing else.
struct HostCounters {
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> maxConnections{0};  // 0 = unlimited
};

struct ListenerRuntime final : OutboundProvider, std::enable_shared_from_this<ListenerRuntime> {
  std::string name;         // listener section name
  std::string pluginName;
  std::string factoryName;
  // Declaration order is destruction order reversed: the factory goes before its library.
  std::shared_ptr<PluginLibrary> library;  // null for the host's own admin listener
  std::unique_ptr<Factory> factory;
  ListenerLimits limits;
  std::shared_ptr<ListenerStats> statsPtr;
  ListenerStats& stats;
  std::shared_ptr<HostCounters> host;
  /// Outbound Connection objects holding this runtime (any thread): a retired
  /// runtime held only by its factory's own outbound connections is released.
  std::atomic<std::size_t> outboundHolders{0};

  /// Counts a new connection from @p ip against the limits; on Refusal::None the
  /// caller owns one admission and must call release(ip) exactly once. Any thread.
  Refusal admit(const std::string& ip);
  void release(const std::string& ip);

  /// The factory's isReady(), behind the plugin exception boundary: a throw is
  /// logged, counted as a plugin error and reads as not ready. Any thread.
  bool factoryReady() const;

  /// The outbound connections (Reactor::connect) of one owner, a connection
  /// or this listener's factory, whose reactor is @p reactor on @p loop. The
  /// connections it makes hold this runtime, so the plugin stays loaded while
  /// they live (a runtime not held by a shared_ptr cannot connect: Shutdown). Loop thread.
  std::unique_ptr<OutboundService> outboundFor(EventLoop& loop, TrackedReactor& reactor) override;

  explicit ListenerRuntime(std::shared_ptr<ListenerStats> shared = std::make_shared<ListenerStats>())
      : statsPtr(std::move(shared)), stats(*statsPtr) {}
  ListenerRuntime(const ListenerRuntime&) = delete;
  ListenerRuntime& operator=(const ListenerRuntime&) = delete;
  ~ListenerRuntime() { factory.reset(); }
};

}  // namespace protohost::host
