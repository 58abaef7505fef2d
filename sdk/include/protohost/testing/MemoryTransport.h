#pragma once
/// @file testing/MemoryTransport.h
/// An in-memory Transport for unit tests (Twisted's StringTransport): records
/// what the protocol wrote and whether it closed, with no sockets.
///
///     MemoryTransport t;
///     EchoProtocol p;
///     t.connect(p);             // attachTransport + connectionMade
///     t.feed(p, "hello", 1);    // dataReceived one byte at a time
///     EXPECT_EQ(t.value(), "hello");
///
/// Like the host it calls no hook from inside a Transport call: what
/// resumeReading, whenDrained and whenReadingResumed set off runs from the
/// reactor's posted work (ManualReactor::runPending, or advance). Like the
/// host it hands over no input (and no EOF) while reading is paused or a
/// whenReadingResumed request waits: that request fires first.
///
/// Single-threaded, like ManualReactor: its handle() posts to the reactor, so
/// post from the test thread only. MemoryPair.h wires two of them together.

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protohost/Logger.h"
#include "protohost/Protocol.h"
#include "protohost/Transport.h"
#include "protohost/testing/ManualReactor.h"
#include "protohost/testing/MemoryKit.h"

namespace protohost::testing {

/// The kit's HandleAnchor: posts to the transport's reactor and runs the call
/// only while the transport's connection exists (until connectionLost).
class MemoryHandleAnchor : public HandleAnchor, public std::enable_shared_from_this<MemoryHandleAnchor> {
 public:
  MemoryHandleAnchor(Reactor& reactor, Transport& target) : reactor_(&reactor), target_(&target) {}
  bool post(std::function<void(Transport*)> fn) override {
    if (target_ == nullptr) return false;
    reactor_->post([self = shared_from_this(), fn = std::move(fn)] {
      if (self->target_ != nullptr) fn(self->target_);  // else destroyed unrun
    });
    return true;
  }
  bool alive() const override { return target_ != nullptr; }
  /// The connection ended: later posts return false, queued ones do not run.
  void end() { target_ = nullptr; }

 private:
  Reactor* reactor_;
  Transport* target_;
};

class MemoryTransport : public Transport, public MemoryKit {
 public:
  MemoryTransport() = default;
  explicit MemoryTransport(Reactor& reactor) : MemoryKit(reactor) {}
  MemoryTransport(const MemoryTransport&) = delete;
  MemoryTransport& operator=(const MemoryTransport&) = delete;
  ~MemoryTransport() override {
    if (anchor_) anchor_->end();
  }

  /// Ignored once closing or after shutdownWrite.
  void write(std::string_view bytes) override {
    if (closing_ || writeShut_) return;
    written_.append(bytes);
    ++writes_;
  }
  void loseConnection() override { closing_ = true; }
  void abortConnection() override {
    closing_ = true;
    aborted_ = true;
  }
  bool isClosing() const override { return closing_; }
  std::size_t pendingBytes() const override { return pending_; }
  void pauseReading() override { paused_ = true; }
  /// Fires a whenReadingResumed request, then delivers the input feed() held,
  /// from the reactor's posted work (as the host does after the call).
  void resumeReading() override {
    if (!paused_) return;
    paused_ = false;
    if (!readingPaused()) reactor().post([this] { deliverHeld(); });
  }
  /// Paused by the protocol, or by simulated unsent output (setPauseThreshold).
  bool readingPaused() const override { return paused_ || backpressured_; }
  void whenReadingResumed(std::function<void()> fn) override {
    resumed_ = std::move(fn);
    if (resumed_ && !readingPaused()) reactor().post([this] { deliverHeld(); });
  }
  Address peerAddress() const override { return peer_; }
  Address localAddress() const override { return local_; }
  /// Records the half-close (writeShutDown()); later writes are ignored.
  void shutdownWrite() override { writeShut_ = true; }
  /// The same bytes as a write() of each piece, counted as one write (writeCount()).
  void writeSequence(std::span<const std::string_view> pieces) override {
    if (closing_ || writeShut_) return;
    for (std::string_view piece : pieces) written_.append(piece);
    ++writes_;
  }
  /// Posts to reactor() while the connection exists; false after connectionLost
  /// (disconnect) or once this transport is destroyed.
  ConnectionHandle handle() override {
    if (!anchor_) {
      anchor_ = std::make_shared<MemoryHandleAnchor>(reactor(), *this);
      if (lost_) anchor_->end();
    }
    return ConnectionHandle(anchor_);
  }
  Reactor& reactor() override { return kitReactor(); }
  Logger& logger() override { return kitLogger(); }
  /// What setTls() set: a protocol under test sees a TLS connection.
  const TlsInfo* tls() const override { return tls_ ? &*tls_ : nullptr; }
  void whenDrained(std::size_t bytes, std::function<void()> fn) override {
    drainedAt_ = bytes;
    drained_ = std::move(fn);
    if (drained_ && pending_ <= drainedAt_) reactor().post([this] { fireDrained(); });
  }

  // ---- test-only helpers (not transport methods) ----

  /// Makes tls() return @p info (call before connect(), as the host builds
  /// the protocol only after the handshake).
  void setTls(TlsInfo info) { tls_ = std::move(info); }

