#include "net/Connection.h"

#include <sys/epoll.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "reactor/EventLoop.h"
#include "net/ConnectionSet.h"
#include "net/ProxyStage.h"
#include "base/Log.h"
#include "base/PluginCall.h"

namespace protohost::host {
namespace {

Address toAddress(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
    return {buf, ntohs(a.sin_port)};
  }
  if (ss.ss_family == AF_INET6) {
    auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    return {buf, ntohs(a.sin6_port)};
  }
  return {"?", 0};
}

Address localSocketAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {"?", 0};
  return toAddress(ss);
}

// Reads per readable event before yielding to other connections (fairness).
constexpr int kMaxReadsPerEvent = 4;

}  // namespace

Connection::Connection(ConnectionSet& set, std::shared_ptr<ConnectionOwner> listener,
                       std::unique_ptr<SocketLayer> socket, std::string ip, const sockaddr_storage& peer)
    : set_(set),
      loop_(set.loop()),
      listener_(std::move(listener)),
      socket_(std::move(socket)),
      ip_(std::move(ip)),
      lastActivity_(std::chrono::steady_clock::now()),
      tracksActivity_(listener_->limits.idleTimeoutMs > 0) {
  static_assert(sizeof(sockaddr_in6) >= sizeof(sockaddr_in));
  reactorFacade_.setOutboundProvider(listener_.get());
  std::memcpy(&peer_, &peer, peer.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
}

Connection::Connection(ConnectionSet& set, std::shared_ptr<ConnectionOwner> listener,
                       std::unique_ptr<SocketLayer> socket, const sockaddr_storage& peer,
                       std::unique_ptr<Protocol> protocol, std::string target, std::uint32_t registered)
    : set_(set),
      loop_(set.loop()),
      listener_(std::move(listener)),
      socket_(std::move(socket)),
      protocol_(std::move(protocol)),
      outTarget_(std::move(target)),
      tracksActivity_(false) {
  reactorFacade_.setOutboundProvider(listener_.get());
  std::memcpy(&peer_, &peer, peer.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  listener_->outboundHolders.fetch_add(1, std::memory_order_relaxed);
  listener_->stats.outbound.active.fetch_add(1, std::memory_order_relaxed);
  if (registered != 0) {
    // Still in the epoll set with the connector's handler: one MOD takes it
    // over (instead of the connector's DEL and an ADD here).
    loop_.ioUpdate(socket_->fd(), this, registered, EPOLLIN | EPOLLRDHUP);
    registered_ = EPOLLIN | EPOLLRDHUP;
  }
}

Connection::~Connection() {
  if (!outTarget_.empty()) listener_->outboundHolders.fetch_sub(1, std::memory_order_relaxed);
  // Normally finished already (unregistered, closed); this covers a connection
  // dropped before open(). The socket layer closes the fd.
  if (socket_->fd() >= 0) loop_.ioUpdate(socket_->fd(), this, registered_, 0);
}

void Connection::onIoEvent(std::uint32_t events) {
  if (finished_) return;
  // No keep-alive reference needed: a connection that closes during this call
  // is released through EventLoop::runSoon, after the dispatch round.
  if (events == EPOLLIN) {  // the common case, kept to a test and a tail call
    if (registered_ & EPOLLIN) onReadable();
    return;
  }
  onOtherIoEvent(events);
}

void Connection::onOtherIoEvent(std::uint32_t events) {
  if ((events & EPOLLERR) && !(events & EPOLLIN)) {
    onError();
    return;
  }
  if (handshaking()) {  // TLS: the handshake reads and writes as it needs
    driveHandshake();
    return;
  }
  // A TLS read may wait for writability, and a TLS write for readability.
  const bool readable = events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP), writable = events & (EPOLLOUT | EPOLLERR | EPOLLHUP);
  if ((readable || (writable && socket_->readNeedsWritable())) && (registered_ & EPOLLIN)) onReadable();
  if ((writable || (readable && socket_->writeNeedsReadable())) && !finished_ && (registered_ & EPOLLOUT)) onWritable();
}

std::string Connection::context() const {
  if (!outTarget_.empty()) return "listener=" + listener_->name + " out=" + outTarget_;
  return "listener=" + listener_->name + " peer=" + peerAddress().toString();
}

Address Connection::peerAddress() const {
  if (stagePeer_) return *stagePeer_;
  sockaddr_storage ss{};
  std::memcpy(&ss, &peer_, sizeof peer_);
  return toAddress(ss);
}
Address Connection::localAddress() const { return stageLocal_ ? *stageLocal_ : localSocketAddress(socket_->fd()); }

bool Connection::open() {
  opened_ = true;
  if (listener_->limits.proxyProtocol && outTarget_.empty())
    stage_ = std::make_unique<ProxyStage>(listener_->stats, logger_, listener_->limits.proxyProtocolTimeoutMs,
                                          peerAddress());
  if (!stage_) {
    if (socket_->handshakePending()) return startHandshake();
    return startProtocol();
  }
  // The stage comes first: no plugin code (not even buildProtocol) runs
  // before it is done.
  stageTimer_ = loop_.callLater(stage_->deadline(), [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self || self->finished_ || !self->stage_) return;
    self->stageTimer_ = 0;
    self->finish(self->stage_->endedEarly(DisconnectReason::Kind::Timeout));
  });
  updateInterest();
  return true;
}

