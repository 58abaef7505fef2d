#include "ops/SignalThread.h"

#include <pthread.h>
#include <signal.h>

namespace protohost::host {

namespace {
sigset_t handledSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT, SIGQUIT}) sigaddset(&set, s);
  return set;
}
}  // namespace

SignalThread::SignalThread(OnStop onStop) {
  thread_ = std::thread([this, onStop = std::move(onStop)] { run(onStop); });
}

SignalThread::~SignalThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ending_ = true;
  }
  // A signal of the set, directed at this thread only: its sigwait returns.
  ::pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

bool SignalThread::isStop(int signal) { return signal == SIGTERM || signal == SIGINT || signal == SIGQUIT; }

void SignalThread::run(const OnStop& onStop) {
  ::pthread_setname_np(::pthread_self(), "signals");
  const sigset_t set = handledSignals();
  bool stopping = false;
  for (;;) {
    int sig = 0;
    if (::sigwait(&set, &sig) != 0) continue;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ending_) return;
    }
    if (isStop(sig)) {
      if (stopping) continue;
      stopping = true;
      onStop(sig);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(sig);
    }
    cv_.notify_one();
  }
}

int SignalThread::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [this] { return !queue_.empty(); })) return 0;
  const int sig = queue_.front();
  queue_.pop_front();
  return sig;
}

}  // namespace protohost::host
