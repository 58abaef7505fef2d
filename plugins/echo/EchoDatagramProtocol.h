#pragma once
// RFC 862 Echo over UDP: each datagram is answered with one datagram of the
// same bytes, to its source. A UDP echo reflects whatever a spoofed source
// sends, so (CERT CA-1996-01, CVE-2024-2169 "loop DoS"):
// - datagrams from source port 7 (echo), 13 (daytime), 17 (qotd) or 19
//   (chargen) are dropped: two such services answering each other loop for
//   ever ("loop_source_port");
// - each source address gets at most max_datagrams_per_s_per_ip answers a
//   second ("rate_limited"; SourceRateLimit.h bounds the table's memory).
// Both are counted in protohost_datagrams_dropped_total{reason=...}.
// Source port 0 cannot be answered (nothing listens there) and is dropped too.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "SourceRateLimit.h"
#include "protohost/DatagramProtocol.h"
#include "protohost/Reactor.h"

namespace protohost::plugins::echo {

struct EchoDatagramLimits {
  std::uint32_t maxDatagramsPerSecondPerIp = 1000;  // 0 = unlimited
  std::size_t maxTrackedSources = 65536;            // the rate table's bound
};

class EchoDatagramProtocol : public DatagramProtocol {
 public:
  EchoDatagramProtocol() : EchoDatagramProtocol(EchoDatagramLimits{}) {}
  explicit EchoDatagramProtocol(const EchoDatagramLimits& limits)
      : rate_(limits.maxDatagramsPerSecondPerIp, limits.maxTrackedSources) {}

  /// The source ports whose datagrams are never answered.
  static bool isLoopPort(std::uint16_t port) { return port == 7 || port == 13 || port == 17 || port == 19 || port == 0; }

  void datagramReceived(std::string_view data, const Address& from) override {
    if (isLoopPort(from.port)) {
      transport().countDropped("loop_source_port");
      return;
    }
    if (rate_.enabled() && !rate_.allow(from.host, transport().reactor().now())) {
      transport().countDropped("rate_limited");
      return;
    }
    transport().sendTo(data, from);
  }

  const SourceRateLimit& rateLimit() const { return rate_; }

 private:
  SourceRateLimit rate_;
};

}  // namespace protohost::plugins::echo
