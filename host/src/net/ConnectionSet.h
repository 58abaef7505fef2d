#pragma once
// The connections of one EventLoop: it owns them (shared_ptr), closes those
// idle longer than their owner's idle_timeout_ms (a sweep every 100 ms, only
// while such a connection exists), asks them to finish (drain, a removed
// listener), closes them all (host shutdown), holds the sockets in lingering
// close, and tells when it is empty, so a stop waits on a condition instead of
// polling. The loop itself knows nothing of connections: the set is one of
// its LoopServices (ConnectionSet::of).
//
// Threading: the loop's thread, but size(), lingering() and of() from any
// thread. setOnEmpty() before the loop's thread runs.

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_map>

#include "net/LingeringClose.h"
#include "reactor/EventLoop.h"
#include "protohost/Protocol.h"

namespace protohost::host {

class Connection;
struct ConnectionOwner;

class ConnectionSet final : public LoopService {
 public:
  explicit ConnectionSet(EventLoop& loop);
  /// Connections left go without connectionLost; lingering sockets are closed.
  ~ConnectionSet() override;

  /// @p loop's set, made on first use. Any thread.
  static ConnectionSet& of(EventLoop& loop) { return loop.service<ConnectionSet>(); }

  EventLoop& loop() const { return loop_; }

  /// Takes a reference to @p connection (before its open()).
  void add(std::shared_ptr<Connection> connection);
  /// Releases the set's reference after the current dispatch round (the
  /// connection may be the caller). The connection has finished.
  void removeSoon(Connection* connection);
  /// Asks the protocol of every connection whose owner matches @p which to
  /// finish (Protocol::stopRequested).
  void requestStop(const std::function<bool(const ConnectionOwner&)>& which);
  /// Closes every connection with @p reason (connectionLost runs for each).
  void closeAll(const DisconnectReason& reason);
  /// Lingering close of a finished connection's socket (LingeringClose.h).
  void lingerClose(int fd) { lingering_.close(fd); }

  /// Connections in the set; any thread.
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  /// Sockets in lingering close; any thread.
  std::size_t lingering() const { return lingering_.count(); }
  /// No connection and no lingering socket; any thread.
  bool empty() const { return size() == 0 && lingering() == 0; }
  /// @p fn runs on the loop's thread each time the set becomes empty (after
  /// it held a connection or a lingering socket). Set before the loop runs.
  void setOnEmpty(std::function<void()> fn) { onEmpty_ = std::move(fn); }

 private:
  void sweepIdle();
  void erase(Connection* connection);
  void checkEmpty();

  EventLoop& loop_;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
  std::atomic<std::size_t> size_{0};
  TimerId idleSweepTimer_ = 0;
  std::function<void()> onEmpty_;
  LingeringClose lingering_;  // last: its sockets close before the connections go
};

}  // namespace protohost::host
