#include "base/ListenerStats.h"

#include <algorithm>
#include <chrono>

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

const char* datagramDropName(DatagramDrop d) {
  switch (d) {
    case DatagramDrop::TooLarge: return "too_large";
    case DatagramDrop::SendFailed: return "send_failed";
    case DatagramDrop::PluginError: return "plugin_error";
    default: return "unknown";
  }
}

const char* tlsHandshakeResultName(TlsHandshakeResult r) {
  switch (r) {
    case TlsHandshakeResult::Ok: return "ok";
    case TlsHandshakeResult::Failed: return "failed";
    case TlsHandshakeResult::Closed: return "closed";
    case TlsHandshakeResult::Timeout: return "timeout";
    default: return "unknown";
  }
}

std::uint64_t ListenerStats::tlsHandshakeFailures() const {
  std::uint64_t n = 0;
  for (std::size_t k = 1; k < tlsHandshakes.size(); ++k) n += tlsHandshakes[k].load(std::memory_order_relaxed);
  return n;
}

bool ListenerStats::tlsErrorLogDue() {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = lastTlsErrorLogMs.load(std::memory_order_relaxed);
  return now - last >= 1000 && lastTlsErrorLogMs.compare_exchange_strong(last, now, std::memory_order_relaxed);
}

void DatagramStats::countPluginDrop(std::string_view reason) {
  const bool valid = !reason.empty() && reason.size() <= 32 &&
                     std::all_of(reason.begin(), reason.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                     });
  bool hostReason = false;  // the host's own names would give /metrics two samples with one label set
  for (std::size_t k = 0; k < static_cast<std::size_t>(DatagramDrop::Count); ++k)
    hostReason = hostReason || reason == datagramDropName(static_cast<DatagramDrop>(k));
  std::string_view name = valid && !hostReason ? reason : std::string_view("other");
  std::lock_guard<std::mutex> lock(mutex_);
  auto find = [this](std::string_view n) {
    return std::find_if(pluginDrops_.begin(), pluginDrops_.end(), [n](const auto& e) { return e.first == n; });
  };
  auto it = find(name);
  if (it == pluginDrops_.end() && pluginDrops_.size() >= kMaxPluginReasons) it = find(name = "other");
  if (it != pluginDrops_.end()) ++it->second;
  else pluginDrops_.emplace_back(std::string(name), 1);  // "other" may make it kMaxPluginReasons + 1
}

std::vector<std::pair<std::string, std::uint64_t>> DatagramStats::pluginDrops() const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto copy = pluginDrops_;
  std::sort(copy.begin(), copy.end());
  return copy;
}

}  // namespace protohost::host
