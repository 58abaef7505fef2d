#pragma once
// The host's log: one line per event, "TIME LEVEL [listener peer] message",
// to stderr or to a file. Thread-safe; a write never blocks on the network.

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>

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
  void write(LogLevel level, std::string_view context, std::string_view message);

 private:
  std::mutex mutex_;
  int fd_ = 2;  // stderr until openFile
  std::string path_;
  std::atomic<LogLevel> level_{LogLevel::Info};
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
