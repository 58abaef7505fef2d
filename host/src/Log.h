#pragma once
// The host's log: one line per event, "TIME LEVEL [listener peer] message",
// to stderr or to a file. Thread-safe; a write never blocks on the network.

#include <cstdio>
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
  LogLevel level() const { return level_; }
  bool enabled(LogLevel level) const { return level >= level_; }

  /// Writes one line. @p context is e.g. "listener=echo peer=127.0.0.1:4242" (may be empty).
  void write(LogLevel level, std::string_view context, std::string_view message);

 private:
  std::mutex mutex_;
  std::FILE* out_ = stderr;
  LogLevel level_ = LogLevel::Info;
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
