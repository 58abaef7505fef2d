#pragma once
/// @file Reactor.h
/// Timers and cross-thread calls on one reactor thread (Twisted's callLater).

#include <chrono>
#include <cstdint>
#include <functional>

namespace protohost {

/// Identifies a scheduled call; 0 is never a valid id.
using TimerId = std::uint64_t;

/// The reactor a connection (or a factory) runs on. Every callback it runs is
/// called on that reactor's thread and must not block.
class __attribute__((visibility("default"))) Reactor {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void()>;

  virtual ~Reactor() = default;

  /// Runs @p fn once, @p delay from now. Thread: this reactor's thread only.
  virtual TimerId callLater(std::chrono::milliseconds delay, Callback fn) = 0;

  /// Runs @p fn every @p interval (first call one interval from now) until
  /// cancelled. An interval of 0 is treated as 1 ms. Thread: this reactor's thread only.
  virtual TimerId callEvery(std::chrono::milliseconds interval, Callback fn) = 0;

  /// Cancels a pending call; returns false when it already ran or was unknown.
  /// Safe to call from inside the timer's own callback. Thread: this reactor's thread only.
  virtual bool cancel(TimerId id) = 0;

  /// The reactor's clock (monotonic; a manual clock in the test kit).
  virtual Clock::time_point now() const = 0;

  /// Runs @p fn on this reactor's thread as soon as possible, in order of
  /// posting. Thread-safe: the one method callable from any thread.
  virtual void post(Callback fn) = 0;

  /// Calls @p fn on this reactor's thread whenever @p fd is readable
  /// (level-triggered: read until EAGAIN, or it is called again), e.g. an
  /// inotify or eventfd descriptor the plugin owns. The fd stays the caller's:
  /// unwatch it before closing it. Returns 0 when the fd cannot be watched
  /// (then fall back to polling). Since SDK 1.1. Thread: this reactor's thread only.
  virtual TimerId watchReadable(int fd, Callback fn) = 0;

  /// Stops a watchReadable; false when @p id is unknown. Thread: this reactor's thread only.
  virtual bool unwatch(TimerId id) = 0;
};

}  // namespace protohost