bool Connection::takeStageInput(std::string_view& data) {
  const PreStage::Outcome r = stage_->feed(data);
  if (r.step == PreStage::Step::NeedMore) return false;
  if (r.step == PreStage::Step::Failed) {
    finish(r.failure);  // no plugin code has run
    return false;
  }
  stagePeer_ = stage_->peer();
  stageLocal_ = stage_->local();
  stage_.reset();
  if (stageTimer_) loop_.cancel(std::exchange(stageTimer_, 0));
  data.remove_prefix(r.consumed);
  if (socket_->handshakePending()) {
    // TLS after the PROXY header: what followed the header is the ClientHello's start.
    socket_->prependInput(data);
    startHandshake();
    if (!finished_) driveHandshake();
    return false;
  }
  if (!startProtocol() || data.empty() || closing_) return false;
  if (pausedByProtocol_) {
    heldInput_.assign(data);  // delivered by settle() once reading resumes
    return false;
  }
  return true;
}

bool Connection::startHandshake() {
  const int timeout = listener_->limits.tlsHandshakeTimeoutMs;
  handshakeTimer_ = loop_.callLater(std::chrono::milliseconds(timeout), [weak = weak_from_this(), timeout] {
    auto self = weak.lock();
    if (!self || self->finished_ || !self->socket_->handshakePending()) return;
    self->handshakeTimer_ = 0;
    self->handshakeEnded(TlsHandshakeResult::Timeout,
                         DisconnectReason{DisconnectReason::Kind::Timeout,
                                          "TLS handshake not complete after " + std::to_string(timeout) + " ms"});
  });
  if (!outTarget_.empty()) {  // a client speaks first: the ClientHello goes out now
    driveHandshake();
    return !finished_;
  }
  updateInterest();
  return true;
}

void Connection::driveHandshake() {
  if (finished_) return;
  switch (socket_->handshake()) {
    case SocketLayer::Handshake::InProgress:
      updateInterest();
      return;
    case SocketLayer::Handshake::Closed:
      handshakeEnded(TlsHandshakeResult::Closed,
                     DisconnectReason{DisconnectReason::Kind::ClosedByPeer, "peer closed during the TLS handshake"});
      return;
    case SocketLayer::Handshake::Failed:
      handshakeEnded(TlsHandshakeResult::Failed,
                     DisconnectReason{DisconnectReason::Kind::Error, "TLS handshake failed: " + socket_->failure()});
      return;
    case SocketLayer::Handshake::Done:
      break;
  }
  handshakeEnded(TlsHandshakeResult::Ok, {});
  if (!startProtocol()) return;
  // The client's first bytes may have come with its last handshake flight,
  // already read off the socket: read now rather than wait for an EPOLLIN.
  if (wantsInput()) onReadable();
}

