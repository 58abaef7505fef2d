#pragma once
// The few POSIX file operations the state store uses, behind virtual functions
// so that tests can inject failures (ENOSPC, EIO, ...) at any step, also when
// they run as root (where a read-only directory does not stop writes).
// Every method returns 0 or an errno value; none throws.

#include <cstdint>
#include <string>
#include <string_view>

namespace protohost::plugins::fibonacci {

class FileOps {
 public:
  virtual ~FileOps() = default;

  /// Reads the whole file (at most @p maxBytes + 1 bytes, to detect oversize). ENOENT when missing.
  virtual int readFile(const std::string& path, std::size_t maxBytes, std::string& out);
  /// Creates a new file (O_CREAT | O_EXCL, mode 0644) for writing.
  virtual int createExclusive(const std::string& path, int& fd);
  /// Writes all of @p data (retries short writes and EINTR).
  virtual int writeAll(int fd, std::string_view data);
  virtual int syncFile(int fd);
  virtual int closeFile(int fd);
  virtual int renameFile(const std::string& from, const std::string& to);
  /// fsync of the directory, making a rename inside it durable.
  virtual int syncDirectory(const std::string& dir);
  /// Opens an existing file read-write (no O_CREAT): the state file, written in place.
  virtual int openReadWrite(const std::string& path, int& fd);
  /// pread from @p offset until @p maxBytes or end of file (retries short reads and EINTR).
  virtual int readAt(int fd, std::size_t maxBytes, std::uint64_t offset, std::string& out);
  /// pwrite all of @p data at @p offset (retries short writes and EINTR).
  virtual int writeAt(int fd, std::string_view data, std::uint64_t offset);
  /// fdatasync: enough for a write in place that does not change the file's size.
  virtual int syncData(int fd);
  /// Whether @p fd is still the file named @p path (same device and inode); ENOENT when @p path is gone.
  virtual int sameFile(int fd, const std::string& path, bool& same);
  /// unlink; ENOENT is reported as ENOENT (callers decide whether it matters).
  virtual int removeFile(const std::string& path);
  /// mkdir -p with mode 0755, syncing the parent of each directory it creates.
  /// @p created tells whether anything was created.
  virtual int createDirectories(const std::string& dir, bool& created);
  /// Opens (creating if needed) the lock file, read-write.
  virtual int openLockFile(const std::string& path, int& fd);
  /// Locks one byte of the lock file with an open-file-description lock (F_OFD_SETLK[W]):
  /// held per open file, so two stores in one process exclude each other as two
  /// processes do, and released when the file is closed or the process dies.
  /// A failed conversion keeps the lock already held. Returns EAGAIN when
  /// @p wait is false and another holder conflicts.
  virtual int lockByte(int fd, int byte, bool exclusive, bool wait);
  virtual int unlockByte(int fd, int byte);
};

/// strerror as a std::string (thread-safe).
std::string errnoText(int error);

}  // namespace protohost::plugins::fibonacci
