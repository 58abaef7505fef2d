#pragma once
// The one sequence every connection of a listener draws from, on any reactor
// thread. next() takes a mutex and serves from the durable range [cur, ceiling):
// every number it hands out is below a ceiling already made durable (write,
// fsync, rename, fsync the directory), so a crash and restart never repeat one.
//
// Reserve-ahead: when at most half a block is left, next() asks the sequence's
// reserver thread to make the next block durable, and goes on serving from the
// current one meanwhile. A reactor thread waits for a durable write only when
// the block runs out before that write is done (a disk slower than half a block
// of answers, a failure being retried), never otherwise. open() reserves the
// first block itself (the factory's start, before the listener accepts).
//
// Threads and ownership:
//  - next(), ready(), nextIndex(), durableCeiling(): any thread, concurrently.
//  - open() and close(): the owner (the factory's start and stop), once each,
//    never concurrently with each other or with a next() before open() returned.
//    open() starts the reserver thread; close() and the destructor stop it,
//    after a write in flight has finished.
//  - The reserver thread is the only user of the store between open() and
//    close() (the store is not thread-safe). It calls the store without the
//    mutex, and applies the result under it.
//  - The logger must outlive close() (or the destructor): the reserver logs
//    failures and recoveries.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "BigFibonacci.h"
#include "SequenceStore.h"
#include "protohost/Logger.h"

namespace protohost::plugins::fibonacci {

struct SequenceOptions {
  std::uint64_t reserveBlock = 1024;
  std::uint64_t maxIndex = 100000;  ///< the last answer number served (answer k is F(k+2))
  /// After a failed reservation, no reservation is tried again until this much
  /// time has passed (requests beyond the durable ceiling answer "unavailable"
  /// meanwhile); the next request after it tries again.
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

  /// @p clock is called from any thread that calls next() and from the reserver thread.
  Sequence(std::unique_ptr<SequenceStore> store, SequenceOptions options, Logger& logger,
           std::function<Clock::time_point()> clock = [] { return Clock::now(); });
  /// Stops the reserver thread (waiting for a write in flight) without recording
  /// anything: what a crash leaves, the durable ceiling. close() first for a clean stop.
  ~Sequence();
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  /// Reads the durable state (throws protohost::StateError when corrupt), positions
  /// the cursor, reserves the first block (one durable write, on the calling thread)
  /// and starts the reserver thread.
  void open();
  /// The next answer. Thread-safe. Waits only while the block it needs is being made durable.
  Answer next();
  /// Clean stop: waits for a write in flight, stops the reserver thread and persists
  /// the exact next answer number when possible. Later next() calls answer unavailable.
  void close();

  /// False while reservations fail (also while the current block still has
  /// answers), after exhaustion and after close. Lock-free.
  bool ready() const { return ready_.load(std::memory_order_relaxed); }

  // For tests and logs.
  std::uint64_t nextIndex() const;
  std::uint64_t durableCeiling() const;
  /// Waits until no reservation is requested or being written (tests: a known state).
  void awaitReserver();

 private:
  enum class Reserver { Idle, Requested, Writing };

  Answer unavailable();
  void reserveAheadLocked();  // asks for the next block when at most half a block is left
  void requestLocked();
  void runReserver();
  SequenceStore::Reservation reserve(std::uint64_t from);  // the store call (reserver thread: without the mutex)
  void applyLocked(const SequenceStore::Reservation& r, std::uint64_t from);
  void stopReserver(std::unique_lock<std::mutex>& lock);
  // Under mutex_, which reactors take in next(): harmless, since Logger::log
  // never waits for the log's output (Logger.h).
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

  Reserver reserver_ = Reserver::Idle;
  bool stopping_ = false;
  std::condition_variable wake_;      // the reserver thread: a request, or stop
  std::condition_variable reserved_;  // next(), close(), awaitReserver(): back to Idle, or closed
  std::thread thread_;                // the reserver; started by open()
};

}  // namespace protohost::plugins::fibonacci
