#pragma once
/// @file Reactor.h
/// Timers and cross-thread calls on one reactor thread (Twisted's callLater).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>

namespace protohost {

/// Identifies a scheduled call; 0 is never a valid id.
using TimerId = std::uint64_t;

/// Identifies an fd watch (Reactor::watchReadable); the default, 0, is never a
/// valid id. Its own type since SDK 1.3, so that a watch id passed to cancel()
/// (or a timer id to unwatch()) no longer compiles: the host numbers timers and
/// watches separately, and one could name another's timer. Same size and
/// representation as the std::uint64_t of SDK 1.1-1.2 (trivially copyable, so
/// passed and returned in the same register), so their plugins still load.
struct WatchId {
  std::uint64_t value = 0;

  explicit operator bool() const { return value != 0; }
  friend bool operator==(WatchId, WatchId) = default;

  /// For unordered containers: std::unordered_set<WatchId, WatchId::Hash>.
  struct Hash {
    std::size_t operator()(WatchId id) const { return std::hash<std::uint64_t>{}(id.value); }
  };
};
static_assert(sizeof(WatchId) == sizeof(std::uint64_t) && alignof(WatchId) == alignof(std::uint64_t) &&
                  std::is_trivially_copyable_v<WatchId> && std::is_standard_layout_v<WatchId>,
              "WatchId must keep the representation of the std::uint64_t it replaced (SDK ABI)");

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

  /// Cancels a pending call; returns false when it already ran or was unknown
  /// (for a plugin: not one it scheduled through this reactor).
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
  /// unwatch it before closing it. Returns an empty WatchId (false) when the
  /// fd cannot be watched (then fall back to polling). Since SDK 1.1 (returning
  /// WatchId since 1.3: the same binary interface). Thread: this reactor's thread only.
  virtual WatchId watchReadable(int fd, Callback fn) = 0;

  /// Stops a watchReadable; false when @p id is unknown or not this reactor's
  /// (for a plugin: not one it made). Thread: this reactor's thread only.
  virtual bool unwatch(WatchId id) = 0;
};

}  // namespace protohost
