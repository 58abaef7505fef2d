#pragma once
// The one sequence every connection of a listener draws from, on any reactor
// thread. Every number handed out is below a ceiling already made durable
// (SequenceStore: usually one pwrite and one fdatasync), so a crash and restart never
// repeat one.
//
// Group commit, off the reactor. draw() never waits. Inside the durable range
// it returns the number at once. Beyond it, it assigns the next index (a
// promise: a Ticket, with the value) and the caller runs settle(ticket) on a
// worker thread (Reactor::deferToThread), then answers with what settle
// returned, on its own reactor. settle() is the group commit: the first
// settle that finds no write in flight writes ONE new ceiling that covers
// every index promised so far (at least reserve_block more); the others wait
// for it. Promises made while a write is in flight are covered by the next
// write, made by the first of them to run once that one is done. So with
// reserve_block = 1, N clients waiting cost one durable write, not N. That
// writer may first wait a little for the clients the previous write answered
// (at most half that write's duration, at most 1 ms; see writeLocked).
//
// Reserve-ahead (reserve_block > 1): when at most half a block is left, draw()
// sets Draw::writeAhead, and the caller runs writeAhead() on a worker thread
// (and aheadFinished() when that work ends or is dropped), so the next block
// is usually durable before anyone needs it.
//
// A write that fails, or finds that another user of the file moved it, ends
// every promise still outstanding: their settle() answers "ERR unavailable".
// After a failure their indices are promised again later (none was handed
// out); after a move the sequence continues above the other user's value (a
// gap, never a repeat). No promise is made while a failure waits for its
// retry time: those requests are answered "unavailable" at once. A promise
// whose settle never runs or is never answered (queue full, host stopping,
// connection closed) leaves a gap.
//
// A shared store (PostgreSQL, blocksMayJump): blocks of several hosts
// interleave, so the next block usually starts far above the current one.
// The writer positions a cursor there by fast doubling on its worker thread,
// off the mutex, and keeps it as nextBlock_ while the current block still has
// answers; draw() switches to it (a move) when the current one is used up.
// Promises beyond the ceiling are then not in the new block: their settle()
// draws again from it (no ERR, and never a repeat).
//
// Threads and ownership:
//  - draw(), settle(), handOut(), writeAhead(), aheadFinished(), wantRetry(), next(), ready(),
//    nextIndex(), durableCeiling(), awaitIdle(): any thread, concurrently.
//    settle(), writeAhead() and next() may block for a durable write; the
//    others never wait for one.
//  - open() and close(): the owner (the factory's start and stop), once each,
//    never concurrently with each other or with a draw() before open() returned.
//    close() waits for a write in flight; after it, settle() answers "stopping"
//    and nothing is written. Keep the Sequence alive (shared_ptr) in any
//    work that calls it.
//  - The store is used by one thread at a time: open()/close() or the one
//    writer (settle/writeAhead with the write flag set), without the mutex.
//  - The logger must outlive the last call.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "BigFibonacci.h"
#include "ReservationStore.h"
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
    enum class Kind { Number, Exhausted, Unavailable, Pending };
    Kind kind = Kind::Unavailable;
    std::uint64_t index = 0;  ///< the answer number (Number only)
    std::string text;         ///< the decimal value, or the error line; no line ending
  };

  /// A promised index, not durable yet: pass it to settle().
  struct Ticket {
    std::uint64_t index = 0;
    std::uint64_t epoch = 0;
    BigDecimal value;
  };

  /// What draw() returns. answer.kind == Pending: call settle(ticket).
  struct Draw {
    Answer answer;
    Ticket ticket;
    bool writeAhead = false;  ///< run writeAhead() then aheadFinished() on a worker thread
  };

  /// @p clock is called from any thread that calls into the sequence.
  Sequence(std::unique_ptr<ReservationStore> store, SequenceOptions options, Logger& logger,
           std::function<Clock::time_point()> clock = [] { return Clock::now(); });
  /// Writes nothing: what a crash leaves, the durable ceiling. close() first for a clean stop.
  ~Sequence() = default;
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  /// Reads the durable state (throws protohost::StateError when corrupt), positions
  /// the cursor and reserves the first block (one durable write, on the calling thread),
  /// unless the store reserves on a worker (ReservationStore::reserveAtOpen false:
  /// then not ready until a writeAhead() got the first block).
  void open();

  /// The next answer, or a promise (Pending) beyond the durable ceiling. Never waits for a write.
  Draw draw();
  /// Blocks until @p ticket's index is durable (answer: the number), or its
  /// promise ended (answer: "ERR unavailable: ..."). Writes the next ceiling
  /// itself when no write is in flight. For a worker thread.
  Answer settle(const Ticket& ticket);
  /// Call on the reactor just before writing a Number that settle() returned:
  /// false after close() (then answer stopping() instead: the recorded next
  /// answer may be at or below it). A clean stop records the answer after the
  /// highest one handed out by draw() or by handOut().
  bool handOut(const Answer& answer);
  /// The reservation ahead that draw() asked for, unless no longer needed or a
  /// write is in flight. For a worker thread.
  void writeAhead();
  /// The work that draw()'s writeAhead asked for has ended, ran or not (then draw() may ask again).
  void aheadFinished();
  /// True when a reservation should be tried now without a request (no block
  /// yet, or failing and past the retry time; none in flight or queued): the
  /// caller then runs writeAhead() and aheadFinished() on a worker thread, as
  /// for draw()'s writeAhead. A shared store's factory asks this on a timer, so
  /// that readiness returns while the balancer sends no requests. Never waits.
  bool wantRetry();
  /// draw(), then writeAhead()/settle() on the calling thread (tests; blocks for a durable write).
  Answer next();

  /// Clean stop: waits for a write in flight and persists the exact next
  /// answer number when possible. Later draws and settles answer "stopping".
  /// With a shared store it waits at most kCloseWait for a write in flight
  /// (then records nothing: a gap) and the store's release() may take one
  /// round trip (PostgresCounter::kGiveBackTimeout).
  void close();
  static constexpr std::chrono::milliseconds kCloseWait{100};

  /// False while reservations fail (also while the current block still has
  /// answers), after exhaustion and after close. Lock-free.
  bool ready() const { return ready_.load(std::memory_order_relaxed); }

  // For tests and logs.
  std::uint64_t nextIndex() const;  ///< the next index draw() assigns
  std::uint64_t durableCeiling() const;
  std::uint64_t durableWrites() const;  ///< successful reservations since open() (not counting open's)
  /// Waits until no write is in flight (tests: a known state).
  void awaitIdle();

  static Answer stopping() { return {Answer::Kind::Unavailable, 0, "ERR unavailable: the service is stopping"}; }

 private:
  Answer unavailable() const { return {Answer::Kind::Unavailable, 0, "ERR unavailable: " + failure_}; }
  Answer exhaustedLocked();
  static Answer render(std::uint64_t index, const BigDecimal& value);
  bool wantAheadLocked();
  // A promise (Pending) of the next index beyond the ceiling, into @p ticket.
  void promiseLocked(Ticket& ticket);
  // A shared store's block, reserved ahead while this one still has answers.
  struct Block {
    std::uint64_t start = 0;
    std::uint64_t ceiling = 0;
    FibonacciCursor cursor;  // at start
  };
  void switchBlockLocked();  // the current block is used up: continue with nextBlock_
  std::uint64_t waitingLocked() const;  // promises the next write should cover
  // settle() with a shared store: takes the next number of the current block, writing (or waiting
  // for) the next block when it is used up.
  Answer settleSharedLocked(std::unique_lock<std::mutex>& lock, const Ticket& ticket);
  // Writes the next ceiling (covering every promise) with the mutex released; the write flag is ours.
  // @p gather: a settle's write, which may wait a little for more requests first (writeLocked).
  void writeLocked(std::unique_lock<std::mutex>& lock, bool gather);
  ReservationStore::Reservation reserve(std::uint64_t from, std::uint64_t block);
  // @p jumped: the cursor at r.start when the block does not start at @p from (computed off the lock).
  void applyLocked(const ReservationStore::Reservation& r, std::uint64_t from,
                   std::optional<FibonacciCursor> jumped = std::nullopt);
  void positionLocked();                  // the cursor at cur_ (cur_ <= maxIndex)
  void advanceLocked(BigDecimal& value);  // the value of cur_, then ++cur_
  // Under mutex_, which reactors take in draw(): harmless, since Logger::log
  // never waits for the log's output (Logger.h).
  void logFailureLocked(const std::string& error);

  mutable std::mutex mutex_;
  std::unique_ptr<ReservationStore> store_;
  bool jumps_ = false;              // store_->blocksMayJump(): blocks of a shared store
  std::optional<Block> nextBlock_;  // jumps_ only: reserved ahead, not adjacent to [cur_, ceiling_)
  bool storeExhausted_ = false;     // jumps_ only: the store has no block left beyond the current one
  std::uint64_t waitingShared_ = 0;  // jumps_ only: promises not settled yet (their numbers are drawn in settle)
  bool haveBlock_ = true;           // false until a store that does not reserve at open got its first block
  SequenceOptions options_;
  Logger& logger_;
  std::function<Clock::time_point()> clock_;

  FibonacciCursor cursor_;  // at answer cur_ when cursorValid_
  FibonacciCursor rewind_;  // the cursor at the first promise beyond the ceiling (a failed write goes back to it)
  bool cursorValid_ = false;
  std::uint64_t cur_ = 1;      // next answer number to assign (answers below it are handed out or promised)
  std::uint64_t ceiling_ = 1;  // durable ceiling: answers < ceiling_ may be served
  std::uint64_t servedEnd_ = 1;  // 1 + the highest answer handed out (a Number returned); <= ceiling_
  std::uint64_t epoch_ = 0;    // bumped when outstanding promises end (failed write, foreign move)
  std::uint64_t writes_ = 0;
  bool open_ = false;
  bool failing_ = false;
  bool exhaustedLogged_ = false;
  std::string failure_;  // short reason sent to clients while failing
  Clock::time_point retryAt_{};
  Clock::time_point nextLogAt_{};
  std::uint64_t suppressedLogs_ = 0;
  std::atomic<bool> ready_{false};

  bool writing_ = false;       // one durable write in flight (the writer owns the store meanwhile)
  bool aheadQueued_ = false;   // a writeAhead() asked for and not finished
  std::condition_variable written_;  // a write ended, or close()
  bool gathering_ = false;            // the writer waits for more promises (promised_)
  std::condition_variable promised_;  // draw() made a promise while gathering_, or close()
  std::uint64_t lastBatch_ = 0;       // promises the previous settle's write covered
  std::chrono::steady_clock::duration lastWriteTime_{};  // how long the previous write took (writer only)
};

}  // namespace protohost::plugins::fibonacci
