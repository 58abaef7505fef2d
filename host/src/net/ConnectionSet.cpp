#include "net/ConnectionSet.h"

#include <vector>

#include "net/Connection.h"

namespace protohost::host {
namespace {
// How often a loop looks for idle connections (only while one has idle_timeout_ms):
// deadlines are met within this much, also while the loop is busy.
constexpr auto kIdleSweepInterval = std::chrono::milliseconds(100);
}  // namespace

ConnectionSet::ConnectionSet(EventLoop& loop) : loop_(loop), lingering_(loop, [this] { checkEmpty(); }) {}

ConnectionSet::~ConnectionSet() {
  if (idleSweepTimer_) loop_.cancel(idleSweepTimer_);
}

void ConnectionSet::add(std::shared_ptr<Connection> connection) {
  if (!idleSweepTimer_ && connection->owner().limits.idleTimeoutMs > 0)
    idleSweepTimer_ = loop_.callEvery(kIdleSweepInterval, [this] { sweepIdle(); });
  Connection* key = connection.get();
  connections_.emplace(key, std::move(connection));
  size_.store(connections_.size(), std::memory_order_relaxed);
}

void ConnectionSet::removeSoon(Connection* connection) {
  // Deferred: the connection may be the caller.
  loop_.runSoon([this, connection] { erase(connection); });
}

void ConnectionSet::erase(Connection* connection) {
  if (connections_.erase(connection) == 0) return;
  size_.store(connections_.size(), std::memory_order_relaxed);
  checkEmpty();
}

void ConnectionSet::checkEmpty() {
  if (empty() && onEmpty_) onEmpty_();
}

void ConnectionSet::sweepIdle() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Connection*> idle;
  for (auto& [key, c] : connections_)
    if (c->owner().limits.idleTimeoutMs > 0) idle.push_back(key);
  for (Connection* c : idle)
    if (connections_.count(c)) c->closeIfIdle(now);
}

void ConnectionSet::requestStop(const std::function<bool(const ConnectionOwner&)>& which) {
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [key, c] : connections_)
    if (which(c->owner())) all.push_back(c);
  for (auto& c : all) c->requestStop();
}

void ConnectionSet::closeAll(const DisconnectReason& reason) {
  std::vector<std::shared_ptr<Connection>> all;
  all.reserve(connections_.size());
  for (auto& [key, c] : connections_) all.push_back(c);
  for (auto& c : all) c->shutdown(reason);
  const bool had = !connections_.empty();
  connections_.clear();
  size_.store(0, std::memory_order_relaxed);
  if (had) checkEmpty();
}

}  // namespace protohost::host
