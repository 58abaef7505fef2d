#include "FileOps.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace protohost::plugins::fibonacci {

namespace {
int lastError() { return errno != 0 ? errno : EIO; }
}  // namespace

std::string errnoText(int error) {
  char buf[256];
  // GNU strerror_r returns the message (maybe not in buf).
  const char* msg = ::strerror_r(error, buf, sizeof buf);
  return msg ? std::string(msg) : "errno " + std::to_string(error);
}

int FileOps::readFile(const std::string& path, std::size_t maxBytes, std::string& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return lastError();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = lastError();
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > maxBytes) break;
  }
  ::close(fd);
  return 0;
}

int FileOps::createExclusive(const std::string& path, int& fd) {
  fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  return fd < 0 ? lastError() : 0;
}

int FileOps::writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastError();
    }
    if (n == 0) return EIO;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

int FileOps::syncFile(int fd) { return ::fsync(fd) == 0 ? 0 : lastError(); }

int FileOps::closeFile(int fd) { return ::close(fd) == 0 ? 0 : lastError(); }

int FileOps::renameFile(const std::string& from, const std::string& to) {
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : lastError();
}

int FileOps::syncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return lastError();
  int rc = ::fsync(fd) == 0 ? 0 : lastError();
  ::close(fd);
  return rc;
}

int FileOps::openReadWrite(const std::string& path, int& fd) {
  fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  return fd < 0 ? lastError() : 0;
}

int FileOps::readAt(int fd, std::size_t maxBytes, std::uint64_t offset, std::string& out) {
  out.assign(maxBytes, '\0');
  std::size_t got = 0;
  while (got < maxBytes) {
    ssize_t n = ::pread(fd, out.data() + got, maxBytes - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = lastError();
      out.clear();
      return e;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return 0;
}

int FileOps::writeAt(int fd, std::string_view data, std::uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastError();
    }
    if (n == 0) return EIO;
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

int FileOps::syncData(int fd) { return ::fdatasync(fd) == 0 ? 0 : lastError(); }

int FileOps::sameFile(int fd, const std::string& path, bool& same) {
  same = false;
  struct stat open {}, named {};
  if (::fstat(fd, &open) != 0) return lastError();
  if (::stat(path.c_str(), &named) != 0) return lastError();
  same = open.st_dev == named.st_dev && open.st_ino == named.st_ino;
  return 0;
}

int FileOps::removeFile(const std::string& path) { return ::unlink(path.c_str()) == 0 ? 0 : lastError(); }

int FileOps::createDirectories(const std::string& dir, bool& created) {
  created = false;
  std::vector<std::filesystem::path> missing;
  std::error_code ec;
  for (std::filesystem::path p = std::filesystem::path(dir).lexically_normal(); !p.empty();
       p = p.parent_path()) {
    if (std::filesystem::exists(p, ec)) break;
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) return lastError();
    created = true;
    std::filesystem::path parent = it->parent_path();
    if (int e = syncDirectory(parent.empty() ? "." : parent.string()); e != 0) return e;
  }
  return 0;
}

int FileOps::openLockFile(const std::string& path, int& fd) {
  fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  return fd < 0 ? lastError() : 0;
}

namespace {
int setLock(int fd, int byte, short type, bool wait) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  fl.l_pid = 0;  // required for OFD locks
  for (;;) {
    if (::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EACCES) return EAGAIN;
    return lastError();
  }
}
}  // namespace

int FileOps::lockByte(int fd, int byte, bool exclusive, bool wait) {
  return setLock(fd, byte, exclusive ? F_WRLCK : F_RDLCK, wait);
}

int FileOps::unlockByte(int fd, int byte) { return setLock(fd, byte, F_UNLCK, false); }

}  // namespace protohost::plugins::fibonacci
