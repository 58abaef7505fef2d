#pragma once
/// @file testing/MemoryKit.h
/// What the kit's memory transports (MemoryTransport, MemoryDatagramTransport)
/// lend a protocol besides themselves: a reactor (their own ManualReactor, or
/// one the test shares between several transports) and a logger that records.
/// Single-threaded, like ManualReactor.

#include <string>
#include <string_view>
#include <vector>

#include "protohost/Logger.h"
#include "protohost/Reactor.h"
#include "protohost/testing/ManualReactor.h"

namespace protohost::testing {

/// Collects log lines for assertions.
class MemoryLogger : public Logger {
 public:
  void log(LogLevel level, std::string_view message) override {
    lines.push_back({level, std::string(message)});
  }
  struct Line {
    LogLevel level;
    std::string text;
  };
  std::vector<Line> lines;
};

/// The reactor and the logger of one memory transport.
class MemoryKit {
 public:
  MemoryKit() = default;
  /// Uses @p reactor (shared with other transports) instead of an own ManualReactor.
  explicit MemoryKit(Reactor& reactor) : reactor_(&reactor) {}
  MemoryKit(const MemoryKit&) = delete;
  MemoryKit& operator=(const MemoryKit&) = delete;

  MemoryLogger& memoryLogger() { return logger_; }
  /// The transport's own reactor (the one in use unless a reactor was given).
  ManualReactor& manualReactor() { return ownReactor_; }

 protected:
  ~MemoryKit() = default;
  Reactor& kitReactor() { return reactor_ ? *reactor_ : ownReactor_; }
  Logger& kitLogger() { return logger_; }

 private:
  Reactor* reactor_ = nullptr;
  ManualReactor ownReactor_;
  MemoryLogger logger_;
};

}  // namespace protohost::testing
