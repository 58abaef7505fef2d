#pragma once
// Renders the host's counters in Prometheus text exposition format 0.0.4.

#include <memory>
#include <string>
#include <vector>

#include "plugin/ListenerRuntime.h"

namespace protohost::host {

/// Host-wide counters that are not per listener.
struct HostStats {
  std::atomic<std::uint64_t> reloads{0};
  std::atomic<std::uint64_t> reloadFailures{0};
  std::atomic<bool> lastReloadOk{true};
  std::atomic<std::uint64_t> watchdogMisses{0};
};

/// The /metrics page for @p listeners and @p host, plus process figures from /proc/self.
std::string renderMetrics(const std::vector<std::shared_ptr<ListenerRuntime>>& listeners, const HostStats& host);

}  // namespace protohost::host