void Connection::handshakeEnded(TlsHandshakeResult result, DisconnectReason reason) {
  if (handshakeTimer_) loop_.cancel(std::exchange(handshakeTimer_, 0));
  if (!outTarget_.empty()) {  // outbound: the connect's own report, not the listener's handshake counters
    auto failed = std::exchange(handshakeFailed_, nullptr);
    if (result == TlsHandshakeResult::Ok) return;
    protocol_.reset();  // never started: no hook runs, as for a connect that failed
    finish(reason);
    if (failed) failed(reason.detail);
    return;
  }
  listener_->stats.countTlsHandshake(result);
  if (result == TlsHandshakeResult::Ok) {
    if (socket_->kernelSend()) listener_->stats.ktlsSend.fetch_add(1, std::memory_order_relaxed);
    if (socket_->kernelReceive()) listener_->stats.ktlsReceive.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // One line a second per listener, as for PROXY headers: a scan must not flood the log.
  if (listener_->stats.tlsErrorLogDue())
    logger_.log(LogLevel::Warning, reason.detail + " (" + std::to_string(listener_->stats.tlsHandshakeFailures()) +
                                       " TLS handshakes failed on this listener so far)");
  finish(std::move(reason));  // no plugin code has run
}

bool Connection::startProtocol() {
  if (!protocol_) {  // an outbound connection came with its protocol
    ++depth_;
    if (auto failure = invokePluginCode(loop_, listener_.get(), [&] { protocol_ = listener_->buildProtocol(); }))
      pluginFailed("buildProtocol", *failure);
    --depth_;
  }
  if (!protocol_) {
    if (!pendingFinish_) pendingFinish_ = DisconnectReason{DisconnectReason::Kind::ClosedLocally, "factory refused the connection"};
    finish(*pendingFinish_);
    return false;
  }
  protocol_->attachTransport(this);
  updateInterest();
  dirty_ = true;  // settle after connectionMade whatever it did
  callPlugin("connectionMade", [&] { protocol_->connectionMade(); });
  return !finished_;
}

template <class F>
[[gnu::always_inline]] inline void Connection::callPlugin(const char* hook, F&& fn) {
  ++depth_;
  if (auto failure = invokePluginCode(loop_, listener_.get(), std::forward<F>(fn))) pluginFailed(hook, *failure);
  --depth_;
  if (depth_ == 0 && dirty_) settle();
}

void Connection::pluginFailed(const char* hook, const std::string& what) {
  listener_->stats.pluginErrors.fetch_add(1, std::memory_order_relaxed);
  logger_.log(LogLevel::Error, "plugin " + listener_->pluginName + " " + hook + " threw: " + what +
                                   "; closing this connection");
  if (!finished_) {
    closing_ = true;
    dirty_ = true;
    out_.release();  // do not send half of a failed response
    if (!pendingFinish_) pendingFinish_ = DisconnectReason{DisconnectReason::Kind::PluginError, what};
  }
}

void Connection::onReadable() {
  // A whenReadingResumed request that is ready fires before the next read (a
  // line protocol holds lines until it runs): settle() drops the interest soon.
  if (resumed_) return;
  if (handshaking()) {  // TLS: no protocol input before the handshake is done
    driveHandshake();
    return;
  }
  if (readOnce()) readMore();
}

inline bool Connection::readOnce() {
  char* buf = loop_.readBuffer();
  const ssize_t n = socket_->read(buf, EventLoop::kReadBufferSize);
  if (n <= 0) {
    readFailed(n < 0 ? errno : 0);
    return false;
  }
  if (tracksActivity_) lastActivity_ = std::chrono::steady_clock::now();
  listener_->stats.bytesIn.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
  const std::string_view data(buf, static_cast<std::size_t>(n));
  if (stage_) receivedBeforeProtocol(data);
  else callPlugin("dataReceived", [this, data] { protocol_->dataReceived(data); });
  return static_cast<std::size_t>(n) == EventLoop::kReadBufferSize || socket_->hasBufferedInput();
}

void Connection::readMore() {
  for (int i = 1; i < kMaxReadsPerEvent; ++i) {
    if (!wantsInput() || socket_->handshakePending()) return;  // TLS began after a PROXY header: handshake() reads now
    if (!readOnce()) return;
  }
  readBufferedSoon();  // TLS: what is left decrypted inside the layer, after the other connections' turn
}

std::string Connection::failureText(int err) const {
  std::string why = socket_->failure();  // TLS: OpenSSL's reason
  if (!why.empty()) return why;
  return err ? std::strerror(err) : "send returned 0";
}

void Connection::readBufferedSoon() {
  if (readScheduled_ || finished_ || !socket_->hasBufferedInput()) return;
  readScheduled_ = true;
  loop_.runSoon([weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->readScheduled_ = false;
    if (self->wantsInput()) self->onReadable();
  });
}

void Connection::receivedBeforeProtocol(std::string_view data) {
  if (takeStageInput(data)) callPlugin("dataReceived", [&] { protocol_->dataReceived(data); });
}

void Connection::readFailed(int err) {
  // Nothing to read (or a signal): level-triggered epoll reports the socket again.
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return;
  if (err != 0) {
    finish(DisconnectReason{DisconnectReason::Kind::Error, failureText(err)});
    return;
  }
  eof_ = true;
  if (stage_) {
    finish(stage_->endedEarly(DisconnectReason::Kind::ClosedByPeer));
    return;
  }
  // Reading ends; the interest follows in the settle() after the hook, so that
  // a protocol that closes at its EOF (the usual case) costs no EPOLL_CTL_DEL:
  // finish() closes the fd, which leaves the epoll set by itself.
  dirty_ = true;
  callPlugin("readEnded", [&] { protocol_->readEnded(); });
}

void Connection::onWritable() {
  if (flush()) settle();
  else if (pendingFinish_) finish(*pendingFinish_);
}

void Connection::onError() {
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(socket_->fd(), SOL_SOCKET, SO_ERROR, &err, &len);
  finish(DisconnectReason{DisconnectReason::Kind::Error, err ? std::strerror(err) : "socket error"});
}

bool Connection::flush() {
  while (!out_.empty()) {
    std::string_view chunk = out_.front();
    const ssize_t n = socket_->write(chunk.data(), chunk.size());
    if (n > 0) {
      if (tracksActivity_) lastActivity_ = std::chrono::steady_clock::now();
      listener_->stats.bytesOut.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      out_.consume(static_cast<std::size_t>(n));
      continue;
    }
    const int err = n < 0 ? errno : 0;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return true;
    out_.release();
    if (!pendingFinish_) pendingFinish_ = DisconnectReason{DisconnectReason::Kind::Error, failureText(err)};
    closing_ = true;
    return false;
  }
  return true;
}

void Connection::write(std::string_view bytes) {
  // The fast path, taken by every reply that the socket accepts whole: one
  // send, a counter, no copy, nothing left for settle() to do. (finish()
  // sets closing_ too; an empty write sends 0 bytes, which changes nothing.)
  if (out_.empty() && !closing_ && !writeShut_) {
    const ssize_t n = socket_->write(bytes.data(), bytes.size());
    if (n == static_cast<ssize_t>(bytes.size())) {
      if (tracksActivity_) lastActivity_ = std::chrono::steady_clock::now();  // output progress
      listener_->stats.bytesOut.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      return;
    }
    writeRest(bytes, n, n < 0 ? errno : 0);
    return;
  }
  writeRest(bytes, 0, 0);
}

void Connection::writeRest(std::string_view bytes, ssize_t sent, int err) {
  if (closing_ || finished_ || writeShut_) return;
  if (sent > 0) {
    if (tracksActivity_) lastActivity_ = std::chrono::steady_clock::now();
    listener_->stats.bytesOut.fetch_add(static_cast<std::uint64_t>(sent), std::memory_order_relaxed);
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  } else if (sent < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
    // Also for an empty write: a send of 0 bytes reports (and clears) a pending socket error.
    requestFinish(DisconnectReason{DisconnectReason::Kind::Error, std::strerror(err)});
    return;
  }
  if (bytes.empty()) return;
  out_.append(bytes);
  if (out_.size() > listener_->limits.maxOutputBytes) {
    out_.release();
    requestFinish(DisconnectReason{DisconnectReason::Kind::Overflow,
                                   "unsent output exceeded " + std::to_string(listener_->limits.maxOutputBytes) + " bytes"});
    return;
  }
  settleSoon();
}

void Connection::writeSequence(std::span<const std::string_view> pieces) {
  if (!out_.empty() || closing_ || writeShut_) {
    for (std::string_view piece : pieces) writeRest(piece, 0, 0);
    return;
  }
  // Up to kMaxIov pieces per sendmsg; a longer sequence sends its head and queues the rest.
  constexpr std::size_t kMaxIov = 64;
  iovec iov[kMaxIov];
  std::size_t count = 0, total = 0;
  for (; count < pieces.size() && count < kMaxIov; ++count) {
    iov[count].iov_base = const_cast<char*>(pieces[count].data());
    iov[count].iov_len = pieces[count].size();
    total += pieces[count].size();
  }
  const ssize_t n = total ? socket_->writev(iov, static_cast<int>(count)) : 0;
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    writeRest({}, n, errno);  // closes with the error
    return;
  }
  std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
  if (sent > 0) {
    if (tracksActivity_) lastActivity_ = std::chrono::steady_clock::now();
    listener_->stats.bytesOut.fetch_add(sent, std::memory_order_relaxed);
  }
  for (std::string_view piece : pieces) {  // queue what the kernel did not take, in order
    const std::size_t skip = std::min(sent, piece.size());
    sent -= skip;
    if (skip < piece.size()) writeRest(piece.substr(skip), 0, 0);
  }
}

