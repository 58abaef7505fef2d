#pragma once
/// @file Logger.h
/// The host's log, as a plugin sees it. One call = one line; the host adds the
/// time, level, listener and (for a connection's logger) the peer address.

#include <string_view>

namespace protohost {

enum class LogLevel { Debug, Info, Warning, Error };

/// Thread-safe: may be called from any thread. Never waits for the log's
/// output (the host queues the line; when its bounded queue is full because
/// the output is blocked, the line is dropped and counted), so it may be called
/// while holding a lock that reactor threads take.
class __attribute__((visibility("default"))) Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(LogLevel level, std::string_view message) = 0;

  void debug(std::string_view message) { log(LogLevel::Debug, message); }
  void info(std::string_view message) { log(LogLevel::Info, message); }
  void warning(std::string_view message) { log(LogLevel::Warning, message); }
  void error(std::string_view message) { log(LogLevel::Error, message); }
};

}  // namespace protohost
