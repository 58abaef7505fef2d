#pragma once
// The one sequence every connection of a listener draws from, on any reactor
// thread. next() takes a mutex, serves from the current durable block and, when
// the block is used up, reserves the next one synchronously: the calling
// reactor thread (and any other thread asking meanwhile) waits for one durable
// write -- two fsyncs and a rename -- every reserve_block answers.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "BigFibonacci.h"
#include "SequenceStore.h"
#include "protohost/Logger.h"

namespace protohost::plugins::fibonacci {

struct SequenceOptions {
  std::uint64_t reserveBlock = 1024;
  std::uint64_t maxIndex = 100000;  ///< the last answer number served (answer k is F(k+2))
  /// After a failed reservation, requests answer "unavailable" without touching
  /// the disk until this much time has passed; the next request then tries again.
  std::chrono::milliseconds retryInterval{1000};
  /// At most one log line about failing writes per interval (the first failure is logged at once).
  std::chrono::milliseconds logInterval{10000};
};

class Sequence {
 public:
  using Clock = std::chrono::steady_clock;

  struct Answer {
    enum class Kind { Number, Exhausted, Unavailable };
    Kind kind = Kind::Unavailable;
    std::uint64_t index = 0;  ///< the answer number (Number only)
    std::string text;         ///< the decimal value, or the error line; no line ending
  };

  Sequence(std::unique_ptr<SequenceStore> store, SequenceOptions options, Logger& logger,
           std::function<Clock::time_point()> clock = [] { return Clock::now(); });

  /// Reads the durable state (throws protohost::StateError when corrupt) and positions the cursor.
  void open();
  /// The next answer. Thread-safe.
  Answer next();
  /// Clean stop: persists the exact next answer number when possible. Later next() calls answer unavailable.
  void close();

  /// False while reservations fail, after exhaustion and after close. Lock-free.
  bool ready() const { return ready_.load(std::memory_order_relaxed); }

  // For tests and logs.
  std::uint64_t nextIndex() const;
  std::uint64_t durableCeiling() const;
  const SequenceStore& store() const { return *store_; }

 private:
  Answer unavailable();
  bool reserveLocked();  // true when [cur_, ceiling_) is non-empty afterwards
  void logFailureLocked(const std::string& error);

  mutable std::mutex mutex_;
  std::unique_ptr<SequenceStore> store_;
  SequenceOptions options_;
  Logger& logger_;
  std::function<Clock::time_point()> clock_;

  FibonacciCursor cursor_;  // at answer cur_ when cur_ <= maxIndex
  bool cursorValid_ = false;
  std::uint64_t cur_ = 1;      // next answer number to hand out
  std::uint64_t ceiling_ = 1;  // durable ceiling: answers < ceiling_ may be served
  bool open_ = false;
  bool failing_ = false;
  std::string failure_;  // short reason sent to clients while failing
  Clock::time_point retryAt_{};
  Clock::time_point nextLogAt_{};
  std::uint64_t suppressedLogs_ = 0;
  std::atomic<bool> ready_{false};
};

}  // namespace protohost::plugins::fibonacci
