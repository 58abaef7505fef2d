#pragma once
// Helpers for the fibonacci unit tests: a scratch directory, an independent
// (digit-by-digit) Fibonacci reference, a FactoryContext, and FileOps that fail on demand.

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "FileOps.h"
#include "protohost/Factory.h"
#include "protohost/testing/ManualReactor.h"
#include "protohost/testing/MemoryTransport.h"
#include "TempDir.h"

namespace fibtest {

/// A fresh directory under $TMPDIR (or /tmp), removed at scope exit (tests/support/TempDir.h).
using TempDir = protohost::testsupport::TempDir;

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

/// Decimal addition on strings, digit by digit: independent of BigDecimal.
inline std::string addDecimal(const std::string& a, const std::string& b) {
  std::string r;
  int carry = 0;
  for (std::size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    int d = carry;
    if (i < a.size()) d += a[a.size() - 1 - i] - '0';
    if (i < b.size()) d += b[b.size() - 1 - i] - '0';
    r.push_back(static_cast<char>('0' + d % 10));
    carry = d / 10;
  }
  return std::string(r.rbegin(), r.rend());
}

/// The article's sequence (a = b = 1; answer = a + b): element k-1 is answer k.
inline std::vector<std::string> referenceAnswers(std::size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  std::string a = "1", b = "1";
  for (std::size_t k = 0; k < n; ++k) {
    std::string c = addDecimal(a, b);
    a = std::move(b);
    b = c;
    out.push_back(std::move(c));
  }
  return out;
}

/// F(1002) = the article's 1000th answer, as printed by Python 3.
inline const std::string kF1002 =
    "113796925398360272257523782552224175572745930353730513145086634176691092536145985470146129334641866902783673"
    "042322088625863396052888690096969577173696370562180400527049497109023054114771394568040040412172632376";

/// Splits "a\r\nb\r\n" into {"a", "b"}; a missing final CRLF leaves an element "<partial>".
inline std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t end = s.find("\r\n", pos);
    if (end == std::string::npos) {
      out.push_back("<partial>" + s.substr(pos));
      break;
    }
    out.push_back(s.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

/// Feeds @p data (in @p chunk-byte pieces), then plays the host's worker pool:
/// runs the deferred work (durable writes, settles) and their done callbacks
/// on the transport's own ManualReactor until none is left.
inline void feed(protohost::testing::MemoryTransport& t, protohost::Protocol& p, std::string_view data,
                 std::size_t chunk = SIZE_MAX) {
  t.feed(p, data, chunk);
  while (t.manualReactor().runWork() > 0) {
  }
}

class TestContext : public protohost::FactoryContext {
 public:
  const std::string& listenerName() const override { return name_; }
  protohost::Reactor& reactor() override { return reactor_; }
  protohost::Logger& logger() override { return logger_; }
  protohost::FactoryHandle handle() override { return {}; }
  protohost::testing::MemoryLogger& memoryLogger() { return logger_; }
  protohost::testing::ManualReactor& manualReactor() { return reactor_; }
  std::size_t count(protohost::LogLevel level) {
    std::size_t n = 0;
    for (const auto& l : logger_.lines) n += l.level == level ? 1 : 0;
    return n;
  }

 private:
  std::string name_ = "fibonacci";
  protohost::testing::ManualReactor reactor_;
  protohost::testing::MemoryLogger logger_;
};

/// A thread-safe logger (MemoryLogger is not).
class LockedLogger : public protohost::Logger {
 public:
  void log(protohost::LogLevel level, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    lines.push_back({level, std::string(message)});
  }
  std::size_t count(protohost::LogLevel level) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const auto& l : lines) n += l.level == level ? 1 : 0;
    return n;
  }
  std::vector<protohost::testing::MemoryLogger::Line> lines;

 private:
  std::mutex mutex_;
};

/// A steady clock the tests move by hand. Read by the sequence's reserver thread too, hence atomic.
class ManualClock {
 public:
  using Clock = std::chrono::steady_clock;
  Clock::time_point operator()() const { return Clock::time_point(Clock::duration(ticks_.load())); }
  ManualClock& operator+=(Clock::duration d) {
    ticks_ += d.count();
    return *this;
  }

 private:
  std::atomic<Clock::rep> ticks_{0};
};

