#include "net/ProxyStage.h"

#include <chrono>
#include <utility>

#include "base/Log.h"

namespace protohost::host {

ProxyStage::ProxyStage(ListenerStats& stats, Logger& log, int timeoutMs, Address socketPeer)
    : stats_(stats), log_(log), timeoutMs_(timeoutMs), socketPeer_(std::move(socketPeer)) {}

PreStage::Outcome ProxyStage::feed(std::string_view data) {
  const ProxyHeaderParser::Result r = parser_.feed(data);
  if (r.status == ProxyHeaderParser::Status::NeedMore) return {};
  if (r.status == ProxyHeaderParser::Status::Error)
    return {Step::Failed, 0, failed(DisconnectReason::Kind::Error, "invalid PROXY header: " + parser_.error())};
  const ProxyHeader& h = parser_.header();
  if (h.hasAddresses) {
    peer_ = Address{h.source.address, h.source.port};
    local_ = Address{h.destination.address, h.destination.port};
  }
  if (Log::instance().enabled(LogLevel::Debug))
    log_.log(LogLevel::Debug, "PROXY v" + std::to_string(h.version) + " header from " + socketPeer_.toString() +
                                  (h.hasAddresses ? "" : h.local ? " (LOCAL: real endpoints)" : " (no addresses: real endpoints)"));
  return {Step::Done, r.consumed, {}};
}

DisconnectReason ProxyStage::endedEarly(DisconnectReason::Kind kind) {
  if (kind == DisconnectReason::Kind::Timeout)
    return failed(kind, "no complete PROXY header within proxy_protocol_timeout_ms = " + std::to_string(timeoutMs_));
  return failed(kind, "peer closed after " + std::to_string(parser_.bytesSeen()) + " bytes of a PROXY header");
}

DisconnectReason ProxyStage::failed(DisconnectReason::Kind kind, std::string why) {
  stats_.proxyHeaderErrors.fetch_add(1, std::memory_order_relaxed);
  // At most one line per second per listener at info level; every one shows
  // at debug level as the connection's "closed: WHY".
  const std::int64_t nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t last = stats_.lastProxyErrorLogMs.load(std::memory_order_relaxed);
  if (nowMs - last >= 1000 && stats_.lastProxyErrorLogMs.compare_exchange_strong(last, nowMs))
    log_.log(LogLevel::Info, why + "; closing (protohost_proxy_header_errors_total counts every one)");
  return DisconnectReason{kind, std::move(why)};
}

}  // namespace protohost::host
