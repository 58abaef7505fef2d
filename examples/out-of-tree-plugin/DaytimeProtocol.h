#pragma once
// RFC 867 Daytime over TCP: on connect, send the current date and time as one
// ASCII line, then close. Anything the client sends is ignored.

#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include "protohost/Factory.h"
#include "protohost/Protocol.h"

namespace daytime {

/// "Thursday, November 26, 2026 22:10:00-UTC" for @p t.
inline std::string formatDaytime(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%A, %B %d, %Y %H:%M:%S-UTC", &tm);
  return buf;
}

class DaytimeProtocol : public protohost::Protocol {
 public:
  explicit DaytimeProtocol(std::function<std::time_t()> clock) : clock_(std::move(clock)) {}

  void connectionMade() override {
    transport().write(formatDaytime(clock_()) + "\r\n");
    transport().loseConnection();
  }
  void dataReceived(std::string_view) override {}

 private:
  std::function<std::time_t()> clock_;
};

class DaytimeFactory : public protohost::Factory {
 public:
  void configure(const protohost::ConfigView& config) override {
    // An example of a plugin's own key: a fixed time, for reproducible demos.
    fixed_ = config.getInt("fixed_time", -1, -1, INT32_MAX);
  }
  std::unique_ptr<protohost::Protocol> buildProtocol() override {
    auto fixed = fixed_;
    return std::make_unique<DaytimeProtocol>([fixed] {
      return fixed >= 0 ? static_cast<std::time_t>(fixed) : std::time(nullptr);
    });
  }

 private:
  std::int64_t fixed_ = -1;
};

}  // namespace daytime
