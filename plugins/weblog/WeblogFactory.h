#pragma once
// One per [listener.*] of the weblog plugin: the settings, the one file tailer
// (woken by inotify on the log's directory, with a repeating timer on the
// factory's reactor as the polling fallback) and the hub that shares its hits
// with every connection, on whatever reactor thread it runs.
//
// Bursts: the tailer reads at most an eighth of max_client_backlog_bytes per
// read, and the factory publishes only what the hub has room for (see HitHub:
// push clients pace it). The rest of a burst stays unread in the log file (and
// at most one read's worth formatted here) until the clients have taken what
// they were given; a client that holds the tailer back for kLaggardTimeout is
// cut off so that it cannot stall the others.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
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
  /// hits the hub has room for, counts and reports (rate-limited) the skipped
  /// lines. Runs on the factory's reactor thread (its timer, inotify, or a post
  /// when clients made room); public so that tests can drive it.
  void pollLog();

  const WeblogSettings& settings() const { return settings_; }
  HitHub& hub() { return *hub_; }
  std::uint64_t unparsableLines() const { return unparsable_.load(std::memory_order_relaxed); }
  std::uint64_t overlongLines() const { return overlong_.load(std::memory_order_relaxed); }
  /// Unterminated last lines of a rotated or truncated file (never completed, never sent).
  std::uint64_t cutOffLines() const { return cutOff_.load(std::memory_order_relaxed); }
  /// Formatted hits read from the log but held back until clients make room (factory thread).
  std::size_t heldBackHits() const { return heldBack_.size(); }

 private:
  void startInotify();
  void stopInotify();
  void onInotify();
  /// Reads one budget of the log into heldBack_; false when the file had nothing more.
  bool readLog();
  /// Publishes from heldBack_ what the hub has room for; true if anything went.
  bool publishHeldBack();
  /// Asks the hub for a wake-up when there is room, and arms the laggard deadline.
  void waitForRoom();
  void onLaggardDeadline();
  /// Runs pollLog again soon on the factory's reactor (if the factory is still started).
  void pollSoon();
  void reportSkipped(std::uint64_t unparsable, std::uint64_t overlong, std::uint64_t cutOff,
                     const std::string& example);

  WeblogSettings settings_;
  std::unique_ptr<HitHub> hub_;
  std::unique_ptr<LogTailer> tailer_;
  FactoryContext* context_ = nullptr;
  TimerId timer_ = 0;
  int inotifyFd_ = -1;
  WatchId inotifyWatch_;
  // Hits read but not yet published, and the guard that posted callbacks
  // check (cleared by stop(); factory thread only).
  std::deque<std::string> heldBack_;
  TimerId laggardTimer_ = 0;
  bool pollPosted_ = false;  // a pollSoon continuation is queued
  struct Alive {
    WeblogFactory* factory;
  };
  std::shared_ptr<Alive> alive_;
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
