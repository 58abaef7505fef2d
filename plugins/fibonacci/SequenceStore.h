#pragma once
// Durable reservations of answer numbers in the state file (see StateFormat.h).
//
// The file holds the reservation ceiling C: no answer >= C was ever handed out.
// To serve answers [start, C') the store first makes C' durable; only then may
// the caller serve from the block. A commit (StateFormat.h, format v2):
//  - usually one pwrite of the slot that does not hold the current record, and
//    one fdatasync (the file's size never changes). Only over a record this
//    store wrote itself and knows durable: the other slot then survives a torn
//    write of this one, and a restart finds a ceiling >= every answer served;
//  - otherwise (the first commit after open, a v1 file to convert, a record
//    another user wrote, the file replaced or removed, any failure before) the
//    whole file is replaced: PATH.tmp (fresh, O_EXCL), fsync, rename over PATH,
//    fsync the directory. Pages of a failed write are never trusted and its
//    fsync is never retried.
// A write that fails at any step leaves the ceiling where it was and the
// caller fails closed.
//
// Several stores may use one file at once (a config reload starts a new factory
// while the old one still serves its connections; or two processes by mistake):
// PATH.lock carries two open-file-description locks.
//  - byte 0, exclusive, around every read-modify-write of PATH;
//  - byte 1, shared, held from open() to release(): release() lowers the file to
//    the exact next answer only when it can take byte 1 exclusively, i.e. no
//    other store is alive. Otherwise the file value only ever grows, and a store
//    that finds a value it did not write continues from that value (a gap, never
//    a repeat).
// Not thread-safe: Sequence serializes the calls.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "FileOps.h"
#include "ReservationStore.h"
#include "StateFormat.h"
#include "protohost/Logger.h"

namespace protohost::plugins::fibonacci {

class SequenceStore : public ReservationStore {
 public:
  SequenceStore(std::string path, Logger& logger, std::shared_ptr<FileOps> ops = std::make_shared<FileOps>());
  ~SequenceStore() override;  // closes the lock file; never writes
  SequenceStore(const SequenceStore&) = delete;
  SequenceStore& operator=(const SequenceStore&) = delete;

  const std::string& path() const { return path_; }
  const std::string& tempPath() const { return tempPath_; }
  const std::string& lockPath() const { return lockPath_; }
  std::string label() const override { return path_; }

  /// Removes a stale PATH.tmp left by a crash, then reads and verifies PATH. A
  /// missing file is a fresh start: writes next=1. Throws protohost::StateError
  /// when the file is corrupt, truncated, empty, has a bad checksum or cannot be read.
  OpenResult open() override;

  /// Makes a new block durable. @p cur is the caller's next answer (every answer
  /// below it may have been served), @p block the block size, @p limit = max answer + 1.
  Reservation reserve(std::uint64_t cur, std::uint64_t block, std::uint64_t limit) override;

  /// Makes the file's value at least @p ceiling (never lowers it): a shared
  /// store's block end, recorded as this host's high-water mark before any of
  /// it is handed out. Reserved with start = the file's value before.
  Reservation raise(std::uint64_t ceiling);

  /// Clean stop: records @p next (<= the durable ceiling) so that a restart has no
  /// gap, unless another store still uses the file or advanced it (then the ceiling
  /// stays). Closes the lock file.
  Release release(std::uint64_t next) override;

  /// The ceiling known durable (last successful write, or the value read at open).
  std::uint64_t durableCeiling() const override { return ceiling_; }

 private:
  struct WriteResult {
    int error = 0;
    std::string step;
  };
  // Makes @p next durable as the record after @p current (what the file held): in place (pwrite of
  // the other slot, fdatasync) over a record of ours known durable, else replaceFile.
  WriteResult commit(const std::optional<StateImage>& current, std::uint64_t next);
  // A whole new file, gen/next in slot 0: PATH.tmp (O_EXCL), fsync, rename over PATH, fsync the directory.
  WriteResult replaceFile(std::uint64_t gen, std::uint64_t next);
  class CriticalSection;  // holds byte 0 of the lock file
  // Under byte 0: makes @p ceiling durable after @p current (the file's record); r.start as the caller set it.
  Reservation commitCeiling(Reservation r, const std::optional<StateImage>& current, std::uint64_t ceiling);
  // Takes byte 0 (into @p section) and reads PATH: @p current and @p fileValue (ceiling_ when the
  // file is missing; then @p cur is logged). False: r.error and r.errorNumber say why.
  bool lockAndRead(Reservation& r, std::optional<CriticalSection>& section, std::optional<StateImage>& current,
                   std::uint64_t& fileValue, std::uint64_t cur);
  // Reads PATH through stateFd_ while that is still PATH's file, else by name.
  int readState(std::string& content);
  void closeStateFile();  // and forgets known_
  std::string describe(const WriteResult& w) const;
  int ensureLockFile();  // opens PATH.lock and takes the shared liveness lock
  void closeLockFile();
  bool isOurs(std::uint64_t fileValue) const {
    return fileValue == ceiling_ || (lastAttempt_ && fileValue == *lastAttempt_);
  }

  std::string path_;
  std::string tempPath_;
  std::string lockPath_;
  std::string dir_;
  Logger& logger_;
  std::shared_ptr<FileOps> ops_;
  int lockFd_ = -1;
  int stateFd_ = -1;  // PATH, open read-write for writes in place
  struct Written {
    std::uint64_t gen = 0;
    std::uint64_t next = 0;
    std::size_t slot = 0;
  };
  std::optional<Written> known_;  // our last record: durable, in the file behind stateFd_, no failure since
  std::uint64_t ceiling_ = 1;
  std::optional<std::uint64_t> lastAttempt_;  // a failed write that may nevertheless be visible
  bool haveFile_ = false;                     // the file existed or was written by us
  bool foreignLogged_ = false;                // "advanced by another user" logged once at info
};

}  // namespace protohost::plugins::fibonacci
