#include "plugin/ListenerRuntime.h"

#include "base/Log.h"
#include "base/PluginCall.h"
#include "plugin/OutboundConnections.h"

namespace protohost::host {

std::unique_ptr<OutboundService> ListenerRuntime::outboundFor(EventLoop& loop, TrackedReactor& reactor) {
  return std::make_unique<OutboundConnections>(loop, weak_from_this(), reactor);
}

Refusal ListenerRuntime::admit(const std::string& ip) {
  if (host) {
    const std::size_t hostMax = host->maxConnections.load(std::memory_order_relaxed);
    if (hostMax && host->open.load(std::memory_order_relaxed) >= hostMax) return Refusal::HostMaxConnections;
  }
  if (limits.maxConnections && stats.open.load(std::memory_order_relaxed) >= limits.maxConnections)
    return Refusal::MaxConnections;
  if (limits.maxConnectionsPerIp) {
    std::lock_guard<std::mutex> lock(stats.ipMutex);
    std::size_t& n = stats.perIp[ip];
    if (n >= limits.maxConnectionsPerIp) return Refusal::MaxConnectionsPerIp;
    ++n;
  }
  if (host) host->open.fetch_add(1, std::memory_order_relaxed);
  stats.open.fetch_add(1, std::memory_order_relaxed);
  return Refusal::None;
}

void ListenerRuntime::release(const std::string& ip) {
  if (limits.maxConnectionsPerIp) {
    std::lock_guard<std::mutex> lock(stats.ipMutex);
    auto it = stats.perIp.find(ip);
    if (it != stats.perIp.end() && --it->second == 0) stats.perIp.erase(it);
  }
  if (host) host->open.fetch_sub(1, std::memory_order_relaxed);
  stats.open.fetch_sub(1, std::memory_order_relaxed);
}

bool ListenerRuntime::factoryReady() const {
  bool ready = false;
  if (auto failure = invokeGuarded([&] { ready = factory && factory->isReady(); })) {
    stats.pluginErrors.fetch_add(1, std::memory_order_relaxed);
    Log::instance().write(LogLevel::Error, "listener=" + name, "plugin " + pluginName + " isReady threw: " + *failure);
    return false;
  }
  return ready;
}

}  // namespace protohost::host
