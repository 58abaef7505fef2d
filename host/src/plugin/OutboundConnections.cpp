#include "plugin/OutboundConnections.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "base/Log.h"
#include "net/ConnectEndpoint.h"
#include "net/Connection.h"
#include "net/ConnectionSet.h"
#include "net/PlainSocket.h"
#include "net/TlsContext.h"
#include "net/TlsSocket.h"

namespace protohost::host {

OutboundConnections::OutboundConnections(EventLoop& loop, std::weak_ptr<ListenerRuntime> runtime, TrackedReactor& reactor)
    : loop_(loop),
      runtime_(std::move(runtime)),
      guard_(reactor.guard()),
      defer_([&reactor](std::function<void()> work, std::function<void(std::exception_ptr)> done) {
        return reactor.deferToThread(std::move(work), std::move(done));
      }) {}

ConnectId OutboundConnections::connect(std::string_view endpoint, std::unique_ptr<Protocol> protocol,
                                       std::function<void(const ConnectError&)> onFailed) {
  if (ended_) return {};
  auto p = std::make_shared<Pending>();
  p->id = ++lastId_;
  p->protocol = std::move(protocol);
  p->onFailed = std::move(onFailed);
  ConnectEndpoint ep;
  std::string error;
  const bool parsed = parseConnectEndpoint(endpoint, ep, error);
  p->target = parsed ? ep.toString() : std::string(endpoint);
  const std::uint64_t id = p->id;
  std::string tlsError;
  if (parsed && ep.tls) {
    try {
      p->tls = TlsClientContext::get(ep.caCerts, ep.certKey, ep.privateKey);
      p->serverName = ep.serverName.empty() ? ep.host : ep.serverName;
    } catch (const TlsConfigError& e) {
      tlsError = e.what();
    }
  }
  if (!parsed || !tlsError.empty() || !p->protocol || runtime_.expired()) {
    ConnectError why = !parsed ? ConnectError{ConnectError::Kind::BadEndpoint, "\"" + std::string(endpoint) + "\" " + error}
                       : !tlsError.empty() ? ConnectError{ConnectError::Kind::Error, p->target + ": " + tlsError}
                       : !p->protocol      ? ConnectError{ConnectError::Kind::Error, "no protocol given"}
                                           : ConnectError{ConnectError::Kind::Shutdown, "the listener is gone"};
    pending_.emplace(id, std::move(p));
    failLater(id, std::move(why));  // never from inside connect
    return ConnectId{id};
  }
  p->connector = std::make_shared<Connector>(
      loop_, std::move(ep), defer_, [this, id](int fd, const SocketAddress& peer, std::uint32_t registered) {
        connected(id, fd, peer, registered);
      },
      [this, id](const ConnectError& e) { failed(id, e); });
  std::weak_ptr<Pending> weak = p;
  pending_.emplace(id, std::move(p));
  // Started after this dispatch round: a failure that the first connect()
  // reports at once reaches onFailed later, as the contract says.
  loop_.runSoon([weak] {
    if (auto pending = weak.lock(); pending && !pending->cancelled && !pending->connector->done())
      pending->connector->start();
  });
  return ConnectId{id};
}

bool OutboundConnections::cancel(ConnectId id) {
  auto it = pending_.find(id.value);
  if (it == pending_.end() || it->second->cancelled) return false;
  Pending& p = *it->second;
  p.cancelled = true;
  if (p.connector) {
    p.connector->cancel();
    retire(std::move(p.connector));
  }
  failLater(id.value, {ConnectError::Kind::Cancelled, p.target + ": cancelled"});
  return true;
}

void OutboundConnections::failLater(std::uint64_t id, ConnectError error) {
  // The entry, not this object, decides: it is erased when the owner ends.
  std::weak_ptr<Pending> weak = pending_.at(id);
  loop_.runSoon([this, weak, error = std::move(error)] {
    if (auto pending = weak.lock()) failed(pending->id, error);
  });
}

std::shared_ptr<OutboundConnections::Pending> OutboundConnections::take(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return nullptr;
  std::shared_ptr<Pending> p = std::move(it->second);
  pending_.erase(it);
  retire(std::move(p->connector));
  return p;
}

void OutboundConnections::failed(std::uint64_t id, const ConnectError& error) {
  std::shared_ptr<Pending> p = take(id);
  if (!p) return;
  p->protocol.reset();  // never started: no hook runs
  reportFailure(p->target, std::move(p->onFailed), error);
}

void OutboundConnections::reportFailure(const std::string& target, std::function<void(const ConnectError&)> onFailed,
                                        const ConnectError& error) {
  countFailure(error.kind);
  if (Log::instance().enabled(LogLevel::Debug)) {
    auto runtime = runtime_.lock();
    Log::instance().write(LogLevel::Debug, (runtime ? "listener=" + runtime->name + " " : "") + "out=" + target,
                          "connect failed: " + error.detail);
  }
  if (onFailed) guard_([fn = std::move(onFailed), error] { fn(error); })();
}

void OutboundConnections::connected(std::uint64_t id, int fd, const SocketAddress& peer, std::uint32_t registered) {
  std::shared_ptr<Pending> p = take(id);
  auto runtime = runtime_.lock();
  if (!p || !runtime) {  // cannot happen while the owner lives; do not leak the socket
    ::close(fd);  // also takes it out of the epoll set
    return;
  }
  ConnectionSet& set = ConnectionSet::of(loop_);
  std::unique_ptr<SocketLayer> socket;
  if (p->tls) {
    SSL* ssl = p->tls->newSession(p->serverName);
    if (!ssl) {
      ::close(fd);  // also takes it out of the epoll set
      reportFailure(p->target, std::move(p->onFailed),
                    ConnectError{ConnectError::Kind::Error, p->target + ": out of memory for a TLS session"});
      return;
    }
    socket = std::make_unique<TlsSocket>(fd, ssl, false, TlsSocket::Side::Client);
  } else {
    socket = std::make_unique<PlainSocket>(fd);
  }
  auto connection = std::make_shared<Connection>(set, runtime, std::move(socket), peer.storage, std::move(p->protocol),
                                                 p->target, registered);
  if (p->tls && p->onFailed) {
    // A handshake that fails is a connect that failed: onFailed, and no hook of the protocol runs.
    connection->onHandshakeFailed([this, fn = std::move(p->onFailed), target = p->target](const std::string& why) {
      reportFailure(target, fn, ConnectError{ConnectError::Kind::Error, target + ": TLS handshake failed: " + why});
    });
  }
  p->onFailed = nullptr;
  runtime->stats.outbound.opened.fetch_add(1, std::memory_order_relaxed);
  std::erase_if(live_, [](const std::weak_ptr<Connection>& w) { return w.expired(); });
  live_.push_back(connection);
  set.add(connection);
  connection->open();
}

void OutboundConnections::closeAll() {
  if (ended_) return;
  ended_ = true;
  // Nothing is reported once the owner ended: the protocols go without hooks.
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    if (p->connector) p->connector->cancel();
    retire(std::move(p->connector));
    countFailure(ConnectError::Kind::Cancelled);
  }
  pending.clear();
  auto live = std::move(live_);
  live_.clear();
  for (auto& weak : live)
    // An RST: what it had not sent yet is lost, and a FIN would tell the peer the stream was complete.
    if (auto c = weak.lock()) c->abortNow(DisconnectReason{DisconnectReason::Kind::Shutdown, "its owner ended"});
}

void OutboundConnections::retire(std::shared_ptr<Connector> connector) {
  if (connector) loop_.runSoon([keep = std::move(connector)] {});
}

void OutboundConnections::countFailure(ConnectError::Kind kind) {
  if (auto runtime = runtime_.lock())
    runtime->stats.outbound.failed[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace protohost::host
