#pragma once
// Bounds an orderly stop: a plugin that blocks a reactor (or blocks in its
// factory's stop()) would otherwise keep the process alive until an outside
// SIGKILL. Armed for the duration of the stop; when the deadline passes first,
// it logs what the stop is waiting for, gives the log a moment to get it out
// and ends the process with _exit: no destructors, atexit handlers or plugin
// code run after that.
//
// Threading: construct and destroy on one thread; the check runs on a thread of its own.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace protohost::host {

class StopDeadline {
 public:
  /// What the stop waits for, e.g. "listener slow: reactor-1 (in plugin code) did
  /// not finish closing its connections". Called on the deadline's thread, once.
  using Describe = std::function<std::string()>;

  /// Ends the process with @p exitCode unless destroyed within @p allowed.
  StopDeadline(std::chrono::milliseconds allowed, Describe describe, int exitCode);
  /// Disarms (the stop finished in time) and joins.
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
