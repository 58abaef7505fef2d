#pragma once
// One weblog client. Writes "<hits>" on connect, then <hit/> elements:
// - push mode: every push_interval_ms (its own repeating timer), or as soon as
//   the factory publishes when push_interval_ms = 0 (the hub wakes it through a
//   post() to this connection's reactor); also early when its unread hits reach
//   half of max_client_backlog_bytes, so a burst never outgrows the bound;
// - poll mode: one answer per "NEW?" request: the new hits, or <none/>.
// Input is ignored in push mode; in poll mode bytes other than requests and
// whitespace close the connection (after the answers to earlier requests).
// A push client takes new hits only while its unsent output is under a quarter
// of max_client_backlog_bytes (Transport::whenDrained brings it back), so the
// tailer runs at the pace of the clients that read. A client whose unsent
// output plus unread hits would pass max_client_backlog_bytes is disconnected
// (abortConnection) and counted, and so is one the factory gives up on
// because it held the tailer back for kLaggardTimeout.
//
// Threading: every method runs on this connection's reactor thread. The hub
// calls the wake function on the factory's thread, under its lock; it only
// posts. The posted callback reaches this object through a Mailbox that
// connectionLost clears, so it never touches a protocol that has left.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "HitHub.h"
#include "PollRequestFramer.h"
#include "WeblogSettings.h"
#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost::plugins::weblog {

class WeblogProtocol final : public Protocol {
 public:
  WeblogProtocol(HitHub& hub, const WeblogSettings& settings);
  ~WeblogProtocol() override;

  void connectionMade() override;
  void dataReceived(std::string_view data) override;
  void readEnded() override;
  void stopRequested() override;
  void connectionLost(const DisconnectReason& reason) override;

 private:
  struct Mailbox {
    WeblogProtocol* owner = nullptr;  // touched on the connection's thread only
  };

  /// Sends what this client has not seen; @p answer: a poll request wants <none/> if nothing is new.
  /// @p final: the connection is closing, so take the hits now even if the peer is behind.
  void deliver(bool answer, bool final = false);
  /// Counts, logs "client is not keeping up: WHY; disconnecting", leaves the hub and aborts.
  void disconnectSlow(const std::string& why);
  /// The reason for a client whose unsent output plus unread hits pass the bound.
  std::string overBound(std::size_t pending, std::size_t unread) const;
  /// Cancels the timer, leaves the hub and detaches the mailbox. Idempotent.
  void leave();

  HitHub& hub_;
  const Mode mode_;
  const std::chrono::milliseconds pushInterval_;
  const std::size_t maxBacklog_;
  HitHub::SubscriberId id_ = 0;
  TimerId timer_ = 0;
  std::shared_ptr<Mailbox> mailbox_;
  PollRequestFramer framer_;
};

}  // namespace protohost::plugins::weblog
