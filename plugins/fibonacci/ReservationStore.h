#pragma once
// Where a Sequence makes its reservations durable: the interface of the
// local state file (SequenceStore, `store = file`) and of the shared
// PostgreSQL row (PostgresStore, `store = postgres`).
//
// A reservation is a block [start, ceiling) of answer numbers that no other
// user of the store will ever get, durable before reserve() returns: only then
// may the caller hand them out. A store shared by several hosts hands out
// disjoint blocks that need not follow each other (blocksMayJump): the
// Sequence then positions its cursor at the block's start (fast doubling, on
// the worker thread that made the reservation).
//
// Threads: not thread-safe. Sequence calls one method at a time (open/close on
// the owner's thread, reserve on the one writer's worker thread).

#include <cstdint>
#include <string>

namespace protohost::plugins::fibonacci {

class ReservationStore {
 public:
  struct OpenResult {
    std::uint64_t next = 1;  ///< first answer number that may be handed out (the local high-water mark)
    bool created = false;    ///< the local state file did not exist; a fresh one was written
    std::string writeError;  ///< non-empty: the fresh file could not be written (nothing served yet)
    int errorNumber = 0;     ///< errno of writeError
  };

  struct Reservation {
    enum class Status { Reserved, Exhausted, Failed };
    Status status = Status::Failed;
    std::uint64_t start = 0;    ///< first answer of the block (>= cur; > cur after another user took some)
    std::uint64_t ceiling = 0;  ///< the block is [start, ceiling), durable (Reserved)
    std::string error;          ///< Failed: what went wrong, for the log (path or server, step, reason)
    int errorNumber = 0;        ///< Failed: the errno of a file error, 0 otherwise
    std::string clientReason;   ///< Failed: what clients are told after "ERR unavailable: " ("" = from errorNumber)
  };

  struct Release {
    bool recorded = false;  ///< the exact next answer is recorded (a restart has no gap)
    std::string error;      ///< non-empty: could not record (the durable ceiling stays, a gap)
    std::string note;       ///< why nothing was recorded without an error (another user of the store)
  };

  virtual ~ReservationStore() = default;

  /// What the logs call this store (a path, or a server and sequence name).
  virtual std::string label() const = 0;

  /// Reads the local state. Throws protohost::StateError when it is corrupt or unreadable.
  virtual OpenResult open() = 0;

  /// Makes a new block durable. @p cur is the caller's next answer (every answer
  /// below it may have been served), @p block the block size, @p limit = max answer + 1.
  virtual Reservation reserve(std::uint64_t cur, std::uint64_t block, std::uint64_t limit) = 0;

  /// Clean stop: records @p next (no answer at or above it was handed out) when that is safe.
  virtual Release release(std::uint64_t next) = 0;

  /// The ceiling known durable (last successful reservation, or the value read at open).
  virtual std::uint64_t durableCeiling() const = 0;

  /// True for a store shared by several hosts: consecutive blocks are
  /// disjoint and usually not adjacent (another host's lie between).
  virtual bool blocksMayJump() const { return false; }

  /// True when open() should be followed by a first reservation on the
  /// opening thread (a local file: fast). A remote store reserves its first
  /// block on a worker thread instead, so that start never waits for the network.
  virtual bool reserveAtOpen() const { return true; }
};

}  // namespace protohost::plugins::fibonacci
