#pragma once
/// @file Reactor.h
/// Timers and cross-thread calls on one reactor thread (Twisted's callLater).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
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

class Protocol;

/// What an fd watch waits for (Reactor::watchFd, modifyWatch). Since SDK 1.3.
enum class FdInterest : std::uint8_t { None = 0, Read = 1, Write = 2, ReadWrite = 3 };

/// What a watched fd is ready for, passed to the watchFd callback. @c error is
/// set on EPOLLERR or EPOLLHUP (then read or write to learn the errno). Since SDK 1.3.
struct FdEvents {
  bool readable = false;
  bool writable = false;
  bool error = false;
};

/// Why an outbound connection (Reactor::connect) was not made. Since SDK 1.3.
struct ConnectError {
  enum class Kind : std::uint8_t {
    BadEndpoint,   ///< the endpoint string does not parse (detail says where)
    Unresolvable,  ///< the host name did not resolve
    Refused,       ///< ECONNREFUSED (nothing listens there)
    Timeout,       ///< no connection within the endpoint's timeout=MS
    Error,         ///< another socket error (detail: strerror; for ssl: also a TLS failure, "HOST:PORT: TLS handshake failed: REASON")
    Cancelled,     ///< cancelConnect, or the owner (connection or factory) ended
    Shutdown,      ///< the host is stopping
  };
  Kind kind = Kind::Error;
  std::string detail;  ///< human-readable, e.g. "127.0.0.1:9: Connection refused"
};

/// Identifies a pending outbound connect; the default, 0, is never valid. Since SDK 1.3.
struct ConnectId {
  std::uint64_t value = 0;
  explicit operator bool() const { return value != 0; }
  friend bool operator==(ConnectId, ConnectId) = default;
};

/// What deferToThread did with the work: queued, or refused at once (never blocks).
enum class WorkStatus : std::uint8_t {
  Queued,        ///< the work will run on a host worker thread
  QueueFull,     ///< [host] worker_queue items wait already; counted in /metrics
  ShuttingDown,  ///< the host is stopping, or the owner ended
};

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

  // ---- Since SDK 1.3 (appended: 1.0-1.2 plugins never call these) ----

  /// Calls @p fn on this reactor's thread while @p fd is ready for what
  /// @p interest asks (level-triggered), with what it is ready for. For a
  /// library that owns its sockets and asks for read, write or both as it goes
  /// (libcurl's CURLMOPT_SOCKETFUNCTION, libpq's PQconnectPoll / PQflush).
  /// FdInterest::None keeps the watch but waits for nothing. One watch per fd
  /// per reactor: a second watchFd (or watchReadable) of the same fd fails.
  /// The fd stays the caller's: unwatch it before closing it. Returns an empty
  /// WatchId when the fd cannot be watched. Thread: this reactor's thread only.
  virtual WatchId watchFd(int fd, FdInterest interest, std::function<void(FdEvents)> fn) = 0;
  /// Changes what a watchFd (or watchReadable) watch waits for, in place.
  /// False when @p id is unknown or not this reactor's. Thread: this reactor's thread only.
  virtual bool modifyWatch(WatchId id, FdInterest interest) = 0;

  /// Opens an outbound connection (Twisted's connectTCP / clientFromString) to
  /// @p endpoint, "tcp:HOST:PORT[:timeout=MS]" (HOST a name, an IPv4 address or
  /// [IPv6]; timeout default 10000 ms, covering resolution and connect).
  /// Names are resolved off the reactor. Once connected, @p protocol runs like
  /// an accepted connection's (same Transport, back-pressure and output bound,
  /// counted direction="out" in /metrics, tagged out=HOST:PORT in logs), on
  /// this reactor's thread, and it is closed (Shutdown) when its owner, the
  /// connection or factory this reactor belongs to, ends. When it cannot be
  /// made, @p onFailed is called once with the reason, later on this thread
  /// (never from inside connect), and @p protocol is destroyed without a hook;
  /// not at all once the owner ended. Thread: this reactor's thread only.
  virtual ConnectId connect(std::string_view endpoint, std::unique_ptr<Protocol> protocol,
                            std::function<void(const ConnectError&)> onFailed) = 0;
  /// Abandons a connect still in progress: onFailed gets Cancelled. False when
  /// it already connected, failed or is unknown. Thread: this reactor's thread only.
  virtual bool cancelConnect(ConnectId id) = 0;

  /// Runs @p work on a host worker thread (Twisted's deferToThread), then
  /// @p done on this reactor's thread with the exception @p work threw (null
  /// when it returned), if this reactor's owner (connection or factory) still
  /// exists; otherwise @p done is dropped. @p work must not touch the owner or
  /// its transport: give it copies or shared state. Never blocks: a full queue
  /// ([host] worker_queue) or a stopping host is refused at once and neither
  /// function runs. On TERM, work not yet started is dropped (done is not
  /// called) and running work is waited for up to the drain bound.
  /// Thread: this reactor's thread only.
  virtual WorkStatus deferToThread(std::function<void()> work,
                                   std::function<void(std::exception_ptr)> done) = 0;
};

}  // namespace protohost