  /// Binds @p protocol to this transport and calls connectionMade.
  void connect(Protocol& protocol) {
    protocol_ = &protocol;
    protocol.attachTransport(this);
    protocol.connectionMade();
  }
  /// Delivers @p data in chunks of at most @p chunk bytes (down to 1), stopping
  /// once the protocol closes, as the host would. While reading is paused or a
  /// whenReadingResumed request waits the chunks are held (the host does not
  /// read), and delivered in order once reading resumes and the request ran
  /// (see resumeReading); nothing is delivered once closing.
  void feed(Protocol& protocol, std::string_view data, std::size_t chunk = SIZE_MAX) {
    protocol_ = &protocol;
    chunk = std::max<std::size_t>(chunk, 1);
    deliverInput();  // what was held comes first
    while (!data.empty() && !closing_) {
      const std::size_t n = std::min(chunk, data.size());
      if (!takesInput() || !held_.empty() || eofHeld_) held_.emplace_back(data.substr(0, n));
      else protocol.dataReceived(data.substr(0, n));
      data.remove_prefix(n);
    }
  }
  /// The peer shuts down its sending side: readEnded, after the input fed
  /// before it, and (like feed) held while reading is paused or a request waits.
  void feedEof(Protocol& protocol) {
    protocol_ = &protocol;
    eofHeld_ = true;
    deliverInput();
  }
  /// Calls connectionLost as the host does when the connection ends.
  void disconnect(Protocol& protocol,
                  DisconnectReason reason = {DisconnectReason::Kind::ClosedByPeer, "test"}) {
    closing_ = true;
    lost_ = true;
    held_.clear();
    if (anchor_) anchor_->end();
    protocol.connectionLost(reason);
  }

  /// Everything written so far.
  const std::string& value() const { return written_; }
  /// Returns and forgets everything written so far.
  std::string take() { return std::exchange(written_, {}); }
  void clear() { written_.clear(); }
  bool closed() const { return closing_; }
  bool aborted() const { return aborted_; }
  /// Whether shutdownWrite was called.
  bool writeShutDown() const { return writeShut_; }
  /// Whether disconnect (connectionLost) ran.
  bool lost() const { return lost_; }
  /// How many write / writeSequence calls wrote (a writeSequence counts once).
  std::size_t writeCount() const { return writes_; }
  bool paused() const { return paused_; }
  /// Bytes fed while reading was paused and not delivered yet.
  std::size_t heldBytes() const {
    std::size_t n = 0;
    for (const auto& chunk : held_) n += chunk.size();
    return n;
  }
  /// Whether a whenReadingResumed request is waiting.
  bool resumeRequested() const { return static_cast<bool>(resumed_); }
  /// Simulates unsent output, as a slow peer would cause; lowering it calls a
  /// whenDrained request that it satisfies, as the host does when the peer reads.
  /// With setPauseThreshold it also pauses and resumes reading as the host does.
  void setPendingBytes(std::size_t n) {
    pending_ = n;
    const bool wasPaused = readingPaused();
    if (pending_ > pauseAbove_) backpressured_ = true;
    else if (pending_ <= resumeAtOrBelow_) backpressured_ = false;
    if (wasPaused && !readingPaused()) reactor().post([this] { deliverHeld(); });
    fireDrained();
  }
  /// The host's pause_reading_above: reading pauses while more than @p above
  /// bytes are pending (setPendingBytes) and resumes once at most
  /// @p resumeAtOrBelow are (the host uses above / 2). Default: never.
  void setPauseThreshold(std::size_t above, std::size_t resumeAtOrBelow) {
    pauseAbove_ = above;
    resumeAtOrBelow_ = std::min(resumeAtOrBelow, above);
    setPendingBytes(pending_);
  }
  /// Whether a whenDrained request is waiting.
  bool drainRequested() const { return static_cast<bool>(drained_); }
  void setPeer(Address a) { peer_ = std::move(a); }
  void setLocal(Address a) { local_ = std::move(a); }

 private:
  std::string written_;
  void fireDrained() {
    if (!drained_ || closing_ || pending_ > drainedAt_) return;
    auto fn = std::exchange(drained_, nullptr);
    fn();
  }
  // Input is handed over while not paused and no whenReadingResumed request waits.
  bool takesInput() const { return !readingPaused() && !resumed_ && !closing_; }
  // Delivers held chunks, then a held EOF, in order until input is not taken.
  void deliverInput() {
    while (!held_.empty() && takesInput()) {
      const std::string chunk = std::move(held_.front());
      held_.pop_front();
      protocol_->dataReceived(chunk);
    }
    if (held_.empty() && eofHeld_ && takesInput()) {
      eofHeld_ = false;
      protocol_->readEnded();
    }
    if (closing_) held_.clear();
  }
  // After a resume: a whenReadingResumed request first (as in the host, it
  // runs before the next read), then the held input.
  void deliverHeld() {
    if (resumed_ && !readingPaused() && !closing_) {
      auto fn = std::exchange(resumed_, nullptr);
      fn();
    }
    if (protocol_) deliverInput();
  }

  std::size_t pending_ = 0;
  std::function<void()> drained_;
  std::size_t drainedAt_ = 0;
  bool closing_ = false;
  bool aborted_ = false;
  bool writeShut_ = false;
  std::optional<TlsInfo> tls_;
  bool lost_ = false;
  std::size_t writes_ = 0;
  std::shared_ptr<MemoryHandleAnchor> anchor_;
  bool paused_ = false;
  bool backpressured_ = false;      // pending_ passed pauseAbove_ (not yet down to resumeAtOrBelow_)
  std::size_t pauseAbove_ = SIZE_MAX;
  std::size_t resumeAtOrBelow_ = SIZE_MAX;
  bool eofHeld_ = false;            // feedEof behind held input
  Protocol* protocol_ = nullptr;    // the last one connected or fed
  std::deque<std::string> held_;    // chunks fed while paused
  std::function<void()> resumed_;   // Transport::whenReadingResumed request
  Address peer_{"127.0.0.1", 40000};
  Address local_{"127.0.0.1", 7007};
};

}  // namespace protohost::testing
