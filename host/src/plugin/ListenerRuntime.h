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
#include "protohost/Factory.h"

namespace protohost::host {

/// Why an accepted connection was refused at once.
enum class Refusal { None, HostMaxConnections, MaxConnections, MaxConnectionsPerIp, Count };
const char* refusalName(Refusal r);

/// How a connection ended, for counters (mirrors DisconnectReason::Kind).
inline constexpr std::size_t kCloseKinds = 7;
const char* closeKindName(std::size_t kind);

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

struct ListenerRuntime {
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

  /// Counts a new connection from @p ip against the limits; on Refusal::None the
  /// caller owns one admission and must call release(ip) exactly once. Any thread.
  Refusal admit(const std::string& ip);
  void release(const std::string& ip);

  /// The factory's isReady(), behind the plugin exception boundary: a throw is
  /// logged, counted as a plugin error and reads as not ready. Any thread.
  bool factoryReady() const;

  explicit ListenerRuntime(std::shared_ptr<ListenerStats> shared = std::make_shared<ListenerStats>())
      : statsPtr(std::move(shared)), stats(*statsPtr) {}
  ListenerRuntime(const ListenerRuntime&) = delete;
  ListenerRuntime& operator=(const ListenerRuntime&) = delete;
  ~ListenerRuntime() { factory.reset(); }
};

}  // namespace protohost::host
