#include "Session.h"

#include "ProxyHeaderWriter.h"
#include "protohost/Logger.h"

namespace protohost::plugins::portforward {

namespace {

// A side that ended this way takes the other down with an RST, not a FIN.
bool abortive(DisconnectReason::Kind kind) {
  return kind == DisconnectReason::Kind::Error || kind == DisconnectReason::Kind::Overflow ||
         kind == DisconnectReason::Kind::PluginError;
}

}  // namespace

const char* connectErrorName(ConnectError::Kind kind) {
  switch (kind) {
    case ConnectError::Kind::BadEndpoint: return "bad_endpoint";
    case ConnectError::Kind::Unresolvable: return "unresolvable";
    case ConnectError::Kind::Refused: return "refused";
    case ConnectError::Kind::Timeout: return "timeout";
    case ConnectError::Kind::Error: return "error";
    case ConnectError::Kind::Cancelled: return "cancelled";
    case ConnectError::Kind::Shutdown: return "shutdown";
  }
  return "error";
}

void Session::clientMade(Transport& client) {
  client_ = &client;
  connecting_ = true;
  std::weak_ptr<Session> weak = weak_from_this();
  client.reactor().connect(settings_->endpoint, std::make_unique<UpstreamProtocol>(shared_from_this()),
                           [weak](const ConnectError& error) {
                             if (auto self = weak.lock()) self->connectFailed(error);
                           });
}

void Session::clientData(std::string_view data) {
  if (upstream_ == nullptr) {
    if (!connecting_) return;  // the upstream is gone: the client is closing
    early_.append(data);
    if (!clientHeld_ && early_.size() > settings_->bufferBytes) {
      clientHeld_ = true;
      client_->pauseReading();
    }
    return;
  }
  upstream_->write(data);
  if (!clientHeld_ && upstream_->pendingBytes() > settings_->bufferBytes) holdClient();
}

void Session::clientEnded() {
  clientEnded_ = true;
  if (upstream_ == nullptr) return;  // sent on connect
  upstream_->shutdownWrite();
  closeWhenBothEnded();
}

void Session::clientLost(const DisconnectReason& reason) {
  client_ = nullptr;
  // Usually the host closed the upstream already (it belongs to this connection).
  if (upstream_ == nullptr) return;
  Transport* upstream = std::exchange(upstream_, nullptr);
  if (abortive(reason.kind)) upstream->abortConnection();
  else upstream->loseConnection();
}

void Session::upstreamMade(Transport& upstream) {
  connecting_ = false;
  if (client_ == nullptr) {  // cannot happen: the host drops the connect with its owner
    upstream.abortConnection();
    return;
  }
  upstream_ = &upstream;
  if (settings_->sendProxy == SendProxy::V1)
    upstream.write(proxyHeaderV1(client_->peerAddress(), client_->localAddress()));
  else if (settings_->sendProxy == SendProxy::V2)
    upstream.write(proxyHeaderV2(client_->peerAddress(), client_->localAddress()));
  if (!early_.empty()) {
    upstream.write(early_);
    std::string().swap(early_);
  }
  if (clientEnded_) {
    upstream.shutdownWrite();
    closeWhenBothEnded();
  }
  if (clientHeld_) {
    clientHeld_ = false;
    if (upstream.pendingBytes() > settings_->bufferBytes) holdClient();
    else client_->resumeReading();
  }
}

void Session::upstreamData(std::string_view data) {
  if (client_ == nullptr) return;
  client_->write(data);
  if (!upstreamHeld_ && client_->pendingBytes() > settings_->bufferBytes) holdUpstream();
}

void Session::upstreamEnded() {
  upstreamEnded_ = true;
  if (client_ == nullptr) return;
  client_->shutdownWrite();
  closeWhenBothEnded();
}

void Session::upstreamLost(const DisconnectReason& reason) {
  upstream_ = nullptr;
  if (client_ == nullptr) return;
  if (abortive(reason.kind)) client_->abortConnection();
  else client_->loseConnection();  // after what the upstream sent is flushed
}

void Session::connectFailed(const ConnectError& error) {
  connecting_ = false;
  std::string().swap(early_);
  if (client_ == nullptr) return;
  client_->logger().warning(std::string("upstream ") + settings_->upstream + " " + connectErrorName(error.kind) +
                            ": " + error.detail + "; closing the client");
  client_->loseConnection();
}

void Session::holdClient() {
  clientHeld_ = true;
  client_->pauseReading();
  upstream_->whenDrained(settings_->bufferBytes / 2, [this] { releaseClient(); });
}

void Session::releaseClient() {
  if (!clientHeld_) return;
  clientHeld_ = false;
  if (client_ != nullptr) client_->resumeReading();
}

void Session::holdUpstream() {
  upstreamHeld_ = true;
  upstream_->pauseReading();
  client_->whenDrained(settings_->bufferBytes / 2, [this] { releaseUpstream(); });
}

void Session::releaseUpstream() {
  if (!upstreamHeld_) return;
  upstreamHeld_ = false;
  if (upstream_ != nullptr) upstream_->resumeReading();
}

void Session::closeWhenBothEnded() {
  if (clientEnded_ && upstreamEnded_ && upstream_ != nullptr) upstream_->loseConnection();
}

}  // namespace protohost::plugins::portforward
