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
#include <string_view>
#include <utility>
#include <vector>
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

/// Why the host dropped a datagram of a udp: listener (protohost_datagrams_dropped_total{reason}).
enum class DatagramDrop : std::uint8_t {
  TooLarge,     // longer than max_datagram_bytes (MSG_TRUNC)
  SendFailed,   // the kernel refused a sendTo (buffer full, unreachable, too large)
  PluginError,  // datagramReceived threw
  Count
};
const char* datagramDropName(DatagramDrop d);

/// The datagrams of one udp: listener NAME. The host's own drop reasons are
/// fixed; a protocol's (DatagramTransport::countDropped) are named by it,
/// at most kMaxPluginReasons of them, the rest counted as "other".
struct DatagramStats {
  static constexpr std::size_t kMaxPluginReasons = 16;
  std::atomic<bool> active{false};  // a udp: listener of this name was bound: /metrics shows these
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> sent{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(DatagramDrop::Count)> dropped{};

  /// Counts one datagram a protocol dropped for @p reason ([a-z0-9_]{1,32},
  /// else "other"). Any thread (a mutex: the protocol's own drops are rare
  /// next to datagrams served, and each is a decision, not a syscall).
  void countPluginDrop(std::string_view reason);
  /// The protocol reasons and their counts, sorted by name. Any thread.
  std::vector<std::pair<std::string, std::uint64_t>> pluginDrops() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::uint64_t>> pluginDrops_;  // at most kMaxPluginReasons + "other"
};

/// How a TLS handshake of an ssl: listener ended (protohost_tls_handshakes_total{result}).
enum class TlsHandshakeResult : std::uint8_t {
  Ok,
  Failed,   // a protocol error: plaintext, a hostile or unsupported ClientHello, a bad client certificate
  Closed,   // the peer closed before it completed (a truncated ClientHello)
  Timeout,  // not complete within tls_handshake_timeout_ms (a trickle)
  Count
};
const char* tlsHandshakeResultName(TlsHandshakeResult r);

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
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(TlsHandshakeResult::Count)> tlsHandshakes{};
  std::atomic<std::uint64_t> ktlsSend{0}, ktlsReceive{0};  // handshakes after which the kernel took the record layer
  std::atomic<bool> tls{false};                    // an ssl: listener of this name was bound: /metrics shows these
  std::atomic<std::int64_t> lastTlsErrorLogMs{0};  // steady-clock ms of the last logged failure (rate limit)
  OutboundStats outbound;  // not part of the counters above, nor of the limits
  DatagramStats datagrams;  // udp: listeners only

  void countTlsHandshake(TlsHandshakeResult r) {
    tlsHandshakes[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  /// Handshakes that ended any way but Ok.
  std::uint64_t tlsHandshakeFailures() const;
  /// True at most once a second (any thread): whether to log a failed handshake now.
  bool tlsErrorLogDue();

  std::mutex ipMutex;
  std::unordered_map<std::string, std::size_t> perIp;
};

}  // namespace protohost::host
