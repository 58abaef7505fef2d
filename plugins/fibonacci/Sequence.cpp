#include "Sequence.h"

#include <pthread.h>

#include <algorithm>

#include "FileOps.h"

namespace protohost::plugins::fibonacci {

namespace {
std::string clientReason(int errorNumber) {
  return errorNumber != 0 ? "cannot persist the sequence state (" + errnoText(errorNumber) + ")"
                          : "the sequence state file is unusable";
}
}  // namespace

Sequence::Sequence(std::unique_ptr<SequenceStore> store, SequenceOptions options, Logger& logger,
                   std::function<Clock::time_point()> clock)
    : store_(std::move(store)), options_(options), logger_(logger), clock_(std::move(clock)) {
  options_.reserveBlock = std::max<std::uint64_t>(options_.reserveBlock, 1);
}

Sequence::~Sequence() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopReserver(lock);
}

void Sequence::open() {
  std::lock_guard<std::mutex> lock(mutex_);
  SequenceStore::OpenResult r = store_->open();  // throws StateError
  cur_ = ceiling_ = r.next;
  open_ = true;
  if (cur_ <= options_.maxIndex) {
    cursor_.seek(cur_);
    cursorValid_ = true;
  }
  logger_.info("sequence state " + store_->path() + (r.created ? " (new)" : "") + ": next answer is number " +
               std::to_string(cur_) + " of at most " + std::to_string(options_.maxIndex) + "; " +
               std::to_string(options_.reserveBlock) + " answers reserved per durable write, each block before " +
               "the previous one runs out");
  if (!r.writeError.empty()) {
    failing_ = true;
    failure_ = clientReason(r.errorNumber);
    logFailureLocked(r.writeError);
    ready_ = false;
  } else if (cur_ > options_.maxIndex) {
    logger_.warning("the sequence is exhausted: max_index " + std::to_string(options_.maxIndex) + " reached");
    ready_ = false;
  } else {
    // The first block, here: start() runs before the listener accepts, and no
    // request waits for it. The reserver thread does not exist yet.
    const std::uint64_t from = ceiling_;
    applyLocked(reserve(from), from);
  }
  if (failing_) retryAt_ = clock_();  // the first request tries again
  if (!thread_.joinable()) thread_ = std::thread([this] { runReserver(); });
}

Sequence::Answer Sequence::next() {
  BigDecimal value;
  Answer a;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    // The block is used up: wait for the write in flight, or start one, unless
    // a failure is waiting for its retry time. Never serve at or above ceiling_.
    bool waited = false;
    while (open_ && cur_ <= options_.maxIndex && cur_ >= ceiling_) {
      if (reserver_ != Reserver::Idle) {
        reserved_.wait(lock, [this] { return reserver_ == Reserver::Idle || !open_; });
        waited = true;
        continue;
      }
      // A write that failed while we waited is this request's attempt: answer, do not write again.
      if (failing_ && (waited || clock_() < retryAt_)) break;
      requestLocked();  // also when other threads used up a block that arrived while we waited
    }
    if (!open_) return {Answer::Kind::Unavailable, 0, "ERR unavailable: the service is stopping"};
    if (cur_ > options_.maxIndex) {
      ready_ = false;
      return {Answer::Kind::Exhausted, 0,
              "ERR exhausted: max_index " + std::to_string(options_.maxIndex) + " reached"};
    }
    if (cur_ >= ceiling_) return unavailable();
    if (!cursorValid_ || cursor_.answer() != cur_) {
      cursor_.seek(cur_);  // only after another store moved the file ahead of us
      cursorValid_ = true;
    }
    value = cursor_.value();  // a copy of the limbs; the decimal text is made outside the lock
    a.kind = Answer::Kind::Number;
    a.index = cur_;
    ++cur_;
    if (cur_ <= options_.maxIndex) {
      cursor_.advance();
    } else {
      cursorValid_ = false;
    }
    reserveAheadLocked();
  }
  a.text.reserve(value.limbCount() * BigDecimal::kDigitsPerLimb + 2);  // + the protocol's CRLF
  value.appendTo(a.text);
  return a;
}

Sequence::Answer Sequence::unavailable() { return {Answer::Kind::Unavailable, 0, "ERR unavailable: " + failure_}; }

void Sequence::reserveAheadLocked() {
  if (reserver_ != Reserver::Idle || ceiling_ > options_.maxIndex) return;  // busy, or nothing left to reserve
  if (ceiling_ - cur_ > options_.reserveBlock / 2) return;
  if (failing_ && clock_() < retryAt_) return;
  requestLocked();
}

void Sequence::requestLocked() {
  reserver_ = Reserver::Requested;
  wake_.notify_one();
}

