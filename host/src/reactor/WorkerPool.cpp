#include "reactor/WorkerPool.h"

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

namespace protohost::host {

struct WorkerPool::State {
  struct Job {
    std::function<void()> run;
    std::function<void()> complete;
  };

  explicit State(std::size_t limit) : queueLimit(limit) {}

  const std::size_t queueLimit;
  mutable std::mutex mutex;
  std::condition_variable wake;  // a job was queued, or the pool stops
  std::condition_variable idle;  // a job finished (stop() waits on it)
  std::deque<Job> queue;
  std::size_t running = 0;
  std::uint64_t rejected = 0;
  std::uint64_t completed = 0;
  bool stopping = false;  // stop() began: nothing new is taken
  bool closed = false;    // stop() returned: no complete() any more
};

WorkerPool::WorkerPool(unsigned threads, std::size_t queueLimit) : state_(std::make_shared<State>(queueLimit)) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back(&WorkerPool::workerMain, state_, i);
    // Named here as well as by the thread itself: once the pool exists its
    // threads carry their names (a test reading /proc right after start
    // raced the thread's own pthread_setname_np).
    const std::string name = "ph-worker-" + std::to_string(i);
    pthread_setname_np(threads_.back().native_handle(), name.substr(0, 15).c_str());
  }
}

WorkerPool::~WorkerPool() { stop(std::chrono::steady_clock::now()); }

WorkStatus WorkerPool::submit(std::function<void()> run, std::function<void()> complete) {
  State::Job job{std::move(run), std::move(complete)};
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->stopping) return WorkStatus::ShuttingDown;
    if (state_->queue.size() >= state_->queueLimit) {
      ++state_->rejected;
      return WorkStatus::QueueFull;
    }
    state_->queue.push_back(std::move(job));
  }
  state_->wake.notify_one();
  return WorkStatus::Queued;
}

std::size_t WorkerPool::stop(std::chrono::steady_clock::time_point deadline) {
  if (stopped_) return leftRunning_;
  stopped_ = true;
  std::deque<State::Job> dropped;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
    dropped.swap(state_->queue);
  }
  state_->wake.notify_all();
  dropped.clear();  // outside the lock: their destructors may be plugin code
  {
    std::unique_lock<std::mutex> lock(state_->mutex);
    state_->idle.wait_until(lock, deadline, [&] { return state_->running == 0; });
    leftRunning_ = state_->running;
    state_->closed = true;
  }
  for (auto& t : threads_) {
    if (leftRunning_ == 0)
      t.join();  // every thread is leaving its loop (or about to destroy its last job)
    else
      t.detach();  // one of them runs past the deadline; the state is theirs too
  }
  threads_.clear();
  return leftRunning_;
}

WorkerPool::Figures WorkerPool::figures() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return Figures{state_->queue.size(), state_->running, state_->rejected, state_->completed};
}

void WorkerPool::workerMain(std::shared_ptr<State> state, unsigned index) {
  const std::string name = "ph-worker-" + std::to_string(index);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  std::unique_lock<std::mutex> lock(state->mutex);
  for (;;) {
    state->wake.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
    if (state->stopping) return;  // stop() dropped the queue
    State::Job job = std::move(state->queue.front());
    state->queue.pop_front();
    ++state->running;
    lock.unlock();
    job.run();
    lock.lock();
    --state->running;
    ++state->completed;
    if (!state->closed) job.complete();  // under the lock: once stop() returned, none runs
    state->idle.notify_all();
    lock.unlock();
    job = {};  // outside the lock: the caller's code
    lock.lock();
  }
}

}  // namespace protohost::host
