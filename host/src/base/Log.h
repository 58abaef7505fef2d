#pragma once
// The host's log: one line per event, "TIME LEVEL [listener peer] message",
// to stderr or to a file. Thread-safe. Once startWriter() ran, a write never
// waits for the output: lines go through a bounded queue (LogOutput.h) and
// those that do not fit are dropped, counted and reported.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "base/LogOutput.h"
#include "protohost/Logger.h"

namespace protohost::host {

class Log {
 public:
  /// The process-wide log. Thread-safe.
  static Log& instance();

  void setLevel(LogLevel level) { level_ = level; }

  /// Logs to @p path (appending, created 0640) instead of stderr; an empty path
  /// means stderr. Returns false and sets @p error when the file cannot be opened.
  bool openFile(const std::string& path, std::string& error);
  /// Reopens the log file by name (after logrotate moved it: SIGUSR1). Returns
  /// false and keeps the old file when the new one cannot be opened.
  bool reopen(std::string& error);
  const std::string& filePath() const { return path_; }
  LogLevel level() const { return level_; }
  bool enabled(LogLevel level) const { return level >= level_; }

  /// Writes one line. @p context is e.g. "listener=echo peer=127.0.0.1:4242" (may be empty).
  /// Before startWriter() the line is out when this returns; after, it is queued
  /// (or dropped when kQueueBytes are already waiting).
  void write(LogLevel level, std::string_view context, std::string_view message);

  /// From now on lines go through the writer thread. Thread: main, once the
  /// process is what it stays (after --daemon's fork), before any reactor starts.
  void startWriter() { output_.startWriter(); }
  /// Waits up to @p timeout for every line written so far to be out (before an
  /// exit). True when it is. Any thread.
  bool flush(std::chrono::milliseconds timeout) { return output_.flush(timeout); }
  /// Lines dropped because the queue was full (protohost_log_lines_dropped_total). Any thread.
  std::uint64_t droppedLines() const { return output_.droppedLines(); }

  /// Bytes of lines that may wait for the output.
  static constexpr std::size_t kQueueBytes = 256 * 1024;

 private:
  Log();
  std::mutex mutex_;  // path_
  std::string path_;
  std::atomic<LogLevel> level_{LogLevel::Info};
  LogOutput output_;  // stderr until openFile
};

/// Parses "debug", "info", "warning", "error"; returns false for anything else.
bool parseLogLevel(std::string_view text, LogLevel& out);

/// A protohost::Logger that prefixes every line with a fixed context.
class ContextLogger final : public Logger {
 public:
  explicit ContextLogger(std::string context) : context_(std::move(context)) {}
  void log(LogLevel level, std::string_view message) override {
    Log::instance().write(level, context_, message);
  }
  const std::string& context() const { return context_; }

 private:
  std::string context_;
};

}  // namespace protohost::host