void Sequence::runReserver() {
  pthread_setname_np(pthread_self(), "fib-reserver");  // in top -H, perf, gdb
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return reserver_ == Reserver::Requested || stopping_; });
    if (stopping_) break;  // a request not yet started is dropped
    reserver_ = Reserver::Writing;
    // The next block starts at the current ceiling: [cur_, ceiling_) stays
    // ours and is served meanwhile; ceiling_ changes only here.
    const std::uint64_t from = ceiling_;
    lock.unlock();
    const SequenceStore::Reservation r = reserve(from);
    lock.lock();
    applyLocked(r, from);
    reserver_ = Reserver::Idle;
    reserved_.notify_all();
  }
  reserver_ = Reserver::Idle;
  reserved_.notify_all();
}

SequenceStore::Reservation Sequence::reserve(std::uint64_t from) {
  try {
    return store_->reserve(from, options_.reserveBlock, options_.maxIndex + 1);
  } catch (const std::exception& e) {  // e.g. bad_alloc: fail closed, keep the thread
    SequenceStore::Reservation failed;
    failed.error = "cannot reserve: " + std::string(e.what());
    return failed;
  }
}

void Sequence::applyLocked(const SequenceStore::Reservation& r, std::uint64_t from) {
  switch (r.status) {
    case SequenceStore::Reservation::Status::Reserved:
      if (r.start != from) {
        // Another user of the file moved it: continue above its value (a gap, never a repeat).
        cur_ = r.start;
        cursorValid_ = false;
      }
      ceiling_ = r.ceiling;
      if (failing_) {
        logger_.info("the state file is writable again; answers up to number " + std::to_string(ceiling_ - 1) +
                     " are reserved, the next is number " + std::to_string(cur_) +
                     (suppressedLogs_ ? " (" + std::to_string(suppressedLogs_) + " failures not logged)" : ""));
        suppressedLogs_ = 0;
        nextLogAt_ = {};
      }
      failing_ = false;
      ready_ = open_;
      return;
    case SequenceStore::Reservation::Status::Exhausted:
      cur_ = std::max(cur_, r.start);
      failing_ = false;
      ready_ = false;
      return;
    case SequenceStore::Reservation::Status::Failed:
      break;
  }
  failing_ = true;
  failure_ = clientReason(r.errorNumber);
  retryAt_ = clock_() + options_.retryInterval;
  ready_ = false;
  logFailureLocked(r.error);
}

void Sequence::logFailureLocked(const std::string& error) {
  const Clock::time_point now = clock_();
  if (now < nextLogAt_) {
    ++suppressedLogs_;
    return;
  }
  std::string line = "cannot reserve more answers: " + error + "; answering \"ERR unavailable\" beyond answer number " +
                     std::to_string(ceiling_ - 1) + " until a write succeeds";
  if (suppressedLogs_ != 0) line += " (" + std::to_string(suppressedLogs_) + " similar failures not logged)";
  logger_.error(line);
  suppressedLogs_ = 0;
  nextLogAt_ = now + options_.logInterval;
}

void Sequence::stopReserver(std::unique_lock<std::mutex>& lock) {
  stopping_ = true;
  wake_.notify_one();
  if (!thread_.joinable()) return;
  lock.unlock();  // the reserver finishes a write in flight and applies it under the mutex
  thread_.join();
  lock.lock();
}

void Sequence::close() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!open_) return;
  open_ = false;
  ready_ = false;
  reserved_.notify_all();  // requests waiting for a block answer "stopping"
  stopReserver(lock);      // the store is ours again once a write in flight is done
  const std::uint64_t next = std::min(cur_, ceiling_);
  SequenceStore::Release r = store_->release(next);
  if (r.recorded) {
    logger_.info("stopped; recorded the next answer number, " + std::to_string(next) + ", in " + store_->path());
  } else if (!r.error.empty()) {
    logger_.error("stopped, but cannot record the next answer number " + std::to_string(next) + ": " + r.error +
                  "; a restart continues from the durable ceiling (answers " + std::to_string(next) + ".." +
                  std::to_string(store_->durableCeiling() - 1) + " are skipped, none repeated)");
  } else {
    logger_.info("stopped at answer number " + std::to_string(next) + "; " + r.note);
  }
}

std::uint64_t Sequence::nextIndex() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cur_;
}

std::uint64_t Sequence::durableCeiling() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ceiling_;
}

void Sequence::awaitReserver() {
  std::unique_lock<std::mutex> lock(mutex_);
  reserved_.wait(lock, [this] { return reserver_ == Reserver::Idle; });
}

}  // namespace protohost::plugins::fibonacci
