#pragma once
// The counter of a sequence that several hosts share (PostgresCounter; an
// in-memory fake in the tests): hands out disjoint blocks of answer numbers.
//
// Threads: not thread-safe; SharedStore calls it from one thread at a time.

#include <cstdint>
#include <string>

namespace protohost::plugins::fibonacci {

class SharedCounter {
 public:
  virtual ~SharedCounter() = default;

  struct Taken {
    bool ok = false;
    std::uint64_t start = 0;  ///< ok: the block is [start, start + block), durable in the counter
    std::string error;        ///< !ok: why (unreachable, timed out, an error answer)
  };
  /// Reserves the next @p block numbers, durably, in one atomic step. A
  /// sequence that does not exist yet is first created at @p seed, by a step
  /// that only one of several hosts seeding at once can win.
  virtual Taken take(std::uint64_t block, std::uint64_t seed) = 0;

  /// Moves the counter up to @p floor when it is below (never down). "" on success, else why not.
  virtual std::string raiseTo(std::uint64_t floor) = 0;

  /// Clean stop: sets the counter to @p next only if it still is @p expected
  /// (nobody reserved since), so that the unused tail is not a gap. Best
  /// effort: false when it did not (or when no connection is up).
  virtual bool giveBack(std::uint64_t expected, std::uint64_t next) = 0;

  /// What the logs call it, e.g. `PostgreSQL sequence "fibonacci"`.
  virtual std::string label() const = 0;
};

}  // namespace protohost::plugins::fibonacci