void Connection::shutdownWrite() {
  if (closing_ || finished_ || writeShut_) return;
  writeShut_ = true;
  settleSoon();  // FIN from settle() once the queue is empty
}

ConnectionHandle Connection::handle() {
  if (!anchor_) {
    // Runs on the loop thread for each call posted through a handle copy.
    auto deliver = [weak = weak_from_this()](LoopHandleAnchor::Call& call) {
      auto self = weak.lock();
      if (!self || self->finished_) return;
      self->callPlugin("handle post", [&] { call(self.get()); });
    };
    anchor_ = std::make_shared<LoopHandleAnchor>(loop_.gate(), listener_, std::move(deliver));
    if (finished_) anchor_->end();
  }
  return ConnectionHandle(anchor_);
}

void Connection::loseConnection() {
  if (closing_ || finished_) return;
  closing_ = true;
  settleSoon();
}

void Connection::abortConnection() {
  if (finished_) return;
  closing_ = true;
  resetOnClose_ = true;
  out_.release();
  requestFinish(DisconnectReason{DisconnectReason::Kind::ClosedLocally, "aborted"});
}

void Connection::whenDrained(std::size_t bytes, std::function<void()> fn) {
  if (finished_) return;
  drainedAt_ = bytes;
  drained_ = std::move(fn);
  if (drained_) settleSoon();  // fires from settle(), never inside this call
}