/// Real file operations, except that the named step fails with @p error while armed,
/// and that a paused step blocks whichever thread reaches it until resume().
/// Steps: read, create, write, fsync, close-temp, rename, fsync-dir, remove-temp, open-lock, lock (the
/// whole-file replacement), open-state, identity (fstat/stat), and the write in place: pwrite and
/// fdatasync, which also count as (and fail or pause with) "write" and "fsync": a durable write is one
/// "fsync" either way. A read through the open state file (pread) is a "read" too.
class FailingOps : public protohost::plugins::fibonacci::FileOps {
 public:
  void fail(std::string step, int error, int times = -1) {
    std::lock_guard<std::mutex> lock(mutex_);
    step_ = std::move(step);
    error_ = error;
    times_ = times;
  }
  void heal() { fail("", 0, 0); }
  /// Calls of @p step so far (including failed and paused ones).
  int calls(const std::string& step) {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_[step];
  }
  /// Calls of @p step that returned from the real operation.
  int completed(const std::string& step) {
    std::lock_guard<std::mutex> lock(mutex_);
    return completed_[step];
  }
  /// The next calls of @p step block before doing anything until resume().
  void pause(std::string step) {
    std::lock_guard<std::mutex> lock(mutex_);
    pauseStep_ = std::move(step);
  }
  /// Returns once a thread is blocked in the paused step.
  void waitPaused() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return blocked_ > 0; });
  }
  void resume() {
    std::lock_guard<std::mutex> lock(mutex_);
    pauseStep_.clear();
    changed_.notify_all();
  }

  int readFile(const std::string& path, std::size_t maxBytes, std::string& out) override {
    return run("read", [&] { return FileOps::readFile(path, maxBytes, out); });
  }
  int openReadWrite(const std::string& path, int& fd) override {
    return run("open-state", [&] { return FileOps::openReadWrite(path, fd); });
  }
  int readAt(int fd, std::size_t maxBytes, std::uint64_t offset, std::string& out) override {
    return run("read", [&] { return FileOps::readAt(fd, maxBytes, offset, out); });
  }
  int writeAt(int fd, std::string_view data, std::uint64_t offset) override {
    if (int e = hit("pwrite", "write")) {
      // A torn write: the first 32 bytes of the slot are new (part of the record line), the rest old.
      (void)FileOps::writeAt(fd, data.substr(0, 32), offset);
      return e;
    }
    return finish("pwrite", FileOps::writeAt(fd, data, offset), "write");
  }
  int syncData(int fd) override {
    if (int e = hit("fdatasync", "fsync")) return e;
    return finish("fdatasync", FileOps::syncData(fd), "fsync");
  }
  int sameFile(int fd, const std::string& path, bool& same) override {
    return run("identity", [&] { return FileOps::sameFile(fd, path, same); });
  }
  int createExclusive(const std::string& path, int& fd) override {
    return run("create", [&] {
      int e = FileOps::createExclusive(path, fd);
      if (e == 0) tempFd_ = fd;
      return e;
    });
  }
  int writeAll(int fd, std::string_view data) override {
    if (int e = hit("write")) {
      // A failed write may still have written a part: leave half the bytes behind.
      (void)FileOps::writeAll(fd, data.substr(0, data.size() / 2));
      return e;
    }
    return finish("write", FileOps::writeAll(fd, data));
  }
  int syncFile(int fd) override {
    return run("fsync", [&] { return FileOps::syncFile(fd); });
  }
  int closeFile(int fd) override {
    if (fd != tempFd_) return FileOps::closeFile(fd);
    tempFd_ = -1;
    if (int e = hit("close-temp")) {
      (void)FileOps::closeFile(fd);
      return e;
    }
    return finish("close-temp", FileOps::closeFile(fd));
  }
  int renameFile(const std::string& from, const std::string& to) override {
    return run("rename", [&] { return FileOps::renameFile(from, to); });
  }
  int syncDirectory(const std::string& dir) override {
    return run("fsync-dir", [&] { return FileOps::syncDirectory(dir); });
  }
  int removeFile(const std::string& path) override {
    return run("remove-temp", [&] { return FileOps::removeFile(path); });
  }
  int openLockFile(const std::string& path, int& fd) override {
    return run("open-lock", [&] { return FileOps::openLockFile(path, fd); });
  }
  int lockByte(int fd, int byte, bool exclusive, bool wait) override {
    return run("lock", [&] { return FileOps::lockByte(fd, byte, exclusive, wait); });
  }

 private:
  template <class Op>
  int run(const std::string& step, Op op) {
    if (int e = hit(step)) return e;
    return finish(step, op());
  }
  // @p alias: a second name the step counts as, fails and pauses with ("" for none).
  int hit(const std::string& step, const std::string& alias = "") {
    std::unique_lock<std::mutex> lock(mutex_);
    auto is = [&](const std::string& name) { return !name.empty() && (name == step || name == alias); };
    ++calls_[step];
    if (!alias.empty()) ++calls_[alias];
    if (is(pauseStep_)) {
      ++blocked_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return !is(pauseStep_); });
      --blocked_;
    }
    if (!is(step_) || times_ == 0) return 0;
    if (times_ > 0) --times_;
    return error_;
  }
  int finish(const std::string& step, int result, const std::string& alias = "") {
    std::lock_guard<std::mutex> lock(mutex_);
    ++completed_[step];
    if (!alias.empty()) ++completed_[alias];
    return result;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::string step_;
  int error_ = 0;
  int times_ = 0;
  std::string pauseStep_;
  int blocked_ = 0;
  std::atomic<int> tempFd_{-1};
  std::map<std::string, int> calls_;
  std::map<std::string, int> completed_;
};

}  // namespace fibtest
