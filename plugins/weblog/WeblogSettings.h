#pragma once
// The [listener.*] keys of the weblog plugin, read and validated in one place.

#include <chrono>
#include <cstddef>
#include <string>

#include "protohost/ConfigView.h"

namespace protohost::plugins::weblog {

enum class Mode {
  Push,  ///< the article's listing 4: new hits are sent every push interval
  Poll,  ///< listing 2: each "NEW?" is answered with the new hits or <none/>
};

struct WeblogSettings {
  std::string accessLog;                                ///< access_log (required)
  Mode mode = Mode::Push;                               ///< mode = push | poll
  std::chrono::milliseconds pushInterval{5000};         ///< push_interval_ms; 0 = at once
  std::size_t history = 100;                            ///< history
  std::size_t maxClientBacklogBytes = 1024 * 1024;      ///< max_client_backlog_bytes
  std::size_t maxLineBytes = 64 * 1024;                 ///< max_line_bytes
  std::chrono::milliseconds pollInterval{250};          ///< poll_interval_ms (file tailer)
};

/// Default poll_interval_ms when push_interval_ms = 0 and the key is absent:
/// the file is checked this often, which is the latency of a hit.
inline constexpr std::chrono::milliseconds kFastPollInterval{50};
/// How long a push client may hold the log tailer back (taking none of its
/// hits) before it is cut off, so that it cannot stall the other clients.
inline constexpr std::chrono::milliseconds kLaggardTimeout{2000};

/// Reads every key the plugin accepts (so none is reported unknown) and
/// validates it; throws ConfigError "FILE:LINE: KEY: problem".
WeblogSettings readSettings(const ConfigView& config);

}  // namespace protohost::plugins::weblog