void Connection::whenReadingResumed(std::function<void()> fn) {
  if (finished_) return;
  resumed_ = std::move(fn);
  if (resumed_) settleSoon();  // fires from settle(), never inside this call
}

bool Connection::readingPaused() const {
  return pausedByProtocol_ || pausedByBackpressure_ || out_.size() > listener_->limits.pauseReadingAbove;
}

void Connection::pauseReading() {
  if (pausedByProtocol_) return;
  pausedByProtocol_ = true;
  settleSoon();
}

void Connection::resumeReading() {
  if (!pausedByProtocol_) return;
  pausedByProtocol_ = false;
  settleSoon();
}

void Connection::requestFinish(DisconnectReason reason) {
  closing_ = true;
  if (!pendingFinish_) pendingFinish_ = std::move(reason);
  settleSoon();
}

void Connection::settleSoon() {
  dirty_ = true;
  if (depth_ > 0 || !opened_) return;  // the running call settles on return
  if (settleScheduled_) return;
  settleScheduled_ = true;
  // Not inline: the caller may be another protocol iterating its own lists.
  loop_.runSoon([weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->settleScheduled_ = false;
      self->settle();
    }
  });
}

void Connection::settle() {
  dirty_ = false;
  if (finished_) return;
  if (pendingFinish_) {
    finish(*pendingFinish_);
    return;
  }
  if (!out_.empty() && !flush()) {
    finish(*pendingFinish_);
    return;
  }
  if (writeShut_ && !finSent_ && out_.empty() && !closing_) {
    finSent_ = true;
    if (socket_->shutdownWrite() != 0) {
      finish(DisconnectReason{DisconnectReason::Kind::Error, std::strerror(errno)});
      return;
    }
  }
  if (closing_ && out_.empty()) {
    finish(DisconnectReason{eof_ ? DisconnectReason::Kind::ClosedByPeer : DisconnectReason::Kind::ClosedLocally,
                            eof_ ? "peer closed" : "closed by protocol"},
           true);
    return;
  }
  if (!heldInput_.empty() && !pausedByProtocol_ && !closing_) {
    // Bytes that came with the PROXY header while connectionMade paused reading.
    std::string held = std::exchange(heldInput_, {});
    dirty_ = true;  // settle again on return: interest, drain and back-pressure are still to do
    callPlugin("dataReceived", [&] { protocol_->dataReceived(held); });
    return;
  }
  const auto& limits = listener_->limits;
  if (!pausedByBackpressure_ && out_.size() > limits.pauseReadingAbove) pausedByBackpressure_ = true;
  else if (pausedByBackpressure_ && out_.size() <= limits.pauseReadingAbove / 2) pausedByBackpressure_ = false;
  if (!requestCheckScheduled_ && (drainedReady() || resumedReady())) {
    // Through the loop, not inline: a protocol that writes its next piece from
    // the callback and asks again would otherwise recurse once per piece. A
    // request is taken only when the check runs, so a cancel or a replacement
    // made meanwhile wins, and the output and the pause are looked at again.
    requestCheckScheduled_ = true;
    loop_.runSoon([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->fireRequests();
    });
  }
  // Reading resumed: epoll does not see TLS's buffered input (a field read first: plaintext never has any).
  if (socket_->hasBufferedInput() && wantsInput()) readBufferedSoon();
  updateInterest();
}

