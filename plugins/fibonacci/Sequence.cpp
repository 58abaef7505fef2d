#include "Sequence.h"

#include <algorithm>

#include "FileOps.h"

namespace protohost::plugins::fibonacci {

namespace {
std::string clientReason(int errorNumber) {
  return errorNumber != 0 ? "cannot persist the sequence state (" + errnoText(errorNumber) + ")"
                          : "the sequence state file is unusable";
}
}  // namespace

Sequence::Sequence(std::unique_ptr<ReservationStore> store, SequenceOptions options, Logger& logger,
                   std::function<Clock::time_point()> clock)
    : store_(std::move(store)), options_(options), logger_(logger), clock_(std::move(clock)) {
  options_.reserveBlock = std::max<std::uint64_t>(options_.reserveBlock, 1);
}

void Sequence::open() {
  std::lock_guard<std::mutex> lock(mutex_);
  ReservationStore::OpenResult r = store_->open();  // throws StateError
  jumps_ = store_->blocksMayJump();
  haveBlock_ = store_->reserveAtOpen();  // else the first writeAhead (wantRetry) reserves it, on a worker
  cur_ = ceiling_ = servedEnd_ = r.next;
  open_ = true;
  logger_.info("sequence state " + store_->label() + (r.created ? " (new)" : "") + ": next answer is number " +
               std::to_string(cur_) + " of at most " + std::to_string(options_.maxIndex) + "; " +
               std::to_string(options_.reserveBlock) +
               " answers reserved per durable write (more when more requests wait: group commit), "
               "on the host's worker threads");
  if (!r.writeError.empty()) {
    failing_ = true;
    failure_ = clientReason(r.errorNumber);
    logFailureLocked(r.writeError);
    ready_ = false;
  } else if (cur_ > options_.maxIndex) {
    logger_.warning("the sequence is exhausted: max_index " + std::to_string(options_.maxIndex) +
                    " reached; every request is answered \"ERR exhausted\"");
    exhaustedLogged_ = true;
    ready_ = false;
  } else if (store_->reserveAtOpen()) {
    // The first block, here: start() runs before the listener accepts, and no request waits for it.
    const std::uint64_t from = ceiling_;
    applyLocked(reserve(from, options_.reserveBlock), from);
    writes_ = 0;
  } else {
    ready_ = false;
  }
  if (failing_) retryAt_ = clock_();  // the first request tries again
}

void Sequence::positionLocked() {
  if (!cursorValid_ || cursor_.answer() != cur_) {
    cursor_.seek(cur_);  // only after another store moved the file ahead of us
    cursorValid_ = true;
  }
}

void Sequence::advanceLocked(BigDecimal& value) {
  positionLocked();
  value = cursor_.value();  // a copy of the limbs; the decimal text is made outside the lock
  ++cur_;
  if (cur_ <= options_.maxIndex) {
    cursor_.advance();
  } else {
    cursorValid_ = false;
  }
}

Sequence::Answer Sequence::exhaustedLocked() {
  ready_ = false;
  if (!exhaustedLogged_) {
    exhaustedLogged_ = true;
    logger_.warning("the sequence is exhausted: answer number " + std::to_string(options_.maxIndex) +
                    " (max_index) was the last; every further request is answered \"ERR exhausted\"");
  }
  return {Answer::Kind::Exhausted, 0, "ERR exhausted: max_index " + std::to_string(options_.maxIndex) + " reached"};
}

Sequence::Answer Sequence::render(std::uint64_t index, const BigDecimal& value) {
  Answer a{Answer::Kind::Number, index, {}};
  a.text.reserve(value.limbCount() * BigDecimal::kDigitsPerLimb + 2);  // + the protocol's CRLF
  value.appendTo(a.text);
  return a;
}

Sequence::Draw Sequence::draw() {
  Draw d;
  std::uint64_t index = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) {
      d.answer = stopping();
      return d;
    }
    if (jumps_ && cur_ >= ceiling_) {
      if (nextBlock_) switchBlockLocked();
      else if (storeExhausted_) cur_ = std::max(cur_, options_.maxIndex + 1);
    }
    if (cur_ > options_.maxIndex) {
      d.answer = exhaustedLocked();
      return d;
    }
    if (cur_ >= ceiling_) {
      // Beyond the durable ceiling: a promise, unless a failure waits for its retry time.
      if (failing_ && clock_() < retryAt_) {
        d.answer = unavailable();
        return d;
      }
      d.answer.kind = Answer::Kind::Pending;
      promiseLocked(d.ticket);
      return d;
    }
    index = cur_;
    servedEnd_ = std::max(servedEnd_, index + 1);
    advanceLocked(d.ticket.value);
    d.writeAhead = wantAheadLocked();
  }
  d.answer = render(index, d.ticket.value);
  d.ticket.value = BigDecimal();
  return d;
}

