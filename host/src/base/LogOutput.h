#pragma once
// Where the log's lines go: one file descriptor (stderr or log_file), written
// either synchronously (before the writer thread starts: start-up messages
// reach the output before a failing start returns) or through a bounded queue
// drained by a writer thread, so that no caller ever blocks on the output (a
// pipe nobody reads, a stuck journald, a paused `| less`). A line that does
// not fit in the queue is dropped and counted; the writer reports the drops
// with one line of its own, in the place of the first line lost, once the
// output has taken the lines before it: one report for all the lines lost
// until then, however many batches the writer took meanwhile.
//
// Threading: write(), droppedLines() and flush() from any thread; setFd() and
// startWriter() from the main thread. Destroy only when the output accepts
// writes (the destructor waits for the writer); the process-wide Log is never
// destroyed.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace protohost::host {

class LogOutput {
 public:
  /// Makes the line that reports @p dropped lost lines (with its '\n').
  using ReportFormatter = std::function<std::string(std::uint64_t dropped)>;

  /// @p capacityBytes bounds the bytes queued and being written; a line that
  /// would pass it is dropped.
  LogOutput(std::size_t capacityBytes, ReportFormatter report);
  ~LogOutput();
  LogOutput(const LogOutput&) = delete;
  LogOutput& operator=(const LogOutput&) = delete;

  /// Writes @p line (one complete line). Before startWriter(): at once, one
  /// write(2) per line (lines never interleave). After: queues it, or drops it
  /// when the queue is full; never waits for the output.
  void write(std::string line);
  /// From now on lines go to @p fd, which this takes ownership of (except
  /// 0-2); the previous fd is closed once the lines written before are out.
  void setFd(int fd);
  /// Starts the writer thread (once; later calls do nothing).
  void startWriter();
  /// Waits up to @p timeout until every line written so far is out. True when
  /// it is (always without a writer thread).
  bool flush(std::chrono::milliseconds timeout);
  /// Lines dropped since the start (the queue was full).
  std::uint64_t droppedLines() const;

 private:
  // A line; or (line empty) the place to report the lines dropped so far
  // (fd < 0), or a switch to another fd.
  struct Entry {
    std::string line;
    int fd = -1;
  };
  void run();
  /// Switches to @p fd, closing the previous one unless it is 0-2. Under mutex_ or on the writer thread.
  void switchTo(int fd);
  static void writeAll(int fd, const std::string& line);

  const std::size_t capacity_;
  const ReportFormatter report_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the writer: work queued or stop
  std::condition_variable idle_;  // flush(): the writer wrote what it took
  std::deque<Entry> queue_;
  bool reportQueued_ = false;    // a report entry is queued or taken, not yet written
  std::uint64_t unreported_ = 0; // dropped lines no report has counted yet
  std::size_t bytes_ = 0;        // queued or being written
  bool writing_ = false;         // the writer holds a batch
  bool stop_ = false;
  int fd_ = 2;                   // the writer thread's (or, before it, the callers') output
  std::uint64_t dropped_ = 0;    // since the start
  std::thread writer_;
};

}  // namespace protohost::host
