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

Sequence::Sequence(std::unique_ptr<SequenceStore> store, SequenceOptions options, Logger& logger,
                   std::function<Clock::time_point()> clock)
    : store_(std::move(store)), options_(options), logger_(logger), clock_(std::move(clock)) {
  options_.reserveBlock = std::max<std::uint64_t>(options_.reserveBlock, 1);
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
               std::to_string(options_.reserveBlock) + " answers reserved per durable write");
  if (!r.writeError.empty()) {
    failing_ = true;
    failure_ = clientReason(r.errorNumber);
    retryAt_ = clock_();  // the first request tries again
    logFailureLocked(r.writeError);
    ready_ = false;
    return;
  }
  if (cur_ > options_.maxIndex)
    logger_.warning("the sequence is exhausted: max_index " + std::to_string(options_.maxIndex) + " reached");
  ready_ = cur_ <= options_.maxIndex;
}

Sequence::Answer Sequence::next() {
  BigDecimal value;
  Answer a;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return {Answer::Kind::Unavailable, 0, "ERR unavailable: the service is stopping"};
    if (cur_ <= options_.maxIndex && cur_ >= ceiling_) {
      if (failing_ && clock_() < retryAt_) return unavailable();
      if (!reserveLocked() && failing_) return unavailable();
    }
    if (cur_ > options_.maxIndex) {
      ready_ = false;
      return {Answer::Kind::Exhausted, 0,
              "ERR exhausted: max_index " + std::to_string(options_.maxIndex) + " reached"};
    }
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
  }
  a.text.reserve(value.limbCount() * BigDecimal::kDigitsPerLimb + 2);  // + the protocol's CRLF
  value.appendTo(a.text);
  return a;
}

Sequence::Answer Sequence::unavailable() { return {Answer::Kind::Unavailable, 0, "ERR unavailable: " + failure_}; }

bool Sequence::reserveLocked() {
  SequenceStore::Reservation r = store_->reserve(cur_, options_.reserveBlock, options_.maxIndex + 1);
  switch (r.status) {
    case SequenceStore::Reservation::Status::Reserved:
      if (r.start != cur_) {
        cur_ = r.start;
        cursorValid_ = false;
      }
      ceiling_ = r.ceiling;
      if (failing_) {
        logger_.info("the state file is writable again; serving resumed at answer number " + std::to_string(cur_) +
                     (suppressedLogs_ ? " (" + std::to_string(suppressedLogs_) + " failures not logged)" : ""));
        suppressedLogs_ = 0;
        nextLogAt_ = {};
      }
      failing_ = false;
      ready_ = true;
      return true;
    case SequenceStore::Reservation::Status::Exhausted:
      cur_ = std::max(cur_, r.start);
      failing_ = false;
      ready_ = false;
      return false;
    case SequenceStore::Reservation::Status::Failed:
      break;
  }
  failing_ = true;
  failure_ = clientReason(r.errorNumber);
  retryAt_ = clock_() + options_.retryInterval;
  ready_ = false;
  logFailureLocked(r.error);
  return false;
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
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_) return;
  open_ = false;
  ready_ = false;
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

}  // namespace protohost::plugins::fibonacci