void Connection::fireRequests() {
  requestCheckScheduled_ = false;
  if (finished_) return;
  if (drainedReady()) {
    auto fn = std::exchange(drained_, nullptr);
    callPlugin("whenDrained", fn);
  }
  if (!finished_ && resumedReady()) {
    auto fn = std::exchange(resumed_, nullptr);
    // No read while the request waited (wantsInput): settle after the callback
    // re-arms reading even when the callback changes nothing else (its writes
    // all sent at once), or the connection would never read again.
    dirty_ = true;
    callPlugin("whenReadingResumed", fn);
  }
}

void Connection::updateInterest() {
  bool wantRead = wantsInput();
  bool wantWrite = !finished_ && !out_.empty();
  // TLS: a read that waits for writability, a write that waits for readability.
  if (wantRead && socket_->readNeedsWritable()) wantWrite = true;
  if (wantWrite && socket_->writeNeedsReadable()) wantRead = true;
  // Writable interest only while output is pending: a level-triggered EPOLLOUT
  // left armed on an idle socket spins the loop (the shape of Poco bug #2966).
  std::uint32_t want = (wantRead ? EPOLLIN | EPOLLRDHUP : 0u) | (wantWrite ? EPOLLOUT : 0u);
  if (want == registered_) return;  // the common case: no epoll_ctl, no call
  loop_.ioUpdate(socket_->fd(), this, registered_, want);
  registered_ = want;
}

