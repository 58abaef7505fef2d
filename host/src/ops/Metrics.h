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

/// The worker pool's figures (reactor/WorkerPool.h), as plain numbers.
struct WorkerFigures {
  std::uint64_t queued = 0, running = 0, rejected = 0, completed = 0;
};

/// The /metrics page for @p listeners, @p host and @p workers, plus process figures from /proc/self.
std::string renderMetrics(const std::vector<std::shared_ptr<ListenerRuntime>>& listeners, const HostStats& host,
                          const WorkerFigures& workers = {});

}  // namespace protohost::host
