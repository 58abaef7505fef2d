#include "SequenceStore.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "StateFormat.h"
#include "protohost/Factory.h"

namespace protohost::plugins::fibonacci {

namespace {

constexpr int kMutexByte = 0;     // exclusive around each read-modify-write
constexpr int kLivenessByte = 1;  // shared while a store is open

std::uint64_t saturatingAdd(std::uint64_t a, std::uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

}  // namespace

// Releases byte 0 of the lock file when it goes out of scope.
class SequenceStore::CriticalSection {
 public:
  CriticalSection(FileOps& ops, int fd) : ops_(ops), fd_(fd) {}
  ~CriticalSection() { ops_.unlockByte(fd_, kMutexByte); }
  CriticalSection(const CriticalSection&) = delete;
  CriticalSection& operator=(const CriticalSection&) = delete;

 private:
  FileOps& ops_;
  int fd_;
};

SequenceStore::SequenceStore(std::string path, Logger& logger, std::shared_ptr<FileOps> ops)
    : path_(std::move(path)),
      tempPath_(path_ + ".tmp"),
      lockPath_(path_ + ".lock"),
      logger_(logger),
      ops_(std::move(ops)) {
  std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  dir_ = parent.empty() ? "." : parent.string();
}

SequenceStore::~SequenceStore() {
  closeStateFile();
  closeLockFile();
}

int SequenceStore::ensureLockFile() {
  if (lockFd_ >= 0) return 0;
  int fd = -1;
  if (int e = ops_->openLockFile(lockPath_, fd); e != 0) return e;
  // Waits only while another store's release() holds byte 1 for a moment.
  if (int e = ops_->lockByte(fd, kLivenessByte, false, true); e != 0) {
    ops_->closeFile(fd);
    return e;
  }
  lockFd_ = fd;
  return 0;
}

void SequenceStore::closeLockFile() {
  if (lockFd_ >= 0) ops_->closeFile(lockFd_);  // drops both locks
  lockFd_ = -1;
}

SequenceStore::WriteResult SequenceStore::replaceFile(std::uint64_t gen, std::uint64_t next) {
  // A fresh temp file every time: after a failed write or fsync its pages are
  // in an unknown state, and retrying fsync on it could report success for data
  // that never reached the disk.
  if (int e = ops_->removeFile(tempPath_); e != 0 && e != ENOENT) return {e, "remove old " + tempPath_};
  int fd = -1;
  if (int e = ops_->createExclusive(tempPath_, fd); e != 0) return {e, "create " + tempPath_};
  const std::string content = encodeStateFile(gen, next);
  if (int e = ops_->writeAll(fd, content); e != 0) {
    ops_->closeFile(fd);
    ops_->removeFile(tempPath_);
    return {e, "write " + tempPath_};
  }
  if (int e = ops_->syncFile(fd); e != 0) {
    ops_->closeFile(fd);
    ops_->removeFile(tempPath_);
    return {e, "fsync " + tempPath_};
  }
  if (int e = ops_->closeFile(fd); e != 0) {
    ops_->removeFile(tempPath_);
    return {e, "close " + tempPath_};
  }
  if (int e = ops_->renameFile(tempPath_, path_); e != 0) {
    ops_->removeFile(tempPath_);
    return {e, "rename " + tempPath_ + " to " + path_};
  }
  // Until the directory is synced the rename may be lost in a crash: the caller
  // must not serve from the new block (the old ceiling still protects it).
  if (int e = ops_->syncDirectory(dir_); e != 0) return {e, "fsync directory " + dir_};
  return {};
}

void SequenceStore::closeStateFile() {
  if (stateFd_ >= 0) ops_->closeFile(stateFd_);
  stateFd_ = -1;
  known_.reset();
}

int SequenceStore::readState(std::string& content) {
  if (stateFd_ >= 0) {
    bool same = false;
    if (ops_->sameFile(stateFd_, path_, same) == 0 && same)
      return ops_->readAt(stateFd_, kMaxStateFileBytes + 1, 0, content);
    closeStateFile();  // replaced or removed by someone else: our record is not the file's
  }
  return ops_->readFile(path_, kMaxStateFileBytes, content);
}

SequenceStore::WriteResult SequenceStore::commit(const std::optional<StateImage>& current, std::uint64_t next) {
  // A whole new file holds one record: there its generation can start again at 1.
  const bool genLeft = current && current->gen < UINT64_MAX;
  const std::uint64_t gen = genLeft ? current->gen + 1 : 1;
  // In place only over our own record, known durable: then the slot it is in
  // stays intact whatever happens to the other one. Anything else (a record
  // another user wrote, one read at start, a failure since) may exist only in
  // the page cache, so the whole file is replaced instead.
  if (genLeft && current->version == kStateVersion && stateFd_ >= 0 && known_ && known_->gen == current->gen &&
      known_->slot == current->slot && known_->next == current->next) {
    const std::size_t slot = (current->slot + 1) % kSlotCount;
    known_.reset();  // until this write is durable
    if (int e = ops_->writeAt(stateFd_, encodeSlot(slot, gen, next), slot * kSlotBytes); e != 0) {
      closeStateFile();  // the next write replaces the file: a failed write's pages are never trusted
      return {e, "write slot " + std::to_string(slot) + " of " + path_};
    }
    if (int e = ops_->syncData(stateFd_); e != 0) {
      closeStateFile();  // and its fdatasync is never retried
      return {e, "fdatasync " + path_};
    }
    known_ = Written{gen, next, slot};
    return {};
  }
  closeStateFile();
  if (WriteResult w = replaceFile(gen, next); w.error != 0) return w;
  // Durable now. Without the descriptor the next write replaces the file again.
  int fd = -1;
  if (ops_->openReadWrite(path_, fd) == 0) {
    stateFd_ = fd;
    known_ = Written{gen, next, 0};
  }
  return {};
}

std::string SequenceStore::describe(const WriteResult& w) const {
  return "cannot write " + path_ + ": " + w.step + ": " + errnoText(w.error);
}

SequenceStore::OpenResult SequenceStore::open() {
  OpenResult result;
  // A state directory that does not exist yet (e.g. var/ in a fresh checkout) is created at start only;
  // one that disappears later is a write failure.
  bool createdDir = false;
  if (int e = ops_->createDirectories(dir_, createdDir); e != 0) {
    logger_.warning("cannot create the state directory " + dir_ + ": " + errnoText(e));
  } else if (createdDir) {
    logger_.info("created the state directory " + dir_);
  }
  int lockError = ensureLockFile();
  bool locked = false;
  if (lockError == 0) {
    lockError = ops_->lockByte(lockFd_, kMutexByte, true, true);
    locked = lockError == 0;
  }
  std::optional<CriticalSection> section;
  if (locked) {
    section.emplace(*ops_, lockFd_);
    // Left by a crash between create and rename; never valid state (the rename is the commit).
    if (int e = ops_->removeFile(tempPath_); e == 0) {
      logger_.info("removed " + tempPath_ + ", left over from an interrupted write");
    } else if (e != ENOENT) {
      logger_.warning("cannot remove stale " + tempPath_ + ": " + errnoText(e));
    }
  } else {
    logger_.warning("cannot lock " + lockPath_ + ": " + errnoText(lockError) +
                    "; reading the state without it (no number is served until a reservation can be written)");
  }

  std::string content;
  int e = ops_->readFile(path_, kMaxStateFileBytes, content);
  if (e == ENOENT) {
    ceiling_ = 1;
    result.next = 1;
    if (!locked) {
      result.writeError = "cannot create " + path_ + ": cannot lock " + lockPath_ + ": " + errnoText(lockError);
      result.errorNumber = lockError;
      return result;
    }
    WriteResult w = commit(std::nullopt, 1);
    if (w.error != 0) {
      lastAttempt_ = 1;
      result.writeError = describe(w);
      result.errorNumber = w.error;
      return result;
    }
    haveFile_ = true;
    result.created = true;
    logger_.info("created " + path_ + ": a fresh sequence, the first answer is 2");
    return result;
  }
  if (e != 0)
    throw StateError(path_ + ": cannot read the fibonacci state: " + errnoText(e) +
                     "; refusing to start rather than risk handing out numbers twice");
  StateImage image;
  try {
    image = decodeStateImage(content);
  } catch (const StateFormatError& ex) {
    throw StateError(path_ + ": corrupt fibonacci state file: " + ex.what() +
                     ". Refusing to start: restore the file from a backup or repair it (deleting it restarts the "
                     "sequence at 2 and repeats numbers already handed out)");
  }
  for (std::size_t i = 0; i < kSlotCount; ++i) {
    if (!image.damaged[i].empty())
      logger_.warning(path_ + ": slot " + std::to_string(i) + " is damaged (" + image.damaged[i] +
                      "; a write interrupted by a crash leaves this); continuing from slot " +
                      std::to_string(image.slot) + ", next=" + std::to_string(image.next));
  }
  ceiling_ = image.next;
  haveFile_ = true;
  result.next = ceiling_;
  if (image.version != kStateVersion && locked) {
    // Format v1 (one line): replaced by a v2 file with the same ceiling (temp file, fsync, rename).
    WriteResult w = commit(image, ceiling_);
    if (w.error != 0) {
      lastAttempt_ = ceiling_;
      result.writeError = describe(w);
      result.errorNumber = w.error;
      return result;
    }
    logger_.info("converted " + path_ + " from format v" + std::to_string(image.version) + " to v" +
                 std::to_string(kStateVersion) + " (next=" + std::to_string(ceiling_) + ")");
  }
  return result;
}

bool SequenceStore::lockAndRead(Reservation& r, std::optional<CriticalSection>& section,
                                std::optional<StateImage>& current, std::uint64_t& fileValue, std::uint64_t cur) {
  if (int e = ensureLockFile(); e != 0) {
    r.error = "cannot open " + lockPath_ + ": " + errnoText(e);
    r.errorNumber = e;
    return false;
  }
  if (int e = ops_->lockByte(lockFd_, kMutexByte, true, true); e != 0) {
    r.error = "cannot lock " + lockPath_ + ": " + errnoText(e);
    r.errorNumber = e;
    return false;
  }
  section.emplace(*ops_, lockFd_);

  std::string content;
  fileValue = ceiling_;
  int e = readState(content);
  if (e == ENOENT) {
    if (haveFile_) logger_.warning(path_ + " disappeared; writing it again from answer " + std::to_string(cur));
    return true;
  }
  if (e != 0) {
    r.error = "cannot read " + path_ + ": " + errnoText(e);
    r.errorNumber = e;
    return false;
  }
  try {
    current = decodeStateImage(content);
    fileValue = current->next;
  } catch (const StateFormatError& ex) {
    r.error = path_ + " became corrupt (" + std::string(ex.what()) + "); not overwriting it";
    return false;
  }
  return true;
}

SequenceStore::Reservation SequenceStore::commitCeiling(Reservation r, const std::optional<StateImage>& current,
                                                        std::uint64_t ceiling) {
  lastAttempt_ = ceiling;
  if (WriteResult w = commit(current, ceiling); w.error != 0) {
    r.error = describe(w);
    r.errorNumber = w.error;
    return r;
  }
  ceiling_ = ceiling;
  lastAttempt_.reset();
  haveFile_ = true;
  r.status = Reservation::Status::Reserved;
  r.ceiling = ceiling;
  return r;
}

SequenceStore::Reservation SequenceStore::raise(std::uint64_t ceiling) {
  Reservation r;
  std::optional<CriticalSection> section;
  std::optional<StateImage> current;
  std::uint64_t fileValue = 0;
  if (!lockAndRead(r, section, current, fileValue, ceiling)) return r;
  r.start = fileValue;
  if (current && fileValue >= ceiling) {  // never lower it: another user of the file may serve below it
    ceiling_ = std::max(ceiling_, ceiling);
    r.status = Reservation::Status::Reserved;
    r.ceiling = fileValue;
    return r;
  }
  return commitCeiling(std::move(r), current, ceiling);
}

SequenceStore::Reservation SequenceStore::reserve(std::uint64_t cur, std::uint64_t block, std::uint64_t limit) {
  Reservation r;
  std::optional<CriticalSection> section;
  std::optional<StateImage> current;
  std::uint64_t fileValue = 0;
  if (!lockAndRead(r, section, current, fileValue, cur)) return r;

  const bool ours = isOurs(fileValue);
  const std::uint64_t start = ours ? cur : std::max(fileValue, cur);
  if (!ours) {
    // Normal while a reloaded configuration and the previous one both serve: log it once.
    logger_.log(foreignLogged_ ? LogLevel::Debug : LogLevel::Info,
                path_ + " was advanced by another user of it (next=" + std::to_string(fileValue) + ", expected " +
                    std::to_string(ceiling_) + "); continuing from answer number " + std::to_string(start) +
                    (foreignLogged_ ? "" : " (further occurrences are logged at debug level)"));
    foreignLogged_ = true;
  }
  r.start = start;
  if (start >= limit) {
    r.status = Reservation::Status::Exhausted;
    r.ceiling = start;
    return r;
  }
  // Never lower the file value here: another store may be serving below it.
  const std::uint64_t base = std::max(start, fileValue);
  std::uint64_t ceiling = saturatingAdd(base, block);
  if (ceiling > limit) ceiling = std::max(limit, base);

  return commitCeiling(std::move(r), current, ceiling);
}

SequenceStore::Release SequenceStore::release(std::uint64_t next) {
  Release result;
  if (next > ceiling_) {
    result.error = "refusing to record next=" + std::to_string(next) + " above the durable ceiling " +
                   std::to_string(ceiling_);
    return result;
  }
  if (int e = ensureLockFile(); e != 0) {
    result.error = "cannot open " + lockPath_ + ": " + errnoText(e);
    return result;
  }
  if (int e = ops_->lockByte(lockFd_, kMutexByte, true, true); e != 0) {
    closeLockFile();
    result.error = "cannot lock " + lockPath_ + ": " + errnoText(e);
    return result;
  }
  {
    CriticalSection section(*ops_, lockFd_);
    int e = ops_->lockByte(lockFd_, kLivenessByte, true, false);
    if (e == EAGAIN) {
      result.note = "another user of " + path_ + " is still running, so the file keeps its value";
    } else if (e != 0) {
      result.error = "cannot lock " + lockPath_ + ": " + errnoText(e);
    } else {
      std::string content;
      int re = readState(content);
      std::optional<StateImage> current;
      std::optional<std::uint64_t> fileValue;
      if (re == 0) {
        try {
          current = decodeStateImage(content);
          fileValue = current->next;
        } catch (const StateFormatError& ex) {
          result.error = path_ + " became corrupt (" + std::string(ex.what()) + "); not overwriting it";
        }
      } else if (re != ENOENT) {
        result.error = "cannot read " + path_ + ": " + errnoText(re);
      }
      if (result.error.empty()) {
        if (fileValue && !isOurs(*fileValue)) {
          result.note = path_ + " was advanced by another user of it (next=" + std::to_string(*fileValue) +
                        "), so the file keeps its value";
        } else if (fileValue && *fileValue == next) {
          result.recorded = true;
        } else if (WriteResult w = commit(current, next); w.error != 0) {
          result.error = describe(w);
        } else {
          ceiling_ = next;
          result.recorded = true;
        }
      }
    }
  }
  closeStateFile();
  closeLockFile();
  return result;
}

}  // namespace protohost::plugins::fibonacci