void Connection::finish(DisconnectReason reason, bool graceful) {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  if (anchor_) anchor_->end();
  reactorFacade_.cancelAll();
  drained_ = nullptr;
  resumed_ = nullptr;
  if (stageTimer_) loop_.cancel(std::exchange(stageTimer_, 0));
  if (handshakeTimer_) loop_.cancel(std::exchange(handshakeTimer_, 0));
  stage_.reset();
  heldInput_.clear();
  out_.release();
  // After EOF nothing is left unread, so a plain close sends FIN. Otherwise a
  // graceful close lingers, so that unread input cannot turn it into an RST.
  if (graceful && !eof_) {
    updateInterest();  // unregistered: the lingering close registers the fd with its own handler
    set_.lingerClose(socket_->release());
  } else {
    // No EPOLL_CTL_DEL: close() takes the fd out of the epoll set, and an
    // event still in this round's batch finds finished_ set. An abort closes
    // with an RST, as the SDK's abortConnection promises.
    registered_ = 0;
    socket_->close(resetOnClose_);
  }
  if (protocol_) {
    ++depth_;
    if (auto failure = invokePluginCode(loop_, listener_.get(), [&] { protocol_->connectionLost(reason); }))
      pluginFailed("connectionLost", *failure);
    --depth_;
  }
  if (outTarget_.empty()) {
    listener_->stats.closed[static_cast<std::size_t>(reason.kind)].fetch_add(1, std::memory_order_relaxed);
    listener_->release(ip_);
  } else {
    listener_->stats.outbound.closed[static_cast<std::size_t>(reason.kind)].fetch_add(1, std::memory_order_relaxed);
    listener_->stats.outbound.active.fetch_sub(1, std::memory_order_relaxed);
  }
  if (Log::instance().enabled(LogLevel::Debug))
    logger_.log(LogLevel::Debug, "closed: " + reason.detail);
  set_.removeSoon(this);
}

void Connection::requestStop() {
  if (!finished_ && handshaking()) {
    finish(DisconnectReason{DisconnectReason::Kind::Shutdown, "stopping before the TLS handshake was complete"});
    return;
  }
  if (!finished_ && stage_) {
    finish(DisconnectReason{DisconnectReason::Kind::Shutdown,
                            std::string("stopping before the ") + stage_->name() + " was complete"});
    return;
  }
  if (finished_ || !protocol_) return;
  callPlugin("stopRequested", [&] { protocol_->stopRequested(); });
}

bool Connection::closeIfIdle(std::chrono::steady_clock::time_point now) {
  const int timeout = outTarget_.empty() ? listener_->limits.idleTimeoutMs : 0;  // outbound: no idle timeout
  if (finished_ || timeout <= 0 || now - lastActivity_ < std::chrono::milliseconds(timeout)) return false;
  auto self = shared_from_this();
  finish(DisconnectReason{DisconnectReason::Kind::Timeout, "idle for " + std::to_string(timeout) + " ms"});
  return true;
}

Reactor::Callback Connection::guarded(Reactor::Callback fn) {
  return [weak = weak_from_this(), fn = std::move(fn)] {
    auto self = weak.lock();
    if (!self || self->finished_) return;
    self->callPlugin("timer", fn);
  };
}

void Connection::ConnectionLogger::log(LogLevel level, std::string_view message) {
  if (!Log::instance().enabled(level)) return;
  Log::instance().write(level, c_.context(), message);
}

}  // namespace protohost::host
