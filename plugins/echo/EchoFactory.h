#pragma once
// echo's factory: RFC 862 over TCP (EchoProtocol) and, on a udp: listener,
// over UDP (EchoDatagramProtocol) with its abuse limits from the listener's keys.

#include <memory>

#include "EchoDatagramProtocol.h"
#include "EchoProtocol.h"
#include "protohost/Factory.h"

namespace protohost::plugins::echo {

class EchoFactory : public Factory {
 public:
  /// max_datagrams_per_s_per_ip (default 1000, 0 = unlimited) and
  /// max_tracked_sources (default 65536): used by udp: listeners only.
  void configure(const ConfigView& config) override {
    limits_.maxDatagramsPerSecondPerIp =
        static_cast<std::uint32_t>(config.getInt("max_datagrams_per_s_per_ip", 1000, 0, 10'000'000));
    limits_.maxTrackedSources = static_cast<std::size_t>(config.getInt("max_tracked_sources", 65536, 1, 10'000'000));
  }
  std::unique_ptr<Protocol> buildProtocol() override { return std::make_unique<EchoProtocol>(); }
  std::unique_ptr<DatagramProtocol> buildDatagramProtocol() override {
    return std::make_unique<EchoDatagramProtocol>(limits_);
  }

 private:
  EchoDatagramLimits limits_;
};

}  // namespace protohost::plugins::echo