void Sequence::promiseLocked(Ticket& ticket) {
  ticket.epoch = epoch_;
  if (jumps_) {
    // A shared store's next block need not follow this one: the number is
    // drawn in settle(), from whatever block the write brings.
    ++waitingShared_;
  } else {
    if (cur_ == ceiling_) {
      // The first promise beyond the ceiling: if the write for it fails,
      // the promised indices are handed out again (no gap after a failure).
      positionLocked();
      rewind_ = cursor_;
    }
    ticket.index = cur_;
    advanceLocked(ticket.value);
  }
  if (gathering_) promised_.notify_one();
}

std::uint64_t Sequence::waitingLocked() const {
  if (jumps_) return waitingShared_;
  return cur_ > ceiling_ ? cur_ - ceiling_ : 0;
}

void Sequence::switchBlockLocked() {
  cur_ = nextBlock_->start;
  ceiling_ = nextBlock_->ceiling;
  cursor_ = std::move(nextBlock_->cursor);
  cursorValid_ = true;
  nextBlock_.reset();
}

bool Sequence::wantRetry() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_ || (haveBlock_ && !failing_)) return false;
  return wantAheadLocked();
}

bool Sequence::wantAheadLocked() {
  if (writing_ || aheadQueued_ || ceiling_ > options_.maxIndex) return false;  // busy, or nothing left to reserve
  if (nextBlock_ || storeExhausted_) return false;
  if (cur_ < ceiling_ && ceiling_ - cur_ > options_.reserveBlock / 2) return false;
  if (failing_ && clock_() < retryAt_) return false;
  aheadQueued_ = true;
  return true;
}

Sequence::Answer Sequence::settle(const Ticket& ticket) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (jumps_) return settleSharedLocked(lock, ticket);
  for (;;) {
    if (!open_) return stopping();
    // The promise ended: a write failed, or another user of the file took these indices.
    if (ticket.epoch != epoch_) {
      if (failing_) return unavailable();
      if (cur_ > options_.maxIndex && ceiling_ <= ticket.index) return exhaustedLocked();
      return {Answer::Kind::Unavailable, 0,
              "ERR unavailable: the state file was advanced by another user of it; ask again"};
    }
    if (ticket.index < ceiling_) break;
    if (writing_) {
      written_.wait(lock);
      continue;
    }
    writeLocked(lock, true);  // this one covers every promise made so far, ours included
  }
  lock.unlock();
  return render(ticket.index, ticket.value);
}

Sequence::Answer Sequence::settleSharedLocked(std::unique_lock<std::mutex>& lock, const Ticket& ticket) {
  --waitingShared_;  // no longer counted for the next write's size: it waits for that write, or takes a number
  for (;;) {
    if (!open_) return stopping();
    if (ticket.epoch != epoch_ && failing_) return unavailable();  // a write failed since the promise
    if (cur_ >= ceiling_) {
      if (nextBlock_) switchBlockLocked();
      else if (storeExhausted_) cur_ = std::max(cur_, options_.maxIndex + 1);
    }
    if (cur_ > options_.maxIndex) return exhaustedLocked();
    if (cur_ < ceiling_) break;
    if (writing_) {
      written_.wait(lock);
      continue;
    }
    ++waitingShared_;  // this write covers us too
    writeLocked(lock, true);
    --waitingShared_;
  }
  const std::uint64_t index = cur_;
  BigDecimal value;
  advanceLocked(value);
  lock.unlock();
  return render(index, value);
}

