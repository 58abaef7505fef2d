#pragma once
// The PROXY protocol header (v1/v2, ProxyHeader.h) as a PreStage, for a
// listener with proxy_protocol = required: the header's addresses replace the
// socket's, and a malformed, missing or late header closes the connection,
// counted in protohost_proxy_header_errors_total and logged at most once a
// second per listener (a scanner must not flood the log).

#include <memory>
#include <string>

#include "base/ListenerStats.h"
#include "net/PreStage.h"
#include "net/ProxyHeader.h"
#include "protohost/Logger.h"

namespace protohost::host {

class ProxyStage final : public PreStage {
 public:
  /// @p stats and @p log (the connection's) must outlive the stage;
  /// @p socketPeer is the socket's peer, named in the debug line.
  ProxyStage(ListenerStats& stats, Logger& log, int timeoutMs, Address socketPeer);

  const char* name() const override { return "PROXY header"; }
  std::chrono::milliseconds deadline() const override { return std::chrono::milliseconds(timeoutMs_); }
  Outcome feed(std::string_view data) override;
  DisconnectReason endedEarly(DisconnectReason::Kind kind) override;
  std::optional<Address> peer() const override { return peer_; }
  std::optional<Address> local() const override { return local_; }

 private:
  /// Counts and logs (rate-limited) a failure; returns it as the close reason.
  DisconnectReason failed(DisconnectReason::Kind kind, std::string why);

  ListenerStats& stats_;
  Logger& log_;
  const int timeoutMs_;
  const Address socketPeer_;
  ProxyHeaderParser parser_;
  std::optional<Address> peer_;
  std::optional<Address> local_;
};

}  // namespace protohost::host
