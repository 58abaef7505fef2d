#pragma once
// Bounds an orderly stop: a plugin that blocks a reactor (or blocks in its
// factory's stop()) would otherwise keep the process alive until an outside
// SIGKILL. Armed when the stop is requested; when the deadline passes first,
// it logs what the stop is waiting for, gives the log a moment to get it out
// and ends the process with _exit: no destructors, atexit handlers or plugin
// code run after that.
//
// Whether the stop finished is decided by Describe, under the lock with which
// the stop records its progress (Server::freezeStop): a stop that finishes as
// the deadline passes is either finished (no exit) or frozen (it makes no
// further progress and the process exits), never both.
//
// Threading: construct on any thread, destroy on any thread (not at the same
// time); the check runs on a thread of its own.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace protohost::host {

class StopDeadline {
 public:
  /// What the stop waits for, e.g. "listener slow: reactor-1 (in plugin code) did
  /// not finish closing its connections"; nullopt when the stop has finished
  /// (the deadline then does nothing). Called on the deadline's thread, once.
  using Describe = std::function<std::optional<std::string>()>;

  /// Ends the process with @p exitCode unless destroyed within @p allowed, or
  /// @p describe says the stop finished when @p allowed has passed.
  StopDeadline(std::chrono::milliseconds allowed, Describe describe, int exitCode);
  /// Disarms and joins (when the deadline decided to end the process, it does not return).
  ~StopDeadline();
  StopDeadline(const StopDeadline&) = delete;
  StopDeadline& operator=(const StopDeadline&) = delete;

  /// How long the log gets to write the last line before _exit.
  static constexpr std::chrono::milliseconds kLogFlush{500};

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;
};

}  // namespace protohost::host