bool Sequence::handOut(const Answer& answer) {
  if (answer.kind != Answer::Kind::Number) return true;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_) return false;  // close() has recorded the next answer already: this one may not go out
  servedEnd_ = std::max(servedEnd_, answer.index + 1);
  return true;
}

void Sequence::writeAhead() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!open_ || writing_ || ceiling_ > options_.maxIndex || nextBlock_ || storeExhausted_) return;
  if (cur_ < ceiling_ && ceiling_ - cur_ > options_.reserveBlock / 2) return;
  if (failing_ && clock_() < retryAt_) return;
  writeLocked(lock, false);
}

void Sequence::aheadFinished() {
  std::lock_guard<std::mutex> lock(mutex_);
  aheadQueued_ = false;
}

Sequence::Answer Sequence::next() {
  Draw d = draw();
  if (d.writeAhead) {
    writeAhead();
    aheadFinished();
  }
  if (d.answer.kind != Answer::Kind::Pending) return d.answer;
  Answer a = settle(d.ticket);
  return handOut(a) ? a : stopping();
}

void Sequence::writeLocked(std::unique_lock<std::mutex>& lock, bool gather) {
  writing_ = true;  // the others wait for this write, also while it gathers
  // Gathering (PostgreSQL's commit_delay, adaptive): the clients answered by
  // the previous write ask again a moment later. Wait a little, at most half
  // the previous write's duration and 1 ms, until as many requests wait as
  // that write covered, so that one write covers them too instead of the
  // next one. Never with one client (its batch was 1), never for a write ahead.
  if (gather && lastBatch_ > 1 && waitingLocked() < lastBatch_) {
    const auto delay = std::min<std::chrono::steady_clock::duration>(lastWriteTime_ / 2, std::chrono::milliseconds(1));
    gathering_ = true;
    promised_.wait_for(lock, delay, [this] { return !open_ || waitingLocked() >= lastBatch_; });
    gathering_ = false;
  }
  if (!open_) {  // closed while gathering: the store is close()'s now
    writing_ = false;
    written_.notify_all();
    return;
  }
  // The next block starts at the current ceiling and covers every index
  // promised so far: [ceiling_, cur_) and at least reserve_block answers.
  const std::uint64_t from = ceiling_;
  const std::uint64_t waiting = waitingLocked();
  const bool unpositioned = jumps_ && !cursorValid_;  // the first block: position the cursor off the lock too
  if (gather) lastBatch_ = waiting;
  const std::uint64_t block = std::max(options_.reserveBlock, waiting);
  const auto started = std::chrono::steady_clock::now();
  lock.unlock();
  const ReservationStore::Reservation r = reserve(from, block);
  const auto took = std::chrono::steady_clock::now() - started;
  std::optional<FibonacciCursor> jumped;
  if (jumps_ && r.status == ReservationStore::Reservation::Status::Reserved && (r.start != from || unpositioned)) {
    // The jump: F(start + 2), F(start + 3) by fast doubling, here on the worker, not under the mutex
    // that the reactors take, and not by walking from the current answer.
    jumped.emplace();
    jumped->seek(r.start);
  }
  lock.lock();
  lastWriteTime_ = took;
  applyLocked(r, from, std::move(jumped));
  writing_ = false;
  written_.notify_all();
}

ReservationStore::Reservation Sequence::reserve(std::uint64_t from, std::uint64_t block) {
  try {
    return store_->reserve(from, block, options_.maxIndex + 1);
  } catch (const std::exception& e) {  // e.g. bad_alloc: fail closed
    ReservationStore::Reservation failed;
    failed.error = "cannot reserve: " + std::string(e.what());
    return failed;
  }
}

