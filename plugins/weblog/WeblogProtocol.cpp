#include "WeblogProtocol.h"

#include <string>
#include <utility>

#include "HitFormatter.h"
#include "protohost/Logger.h"

namespace protohost::plugins::weblog {

WeblogProtocol::WeblogProtocol(HitHub& hub, const WeblogSettings& settings)
    : hub_(hub),
      mode_(settings.mode),
      pushInterval_(settings.pushInterval),
      maxBacklog_(settings.maxClientBacklogBytes) {}

WeblogProtocol::~WeblogProtocol() {
  // The host always calls connectionLost first; this covers a protocol that was
  // built but never connected, or a test that dropped it.
  if (id_) hub_.unsubscribe(std::exchange(id_, 0));
  if (mailbox_) mailbox_->owner = nullptr;
}

void WeblogProtocol::connectionMade() {
  transport().write(kStreamStart);
  if (mode_ == Mode::Poll) {
    id_ = hub_.subscribe();
    return;
  }
  mailbox_ = std::make_shared<Mailbox>();
  mailbox_->owner = this;
  Reactor* reactor = &transport().reactor();
  // Runs on the factory's thread with the hub locked, while this protocol is
  // subscribed (so its connection, and the reactor facade, are alive).
  auto wake = [reactor, mailbox = mailbox_] {
    reactor->post([mailbox] {
      if (mailbox->owner) mailbox->owner->deliver(false);
    });
  };
  const std::size_t wakeAt = pushInterval_.count() == 0 ? 1 : maxBacklog_ / 2;
  id_ = hub_.subscribe(std::move(wake), wakeAt);
  if (pushInterval_.count() > 0)
    timer_ = transport().reactor().callEvery(pushInterval_, [this] { deliver(false); });
}

void WeblogProtocol::dataReceived(std::string_view data) {
  if (mode_ == Mode::Push) return;  // the push client sends nothing; whatever comes is ignored
  const auto r = framer_.feed(data);
  for (std::size_t i = 0; i < r.requests && !transport().isClosing(); ++i) deliver(true);
  if (r.garbage && !transport().isClosing()) {
    transport().logger().warning("unexpected bytes from a poll-mode client (expected \"NEW?\"); closing");
    leave();
    transport().loseConnection();
  }
}

void WeblogProtocol::readEnded() {
  // Push: a client that shut down its sending side still reads; keep streaming.
  if (mode_ == Mode::Push) return;
  transport().loseConnection();  // poll: no more requests can come
}

void WeblogProtocol::stopRequested() {
  if (mode_ == Mode::Push) deliver(false, true);  // hand out what is pending, then close
  leave();
  transport().loseConnection();
}

void WeblogProtocol::connectionLost(const DisconnectReason& reason) {
  (void)reason;
  leave();
}

void WeblogProtocol::deliver(bool answer, bool final) {
  if (id_ == 0 || transport().isClosing()) return;
  const std::size_t pending = transport().pendingBytes();
  if (pending > maxBacklog_) {  // e.g. a poll client that keeps asking and never reads
    disconnectSlow(overBound(pending, 0));
    return;
  }
  if (mode_ == Mode::Push && hub_.isCut(id_)) {
    disconnectSlow("it held the log tailer back for " + std::to_string(kLaggardTimeout.count()) + " ms with " +
                   std::to_string(pending) + " bytes unsent");
    return;
  }
  if (mode_ == Mode::Push && !final && pending > maxBacklog_ / 4) {
    // The peer has not taken what it was given: take new hits only once it
    // has, so that a burst waits in the log (the hub paces the tailer by this
    // client) instead of piling up here.
    transport().whenDrained(maxBacklog_ / 4, [this] { deliver(false); });
    return;
  }
  const std::size_t budget = pending < maxBacklog_ ? maxBacklog_ - pending : 0;
  HitHub::Batch batch = hub_.pull(id_, budget);
  if (batch.status == HitHub::PullStatus::TooFarBehind) {
    disconnectSlow(overBound(pending, batch.bytes));
    return;
  }
  if (batch.hits.empty()) {
    if (answer) transport().write(kNoHits);
    return;
  }
  std::string out;
  out.reserve(batch.bytes);
  for (const auto& hit : batch.hits) out += *hit;
  transport().write(out);
}

std::string WeblogProtocol::overBound(std::size_t pending, std::size_t unread) const {
  return std::to_string(pending) + " bytes unsent + " + std::to_string(unread) +
         " bytes of new hits exceed max_client_backlog_bytes=" + std::to_string(maxBacklog_);
}

void WeblogProtocol::disconnectSlow(const std::string& why) {
  hub_.noteSlowClient();
  transport().logger().warning("client is not keeping up: " + why + "; disconnecting");
  leave();
  transport().abortConnection();
}

void WeblogProtocol::leave() {
  if (timer_) transport().reactor().cancel(std::exchange(timer_, 0));
  if (id_) hub_.unsubscribe(std::exchange(id_, 0));
  if (mailbox_) mailbox_->owner = nullptr;
}

}  // namespace protohost::plugins::weblog
