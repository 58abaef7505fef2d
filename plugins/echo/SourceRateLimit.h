#pragma once
// A per-source datagram budget in bounded memory: at most @p perSecond
// datagrams per source address within each one-second window of the
// reactor's clock (a fixed window, so a source may send up to twice the
// budget across a window boundary).
//
// Memory: the table holds at most @p maxSources addresses and is emptied at
// each new window. A source first seen while the table is full shares one
// overflow budget of @p perSecond with every other such source: a flood from
// many (spoofed) addresses can neither grow the table nor get more than the
// tracked sources plus one budget through.
//
// Threading: one reactor thread (it belongs to one DatagramProtocol).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace protohost::plugins::echo {

class SourceRateLimit {
 public:
  using Clock = std::chrono::steady_clock;

  /// @p perSecond 0 = unlimited (allow() is always true and tracks nothing).
  SourceRateLimit(std::uint32_t perSecond, std::size_t maxSources)
      : perSecond_(perSecond), maxSources_(maxSources == 0 ? 1 : maxSources) {
    if (perSecond_) counts_.reserve(maxSources_);
  }

  /// False when unlimited (perSecond 0): then callers need not read the clock.
  bool enabled() const { return perSecond_ != 0; }

  /// Whether one more datagram from @p source fits its budget at @p now (and counts it).
  bool allow(std::string_view source, Clock::time_point now) {
    if (perSecond_ == 0) return true;
    if (now - windowStart_ >= std::chrono::seconds(1)) {
      windowStart_ = now;
      counts_.clear();  // keeps the buckets: no allocation per window
      overflow_ = 0;
    }
    key_.assign(source);
    auto it = counts_.find(key_);
    if (it == counts_.end()) {
      if (counts_.size() >= maxSources_) return ++overflow_ <= perSecond_;
      it = counts_.emplace(key_, 0).first;
    }
    return ++it->second <= perSecond_;
  }

  /// Sources tracked in the current window (at most maxSources).
  std::size_t trackedSources() const { return counts_.size(); }

 private:
  std::uint32_t perSecond_;
  std::size_t maxSources_;
  Clock::time_point windowStart_{};
  std::unordered_map<std::string, std::uint32_t> counts_;
  std::uint32_t overflow_ = 0;  // datagrams from untracked sources in this window
  std::string key_;             // reused lookup key
};

}  // namespace protohost::plugins::echo
