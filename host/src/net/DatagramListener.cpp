#include "net/DatagramListener.h"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "base/PluginCall.h"

namespace protohost::host {
namespace {

// Receive batches per readiness event: then the loop's other sockets get a
// turn (level-triggered epoll reports the socket again if more wait).
constexpr int kMaxBatchesPerEvent = 8;

bool samePeer(const DatagramPeer& a, const DatagramPeer& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

}  // namespace

DatagramListener::DatagramListener(std::shared_ptr<ConnectionOwner> owner, Endpoint endpoint, EventLoop& loop)
    : owner_(std::move(owner)),
      endpoint_(std::move(endpoint)),
      loop_(loop),
      socket_(owner_->limits.maxDatagramBytes) {}

DatagramListener::~DatagramListener() { close(); }

void DatagramListener::bind() {
  const char* step = "";
  if (const int err = socket_.bind(endpoint_, step)) {
    std::string what = "cannot listen on udp " + endpoint_.toString() + ": " + step + ": " + std::strerror(err);
    if (err == EACCES && endpoint_.port < 1024)
      what += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
    throw std::runtime_error(what);
  }
  endpoint_.port = socket_.localPort();
  owner_->stats.datagrams.active.store(true, std::memory_order_relaxed);
}

void DatagramListener::serve(std::shared_ptr<ConnectionOwner> owner, std::unique_ptr<DatagramProtocol> protocol) {
  stopProtocol();
  owner_ = std::move(owner);
  logger_.emplace("listener=" + owner_->name);  // a reload may hand the socket to another listener name
  if (socket_.maxDatagramBytes() != owner_->limits.maxDatagramBytes)
    socket_.setMaxDatagramBytes(owner_->limits.maxDatagramBytes);  // a reload changed it
  owner_->stats.datagrams.active.store(true, std::memory_order_relaxed);
  ConnectionOwner* tag = owner_.get();
  // The protocol's timers and posts run inside its exception boundary, like a
  // factory's. A post is not tracked and may run after this listener is gone:
  // it holds the owner (the plugin's code) and nothing of this object.
  reactor_ = std::make_unique<TrackedReactor>(
      loop_,
      [&loop = loop_, code = owner_](Reactor::Callback fn) -> Reactor::Callback {
        return [&loop, code, fn = std::move(fn)] {
          if (auto failure = invokePluginCode(loop, code.get(), fn)) {
            code->stats.pluginErrors.fetch_add(1, std::memory_order_relaxed);
            Log::instance().write(LogLevel::Error, "listener=" + code->name,
                                  "plugin " + code->pluginName + " datagram protocol callback threw: " + *failure);
          }
        };
      },
      owner_);
  reactor_->setOutboundProvider(owner_.get());
  protocol_ = std::move(protocol);
  protocol_->attachTransport(this);
  if (auto failure = invokePluginCode(loop_, tag, [&] { protocol_->startProtocol(); })) {
    pluginFailed("startProtocol", *failure);  // logged and counted; the socket serves on
  }
  if (!reading_ && socket_.fd() >= 0) {
    loop_.ioUpdate(socket_.fd(), this, 0, EPOLLIN);
    reading_ = true;
  }
}

void DatagramListener::stopProtocol() {
  if (!protocol_) return;
  ConnectionOwner* tag = owner_.get();
  inBatch_ = true;  // what stopProtocol sends goes out with the rest, below
  if (auto failure = invokePluginCode(loop_, tag, [&] { protocol_->stopProtocol(); }))
    pluginFailed("stopProtocol", *failure);
  inBatch_ = false;
  flush();
  reactor_->cancelAll();
  {
    PluginCallScope scope(loop_, tag);  // its destructor is plugin code too
    protocol_.reset();
  }
  reactor_.reset();
}

void DatagramListener::close() {
  if (reading_) {
    loop_.ioUpdate(socket_.fd(), this, EPOLLIN, 0);
    reading_ = false;
  }
  stopProtocol();
  self_.reset();  // a pending runSoon flush finds nothing to do
  socket_.close();
}

void DatagramListener::onIoEvent(std::uint32_t) {
  for (int batch = 0; batch < kMaxBatchesPerEvent && protocol_; ++batch) {
    const int received = socket_.receive();
    if (received < 0) {
      pluginFailed(nullptr, std::string("recvmmsg: ") + std::strerror(errno));
      return;
    }
    if (received == 0) return;
    dispatch(received);
    flush();
    if (static_cast<std::size_t>(received) < socket_.slots()) return;  // drained: skip the EAGAIN call
  }
}

void DatagramListener::dispatch(int received) {
  auto& stats = owner_->stats;
  ConnectionOwner* tag = owner_.get();
  inBatch_ = true;
  std::size_t bytes = 0;
  for (int i = 0; i < received && protocol_; ++i) {
    const DatagramSocket::Received d = socket_.at(i);
    if (d.truncated) {
      countDrop(DatagramDrop::TooLarge);
      continue;
    }
    bytes += d.data.size();
    // sin_port and sin6_port sit at the same offset: bytes 2-3 of the sockaddr.
    const auto* raw = reinterpret_cast<const unsigned char*>(&d.peer->storage);
    KnownPeer& known = knownPeers_[(raw[2] ^ raw[3]) & (knownPeers_.size() - 1)];
    if (!samePeer(*d.peer, known.peer)) {
      known.peer = *d.peer;
      known.address = toAddress(known.peer);
    }
    const Address& from = known.address;
    currentFrom_ = &from;
    currentPeer_ = d.peer;
    currentLocal_ = d.local;
    if (auto failure = invokePluginCode(loop_, tag, [&] { protocol_->datagramReceived(d.data, from); })) {
      countDrop(DatagramDrop::PluginError);
      pluginFailed("datagramReceived", *failure);
    }
  }
  currentFrom_ = nullptr;
  currentPeer_ = nullptr;
  currentLocal_ = nullptr;
  inBatch_ = false;
  stats.datagrams.received.fetch_add(static_cast<std::uint64_t>(received), std::memory_order_relaxed);
  stats.bytesIn.fetch_add(bytes, std::memory_order_relaxed);
}

void DatagramListener::sendTo(std::string_view datagram, const Address& to) {
  if (socket_.fd() < 0) return countDrop(DatagramDrop::SendFailed);
  if (datagram.size() > 65535) return countDrop(DatagramDrop::SendFailed);  // no UDP datagram is longer
  if (&to == currentFrom_ || (currentFrom_ && to.port == currentFrom_->port && to.host == currentFrom_->host)) {
    socket_.queue(datagram, *currentPeer_, *currentLocal_);  // an answer: from where the request went
  } else {
    DatagramPeer peer;
    if (!toPeer(to, socket_.family(), peer)) {
      countDrop(DatagramDrop::SendFailed);
      pluginFailed(nullptr, "sendTo " + to.toString() + ": not an address of this socket's family (a literal " +
                                (socket_.family() == AF_INET6 ? "IPv6" : "IPv4") + " address)");
      return;
    }
    socket_.queue(datagram, peer);
  }
  if (inBatch_ || flushScheduled_) return;  // goes out after the batch / with the scheduled flush
  // A send from a timer or a post: at the end of this dispatch round.
  flushScheduled_ = true;
  if (!self_) self_ = std::make_shared<DatagramListener*>(this);
  loop_.runSoon([weak = std::weak_ptr<DatagramListener*>(self_)] {
    if (auto self = weak.lock()) {
      (*self)->flushScheduled_ = false;
      (*self)->flush();
    }
  });
}

void DatagramListener::flush() {
  DatagramSocket::SendResult r = socket_.takeAutoSent();
  if (socket_.queued() > 0) {
    const DatagramSocket::SendResult last = socket_.send();
    r.sent += last.sent;
    r.bytes += last.bytes;
    r.failed += last.failed;
    if (!r.firstError) r.firstError = last.firstError;
  }
  if (r.sent) {
    owner_->stats.datagrams.sent.fetch_add(r.sent, std::memory_order_relaxed);
    owner_->stats.bytesOut.fetch_add(r.bytes, std::memory_order_relaxed);
  }
  if (r.failed) {
    countDrop(DatagramDrop::SendFailed, r.failed);
    pluginFailed(nullptr, std::to_string(r.failed) + " datagram(s) not sent: sendmmsg: " + std::strerror(r.firstError));
  }
}

void DatagramListener::countDrop(DatagramDrop why, std::size_t n) {
  owner_->stats.datagrams.dropped[static_cast<std::size_t>(why)].fetch_add(n, std::memory_order_relaxed);
}

void DatagramListener::pluginFailed(const char* hook, const std::string& what) {
  if (hook) owner_->stats.pluginErrors.fetch_add(1, std::memory_order_relaxed);
  // At most one line a second: a datagram flood must not become a log flood.
  ++errorsSinceLog_;
  const auto now = std::chrono::steady_clock::now();
  if (now - lastErrorLog_ < std::chrono::seconds(1)) return;
  lastErrorLog_ = now;
  const std::string message =
      (hook ? "plugin " + owner_->pluginName + " " + hook + " threw: " + what : what) + " (" +
      std::to_string(errorsSinceLog_) + " such error(s) since the last report)";
  errorsSinceLog_ = 0;
  Log::instance().write(LogLevel::Error, "listener=" + owner_->name, message);
}

}  // namespace protohost::host
