#pragma once
// nginx's lingering close for one loop: a gracefully closed socket sends FIN,
// then reads and discards what the peer still sends until its EOF or a
// deadline, and only then is closed. Closing with unread input would make the
// kernel send RST and drop the output the peer has not received yet.
//
// Uses only the reactor's generic API (ioUpdate with an IoHandler, callLater,
// runSoon, the shared read buffer).
//
// Ownership: one per ConnectionSet; it owns the sockets it lingers on and
// closes those left when it is destroyed. Threading: the loop's thread, but
// count() from any thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_map>

#include "reactor/EventLoop.h"

namespace protohost::host {

class LingeringClose {
 public:
  /// @p onEnded runs (loop thread) after each socket is finally closed.
  LingeringClose(EventLoop& loop, std::function<void()> onEnded);
  /// Closes every socket still lingering (no more reads). Loop thread, or any
  /// once the loop has stopped.
  ~LingeringClose();
  LingeringClose(const LingeringClose&) = delete;
  LingeringClose& operator=(const LingeringClose&) = delete;

  /// Takes ownership of the connected socket @p fd (already out of the epoll set).
  void close(int fd);
  /// Sockets in lingering close; any thread.
  std::size_t count() const { return count_.load(std::memory_order_relaxed); }

  /// How long a gracefully closed socket may keep receiving before it is closed anyway.
  static constexpr std::chrono::milliseconds kTimeout{2000};

 private:
  struct Lingerer;
  void end(Lingerer* l);

  EventLoop& loop_;
  std::function<void()> onEnded_;
  std::unordered_map<Lingerer*, std::unique_ptr<Lingerer>> lingerers_;
  std::atomic<std::size_t> count_{0};
};

}  // namespace protohost::host