void Sequence::applyLocked(const ReservationStore::Reservation& r, std::uint64_t from,
                           std::optional<FibonacciCursor> jumped) {
  switch (r.status) {
    case ReservationStore::Reservation::Status::Reserved:
      if (jumps_) {
        if (r.start == from && !jumped) {
          ceiling_ = r.ceiling;  // adjacent to the current block: the cursor walks on
        } else if (cur_ < ceiling_) {
          nextBlock_ = Block{r.start, r.ceiling, std::move(*jumped)};  // reserved ahead: after this block
        } else {
          cur_ = r.start;
          ceiling_ = r.ceiling;
          cursor_ = std::move(*jumped);
          cursorValid_ = true;
        }
        haveBlock_ = true;
      } else if (r.start != from) {
        // Another user of the file moved it: continue above its value (a gap,
        // never a repeat). Indices promised below r.start may be the other
        // user's now: every outstanding promise ends.
        ++epoch_;
        cur_ = r.start;  // ended promises at or above it are handed out again, with their values
        cursorValid_ = false;
        ceiling_ = r.ceiling;
      } else {
        ceiling_ = r.ceiling;
      }
      ++writes_;
      if (failing_) {
        logger_.info(std::string(jumps_ ? "reservations work again" : "the state file is writable again") +
                     "; answers up to number " + std::to_string(ceiling_ - 1) +
                     " are reserved, the next is number " + std::to_string(cur_) +
                     (suppressedLogs_ ? " (" + std::to_string(suppressedLogs_) + " failures not logged)" : ""));
        suppressedLogs_ = 0;
        nextLogAt_ = {};
      }
      failing_ = false;
      ready_ = open_;
      return;
    case ReservationStore::Reservation::Status::Exhausted:
      if (jumps_) {
        storeExhausted_ = true;  // the current block and one reserved ahead are still served
        failing_ = false;
        ready_ = false;
        return;
      }
      ++epoch_;
      cur_ = std::max(cur_, r.start);
      failing_ = false;
      ready_ = false;
      return;
    case ReservationStore::Reservation::Status::Failed:
      break;
  }
  // The requests waiting for this write are answered "unavailable", and the
  // indices promised to them are free again: none of them was handed out.
  ++epoch_;
  if (cur_ > ceiling_) {
    cur_ = ceiling_;
    cursorValid_ = rewind_.answer() == ceiling_;
    if (cursorValid_) cursor_ = rewind_;
  }
  failing_ = true;
  failure_ = r.clientReason.empty() ? clientReason(r.errorNumber) : r.clientReason;
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

void Sequence::close() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!open_) return;
  open_ = false;
  ready_ = false;
  written_.notify_all();  // requests waiting for a write answer "stopping"
  promised_.notify_all();  // a write that gathers stops gathering
  if (jumps_) {
    // A shared store's write may wait for the network up to its timeout, and close() may run on a
    // reactor (a reload stops the old factory there): wait briefly, then leave the store to the writer.
    if (!written_.wait_for(lock, kCloseWait, [this] { return !writing_; })) {
      logger_.info("stopped while a reservation was in flight; the local high-water mark stays, so a restart "
                   "continues above it (a gap, never a repeat)");
      return;
    }
  }
  written_.wait(lock, [this] { return !writing_; });  // the store is ours again once a write in flight is done
  // No answer at or above it was handed out. Promises not settled by now are
  // never answered (settle answers "stopping" from here on), so they do not count.
  const std::uint64_t next = servedEnd_;
  ReservationStore::Release r = store_->release(next);
  if (r.recorded) {
    logger_.info("stopped; recorded the next answer number, " + std::to_string(next) + ", in " + store_->label());
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

std::uint64_t Sequence::durableWrites() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return writes_;
}

void Sequence::awaitIdle() {
  std::unique_lock<std::mutex> lock(mutex_);
  written_.wait(lock, [this] { return !writing_; });
}

}  // namespace protohost::plugins::fibonacci
