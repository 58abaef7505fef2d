#pragma once
// Takes the signals the host handles (HUP, USR1, TERM, INT, QUIT) on a thread
// of its own and queues them for the main thread. The main thread may be
// waiting on a reactor that a plugin blocks (applying a reload, releasing a
// replaced listener's configuration), so it cannot be the one to notice a
// stop signal: onStop runs here, the moment the first TERM/INT/QUIT arrives
// (the host arms its StopDeadline in it), before that signal is queued.
// Later stop signals are dropped: the stop is under way.
//
// The signals must be blocked in every thread (main() does so before any
// thread starts), so that only this thread's sigwait receives them.
// Threading: construct, next() and destroy on one thread (main); onStop runs
// on the signal thread.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace protohost::host {

class SignalThread {
 public:
  /// Called on the signal thread with the first stop signal, before next() returns it.
  using OnStop = std::function<void(int signal)>;

  explicit SignalThread(OnStop onStop);
  /// Ends and joins the signal thread.
  ~SignalThread();
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

  /// The next signal received, or 0 when @p timeout passed first.
  int next(std::chrono::milliseconds timeout);

  /// True for TERM, INT and QUIT.
  static bool isStop(int signal);

 private:
  void run(const OnStop& onStop);

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<int> queue_;
  bool ending_ = false;  // the destructor runs: the thread returns at its next signal
  std::thread thread_;
};

}  // namespace protohost::host
