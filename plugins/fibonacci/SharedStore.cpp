#include "SharedStore.h"

#include <algorithm>

namespace protohost::plugins::fibonacci {

SharedStore::SharedStore(std::unique_ptr<SequenceStore> local, std::unique_ptr<SharedCounter> counter, Logger& logger)
    : local_(std::move(local)), counter_(std::move(counter)), logger_(logger) {}

std::string SharedStore::label() const { return counter_->label() + " (local high-water mark " + local_->path() + ")"; }

ReservationStore::OpenResult SharedStore::open() {
  OpenResult r = local_->open();  // throws StateError, like store = file
  highWater_ = r.next;
  return r;
}

ReservationStore::Reservation SharedStore::failed(const std::string& error, const std::string& clientReason) const {
  Reservation r;
  r.status = Reservation::Status::Failed;
  r.error = error;
  r.clientReason = clientReason;
  return r;
}

ReservationStore::Reservation SharedStore::reserve(std::uint64_t cur, std::uint64_t block, std::uint64_t limit) {
  const std::uint64_t floor = std::max(highWater_, cur);
  const SharedCounter::Taken t = counter_->take(block, floor);
  if (!t.ok)
    return failed(counter_->label() + ": " + t.error, "the shared sequence store (PostgreSQL) is unavailable");
  if (t.start < floor) {
    // The counter went back below numbers this host handed out: refuse the block.
    std::string raised = counter_->raiseTo(floor);
    logger_.error(counter_->label() + " handed out a block starting at " + std::to_string(t.start) +
                  ", below this host's high-water mark " + std::to_string(floor) +
                  ": the counter went back (restored from a backup? failed over to an asynchronous standby?). "
                  "Refused; " +
                  (raised.empty() ? "raised the counter to " + std::to_string(floor)
                                  : "could not raise the counter (" + raised + ")") +
                  ". Other hosts may have handed out numbers above it: skip the counter ahead (runbook in the "
                  "plugin's README) before they serve again");
    return failed(counter_->label() + ": block at " + std::to_string(t.start) + " below the high-water mark " +
                      std::to_string(floor),
                  "the shared sequence went back below this host's high-water mark");
  }
  if (t.start != lastEnd_ || lastEnd_ == 0) lastStart_ = t.start;  // else our run of adjacent blocks grows
  lastEnd_ = t.start + block;
  Reservation r;
  r.start = t.start;
  if (t.start >= limit) {
    r.status = Reservation::Status::Exhausted;
    r.ceiling = t.start;
    return r;
  }
  const std::uint64_t ceiling = std::min(t.start + block, limit);
  // The mark first: only a block recorded here is ever handed out.
  Reservation local = local_->raise(ceiling);
  if (local.status != Reservation::Status::Reserved) {
    local.clientReason = "cannot persist the local high-water mark";
    return local;  // this block is never used: a gap
  }
  highWater_ = std::max(highWater_, ceiling);
  r.status = Reservation::Status::Reserved;
  r.ceiling = ceiling;
  return r;
}

ReservationStore::Release SharedStore::release(std::uint64_t next) {
  Release r = local_->release(std::min(next, local_->durableCeiling()));
  // The tail [next, lastEnd_) back to the counter, only when next is inside our last run of adjacent
  // blocks (a block between ours may be another host's) and nobody took one since (compare-and-set).
  if (lastEnd_ != 0 && next >= lastStart_ && next < lastEnd_ && counter_->giveBack(lastEnd_, next)) {
    r.note += std::string(r.note.empty() ? "" : "; ") + "gave answers " + std::to_string(next) + ".." +
              std::to_string(lastEnd_ - 1) + " back to " + counter_->label();
  } else if (r.recorded) {
    r.recorded = false;
    r.note += std::string(r.note.empty() ? "" : "; ") + "recorded next=" + std::to_string(next) +
              " locally; answers " + std::to_string(next) + ".." + std::to_string(highWater_ - 1) +
              " reserved in " + counter_->label() + " stay unused (a gap)";
  }
  return r;
}

}  // namespace protohost::plugins::fibonacci
