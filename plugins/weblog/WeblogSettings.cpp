#include "WeblogSettings.h"

#include "HitFormatter.h"

namespace protohost::plugins::weblog {

namespace {
constexpr const char* kKeys[] = {"access_log",     "mode",           "push_interval_ms",
                                 "history",        "max_line_bytes", "max_client_backlog_bytes",
                                 "poll_interval_ms"};
}  // namespace

WeblogSettings readSettings(const ConfigView& config) {
  WeblogSettings s;
  // Mark every key as read first, so that all count as known even when one is bad.
  for (const char* key : kKeys) config.has(key);
  s.mode = config.getChoice("mode", "push", {"push", "poll"}) == "poll" ? Mode::Poll : Mode::Push;
  s.pushInterval = std::chrono::milliseconds(config.getInt("push_interval_ms", 5000, 0, 3'600'000));
  s.history = static_cast<std::size_t>(config.getInt("history", 100, 0, 1'000'000));
  s.maxLineBytes = static_cast<std::size_t>(config.getInt("max_line_bytes", 64 * 1024, 256, 16 * 1024 * 1024));
  s.maxClientBacklogBytes = static_cast<std::size_t>(
      config.getInt("max_client_backlog_bytes", 1024 * 1024, 4096, std::int64_t{1} << 34));
  const auto fallbackPoll = s.mode == Mode::Push && s.pushInterval.count() == 0 ? kFastPollInterval
                                                                                : std::chrono::milliseconds(250);
  s.pollInterval = std::chrono::milliseconds(config.getInt("poll_interval_ms", fallbackPoll.count(), 10, 60'000));

  if (!config.has("access_log")) config.fail("access_log", "missing required key (the access log to follow)");
  s.accessLog = config.getPath("access_log");
  if (s.accessLog.empty()) config.fail("access_log", "must not be empty");

  // The largest hit must fit under the pacing mark (3/4 of the bound) and in a
  // pull next to a quarter of unsent output, or one such line would stall the
  // tailer and cut every client off: twice the largest hit.
  if (s.maxClientBacklogBytes < 2 * maxHitBytes(s.maxLineBytes))
    config.fail("max_client_backlog_bytes",
                "must be at least " + std::to_string(2 * maxHitBytes(s.maxLineBytes)) +
                    " (2 x (6 x max_line_bytes + 128): twice the largest <hit/> element a line can become)");
  return s;
}

}  // namespace protohost::plugins::weblog
