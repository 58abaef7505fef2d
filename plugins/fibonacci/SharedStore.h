#pragma once
// `store = postgres`: reservations from a counter shared by several hosts
// (SharedCounter), with this host's local state file (SequenceStore) kept as
// defence in depth, its high-water mark:
//  - a block from the counter is accepted only at or above the mark (the
//    highest block end this host recorded). A block below it means the counter
//    went back (a restore from backup, a failover to an asynchronous standby,
//    or a sequence seeded below this host): it is refused (fail closed), the
//    counter is raised to the mark, and the next reservation is tried again;
//  - the block's end is recorded in the local file (one durable write) before
//    any number of it is handed out;
//  - a new sequence in the counter is seeded from the mark.
// Blocks of several hosts interleave: blocksMayJump. The first block is
// reserved on a worker (reserveAtOpen false), never in Factory::start.
//
// Threads: not thread-safe; Sequence calls one method at a time.

#include <cstdint>
#include <memory>
#include <string>

#include "ReservationStore.h"
#include "SequenceStore.h"
#include "SharedCounter.h"
#include "protohost/Logger.h"

namespace protohost::plugins::fibonacci {

class SharedStore : public ReservationStore {
 public:
  SharedStore(std::unique_ptr<SequenceStore> local, std::unique_ptr<SharedCounter> counter, Logger& logger);

  std::string label() const override;
  OpenResult open() override;
  Reservation reserve(std::uint64_t cur, std::uint64_t block, std::uint64_t limit) override;
  /// Records @p next in the local file (when no other user of it moved it) and gives
  /// the unused tail of the last block back to the counter when nobody reserved since.
  Release release(std::uint64_t next) override;
  std::uint64_t durableCeiling() const override { return highWater_; }
  bool blocksMayJump() const override { return true; }
  bool reserveAtOpen() const override { return false; }

  /// The local high-water mark: no answer at or above it was handed out by this host.
  std::uint64_t highWater() const { return highWater_; }

 private:
  Reservation failed(const std::string& error, const std::string& clientReason) const;

  std::unique_ptr<SequenceStore> local_;
  std::unique_ptr<SharedCounter> counter_;
  Logger& logger_;
  std::uint64_t highWater_ = 1;
  // Our last run of adjacent blocks: [lastStart_, lastEnd_) (lastEnd_ = the counter after the last take).
  std::uint64_t lastStart_ = 0;
  std::uint64_t lastEnd_ = 0;
};

}  // namespace protohost::plugins::fibonacci
