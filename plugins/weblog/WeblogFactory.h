#pragma once
// One per [listener.*] of the weblog plugin: the settings, the one file tailer
// (woken by inotify on the log's directory, with a repeating timer on the
// factory's reactor as the polling fallback) and the hub that shares its hits
// with every connection, on whatever reactor thread it runs.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "HitHub.h"
#include "LogTailer.h"
#include "WeblogSettings.h"
#include "protohost/Factory.h"

namespace protohost::plugins::weblog {

class WeblogFactory final : public Factory {
 public:
  void configure(const ConfigView& config) override;
  void start(FactoryContext& context) override;
  void stop() override;
  std::unique_ptr<Protocol> buildProtocol() override;

  /// One round of the tailer: reads the new lines, formats them, publishes the
  /// hits, counts and reports (rate-limited) the skipped lines. Runs on the
  /// factory's reactor thread (its timer); public so that tests can drive it.
  void pollLog();

  const WeblogSettings& settings() const { return settings_; }
  HitHub& hub() { return *hub_; }
  std::uint64_t unparsableLines() const { return unparsable_.load(std::memory_order_relaxed); }
  std::uint64_t overlongLines() const { return overlong_.load(std::memory_order_relaxed); }
  /// Unterminated last lines of a rotated or truncated file (never completed, never sent).
  std::uint64_t cutOffLines() const { return cutOff_.load(std::memory_order_relaxed); }

 private:
  void startInotify();
  void stopInotify();
  void onInotify();
  void reportSkipped(std::uint64_t unparsable, std::uint64_t overlong, std::uint64_t cutOff,
                     const std::string& example);

  WeblogSettings settings_;
  std::unique_ptr<HitHub> hub_;
  std::unique_ptr<LogTailer> tailer_;
  FactoryContext* context_ = nullptr;
  TimerId timer_ = 0;
  int inotifyFd_ = -1;
  TimerId inotifyWatch_ = 0;
  std::atomic<std::uint64_t> unparsable_{0};
  std::atomic<std::uint64_t> overlong_{0};
  std::atomic<std::uint64_t> cutOff_{0};
  // Rate-limited warning state (factory thread only).
  bool warnedOnce_ = false;
  Reactor::Clock::time_point lastWarning_{};
  std::uint64_t pendingUnparsable_ = 0;
  std::uint64_t pendingOverlong_ = 0;
  std::uint64_t pendingCutOff_ = 0;
  std::string pendingExample_;
};

}  // namespace protohost::plugins::weblog
