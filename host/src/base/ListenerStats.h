#pragma once
// The counters of one listener NAME (connections, bytes, refusals, closes,
// outbound connects) as plain atomics: written by net/ (connections, the
// acceptor), read by ops/ (/metrics), kept by plugin/ (ListenerRuntime).
// Any thread: every field is atomic but the per-IP map, which ipMutex guards.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

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

}  // namespace protohost::host
