#pragma once
// Renders the host's counters in Prometheus text exposition format 0.0.4.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/ListenerStats.h"

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

/// What /metrics shows of one listener: its names, its counters (shared, so
/// the page reads them as they are) and whether its factory is ready.
struct ListenerFigures {
  std::string name;
  std::string pluginName;
  std::shared_ptr<const ListenerStats> stats;
  bool ready = false;
};

/// The /metrics page for @p listeners, @p host and @p workers, plus process figures from /proc/self.
std::string renderMetrics(const std::vector<ListenerFigures>& listeners, const HostStats& host,
                          const WorkerFigures& workers = {});

}  // namespace protohost::host
