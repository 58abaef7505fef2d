#pragma once
/// @file Logger.h
/// The host's log, as a plugin sees it. One call = one line; the host adds the
/// time, level, listener and (for a connection's logger) the peer address.

#include <string_view>

namespace protohost {

enum class LogLevel { Debug, Info, Warning, Error };

/// Thread-safe: may be called from any thread. Never blocks on the network.
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
