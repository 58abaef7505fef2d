#pragma once
// The host's worker threads for blocking work (Reactor::deferToThread,
// Twisted's deferToThread): a fixed number of threads named "ph-worker-N"
// taking jobs from one bounded FIFO queue.
//
// A job is two calls: run() on a worker thread, then complete() on that same
// worker thread, under the pool's lock, unless stop() has returned (for a
// caller that posts its result to a reactor: once stop() returned, no
// complete() is running or will begin, so the reactors may go; work that ends
// while stop() waits still completes). Both are destroyed after that, outside the lock. Neither may throw (the pool
// terminates otherwise): the caller catches what its own code throws.
//
// submit() never blocks: a full queue or a stopping pool is refused at once.
// stop() drops the queued jobs unrun and waits for the running ones up to a
// deadline; a job still running then is left to finish on its thread, which
// is detached (the shared state outlives the pool).
//
// Threading: submit() and figures() from any thread; stop() and the
// destructor from one thread (the Server's main thread), not concurrently.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "protohost/Reactor.h"

namespace protohost::host {

class WorkerPool {
 public:
  struct Figures {
    std::uint64_t queued = 0, running = 0, rejected = 0, completed = 0;
  };

  /// Starts @p threads threads (at least 1); at most @p queueLimit jobs wait.
  WorkerPool(unsigned threads, std::size_t queueLimit);
  /// stop() with no time to wait.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Queues a job: Queued, QueueFull (counted in rejected) or ShuttingDown
  /// (stop() was called); when refused, both functions are destroyed unrun
  /// before it returns. Any thread, never blocks for longer than the lock.
  WorkStatus submit(std::function<void()> run, std::function<void()> complete);

  /// Refuses new jobs, drops the queued ones (destroyed here, unrun), and
  /// waits until no job runs or @p deadline passes. Returns how many jobs are
  /// still running (0: every thread was joined). A second call returns the
  /// same without waiting again.
  std::size_t stop(std::chrono::steady_clock::time_point deadline);

  /// The numbers for /metrics. Any thread.
  Figures figures() const;

 private:
  struct State;
  static void workerMain(std::shared_ptr<State> state, unsigned index);

  std::shared_ptr<State> state_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
  std::size_t leftRunning_ = 0;
};

}  // namespace protohost::host
