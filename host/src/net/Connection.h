#pragma once
// One TCP connection (accepted, or made by Reactor::connect), as the protocol
// driver: its registration in the loop's epoll set, the output queue and flow
// control, the close state machine and the exception boundary around every
// call into its Protocol. Implements the SDK Transport the protocol writes
// through. Bytes move through its SocketLayer (PlainSocket, TlsSocket); a
// TLS layer's handshake completes before the protocol is built.
//
// A PreStage (the PROXY header on a proxy_protocol = required listener) may
// read the first bytes under its own deadline; the protocol is built only once
// the stage is Done, and never for a connection whose stage failed.
//
// Ownership: its loop's ConnectionSet owns it (shared_ptr); it owns its
// Protocol and holds its ConnectionOwner (for a listener: factory + library)
// so that code outlives the protocol.
// Threading: everything runs on its EventLoop's thread.

#include <netinet/in.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <optional>

#include "reactor/EventLoop.h"
#include "net/ConnectionOwner.h"
#include "reactor/LoopHandleAnchor.h"
#include "net/OutputBuffer.h"
#include "net/PreStage.h"
#include "net/SocketLayer.h"
#include "reactor/TrackedReactor.h"
#include "protohost/Logger.h"
#include "protohost/Protocol.h"
#include "protohost/Reactor.h"
#include "protohost/Transport.h"

namespace protohost::host {

class ConnectionSet;

class Connection final : public Transport, public IoHandler, public std::enable_shared_from_this<Connection> {
 public:
  /// Takes ownership of the connected socket @p socket and of one admission
  /// of @p owner (released when the connection finishes).
  /// @p ip is the admission key for the per-IP limit. The caller adds it to
  /// @p set (whose loop it runs on) before open().
  Connection(ConnectionSet& set, std::shared_ptr<ConnectionOwner> owner, std::unique_ptr<SocketLayer> socket,
             std::string ip, const sockaddr_storage& peer);
  /// An outbound connection (Reactor::connect, OutboundConnections.h): @p socket
  /// is connected and @p protocol is the caller's. No admission, no PROXY
  /// header, no idle timeout; counted in the listener's outbound stats and
  /// tagged out=@p target (HOST:PORT) in its log lines.
  /// @p registered: the epoll events the socket is still registered with (by
  /// the Connector, whose handler this replaces at once), or 0.
  Connection(ConnectionSet& set, std::shared_ptr<ConnectionOwner> owner, std::unique_ptr<SocketLayer> socket,
             const sockaddr_storage& peer, std::unique_ptr<Protocol> protocol, std::string target,
             std::uint32_t registered = 0);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Builds the protocol, registers with the reactor and calls connectionMade;
  /// with proxy_protocol = required it first waits for the PROXY header (a ProxyStage).
  /// Returns false when the connection was refused or closed during it.
  bool open();

  /// Closes now (host shutdown): pending output is dropped.
  void shutdown(DisconnectReason reason) { finish(std::move(reason)); }
  /// Closes now with an RST (SO_LINGER 0): pending output is dropped and the
  /// peer reads ECONNRESET, not an EOF that would pass for a complete stream.
  void abortNow(DisconnectReason reason) {
    resetOnClose_ = true;
    finish(std::move(reason));
  }
  /// The host is draining: asks the protocol to finish (Protocol::stopRequested).
  void requestStop();
  /// Closes the connection if it has been idle (no input, no output progress)
  /// for its listener's idle_timeout_ms. Returns true when it closed.
  bool closeIfIdle(std::chrono::steady_clock::time_point now);

  // Transport
  void write(std::string_view bytes) override;
  void loseConnection() override;
  void abortConnection() override;
  bool isClosing() const override { return closing_ || finished_; }
  std::size_t pendingBytes() const override { return out_.size(); }
  void pauseReading() override;
  void resumeReading() override;
  /// The client as the pre-stage (PROXY header) names it when it named one,
  /// else the socket's peer. (Limits use the socket's peer.)
  Address peerAddress() const override;
  /// Likewise: the pre-stage's destination, else the socket's own address.
  Address localAddress() const override;
  Reactor& reactor() override { return reactorFacade_; }
  Logger& logger() override { return logger_; }
  void whenDrained(std::size_t bytes, std::function<void()> fn) override;
  /// Paused by the protocol, or by back-pressure: also as soon as the output
  /// passes pause_reading_above within a call, before settle() records it.
  bool readingPaused() const override;
  void whenReadingResumed(std::function<void()> fn) override;
  /// Half-close: FIN once the queued output is sent (from settle()); writes
  /// after it are ignored, reading goes on until the protocol closes.
  void shutdownWrite() override;
  /// One sendmsg of all pieces when nothing is queued; what it leaves is queued in order.
  void writeSequence(std::span<const std::string_view> pieces) override;
  /// Made on first use; ended (posts fail) when the connection finishes.
  ConnectionHandle handle() override;
  /// What TLS negotiated (null on plain TCP, and before the handshake is done).
  const TlsInfo* tls() const override { return socket_->tls(); }

  const ConnectionOwner& owner() const { return *listener_; }
  /// Outbound ssl: connects: @p fn gets why the handshake failed (then the
  /// connection closes without any hook of its protocol). Before open().
  void onHandshakeFailed(std::function<void(const std::string&)> fn) { handshakeFailed_ = std::move(fn); }

 private:
  class ConnectionLogger final : public Logger {
   public:
    explicit ConnectionLogger(Connection& c) : c_(c) {}
    void log(LogLevel level, std::string_view message) override;

   private:
    Connection& c_;
  };

  /// The protocol's timers, posts and watches: through callPlugin, never after finish.
  Reactor::Callback guarded(Reactor::Callback fn);

  void onIoEvent(std::uint32_t events) override;
  /// Every event but a plain EPOLLIN: errors, hang-ups, writability.
  [[gnu::noinline]] void onOtherIoEvent(std::uint32_t events);
  /// One recv(), then more while each fills the read buffer (at most kMaxReadsPerEvent).
  void onReadable();
  /// One recv() and its delivery; true when it filled the buffer (more may be waiting).
  bool readOnce();
  [[gnu::noinline]] void readMore();
  /// Input while the pre-stage is not done: to the stage, the rest to the protocol.
  [[gnu::noinline]] void receivedBeforeProtocol(std::string_view data);
  /// recv() returned 0 (@p err = 0: EOF, ends the input) or failed with
  /// @p err (EAGAIN/EINTR: nothing; anything else closes).
  void readFailed(int err);
  void onWritable();
  void onError();
  /// Builds the protocol and calls connectionMade; false when that closed it.
  bool startProtocol();
  /// TLS: arms tls_handshake_timeout_ms and waits for the handshake's input.
  bool startHandshake();
  /// TLS: one handshake step; when done, counts it and starts the protocol.
  void driveHandshake();
  /// Counts @p result; any result but Ok closes with @p reason (rate-limited log line).
  void handshakeEnded(TlsHandshakeResult result, DisconnectReason reason);
  /// TLS: reads again soon when the layer holds decrypted input epoll cannot report.
  void readBufferedSoon();
  /// The TLS handshake is what runs now: no pre-stage is left and the layer's
  /// handshake is not done.
  bool handshaking() const { return !stage_ && socket_->handshakePending(); }
  /// Why a read or send failed with @p err (0: send returned 0): the layer's
  /// own reason (OpenSSL's) when it has one, else strerror.
  std::string failureText(int err) const;
  /// Feeds @p data to the pre-stage. Once it is done this starts the protocol
  /// and leaves in @p data the bytes after the stage's.
  /// Returns true when @p data should be delivered to the protocol now.
  bool takeStageInput(std::string_view& data);

  /// Runs @p fn (plugin code) inside the exception boundary, then settles if
  /// it changed anything settle() acts on (dirty_).
  template <class F>
  void callPlugin(const char* hook, F&& fn);
  void pluginFailed(const char* hook, const std::string& what);
  /// write() beyond its fast path: @p sent is what a first send() returned (0: none
  /// tried), @p err its errno when it failed.
  [[gnu::noinline]] void writeRest(std::string_view bytes, ssize_t sent, int err);
  /// Sends queued output; false when the socket failed (finish already requested).
  bool flush();
  /// Applies deferred state: pending close, flow control, reactor interest.
  void settle();
  /// Whether the whenDrained / whenReadingResumed request may fire now.
  bool drainedReady() const { return drained_ && out_.size() <= drainedAt_ && !closing_; }
  bool resumedReady() const { return resumed_ && !pausedByProtocol_ && !pausedByBackpressure_ && !closing_; }
  /// Whether to read: not paused, and no whenReadingResumed request waiting
  /// (it fires first, so a protocol that holds input gets it back before more
  /// input or the EOF arrives).
  bool wantsInput() const {
    return !finished_ && !closing_ && !eof_ && !pausedByProtocol_ && !pausedByBackpressure_ && !resumed_;
  }
  /// Fires the requests that are (still) ready; queued by settle().
  void fireRequests();
  /// Settles now if no call into this connection is on the stack, else after it.
  void settleSoon();
  void updateInterest();
  void requestFinish(DisconnectReason reason);
  /// @p graceful: all output was flushed after loseConnection; the socket is
  /// closed with a lingering close (no RST from unread input).
  void finish(DisconnectReason reason, bool graceful = false);
  std::string context() const;

  ConnectionSet& set_;
  EventLoop& loop_;
  std::shared_ptr<ConnectionOwner> listener_;  // before protocol_: destroyed after it
  std::unique_ptr<SocketLayer> socket_;
  std::unique_ptr<Protocol> protocol_;
  OutputBuffer out_;
  TrackedReactor reactorFacade_{loop_, [this](Reactor::Callback fn) { return guarded(std::move(fn)); }, listener_};
  ConnectionLogger logger_{*this};
  std::optional<DisconnectReason> pendingFinish_;
  std::string ip_;
  std::string outTarget_;  // outbound only: HOST:PORT it connected to (empty: accepted)
  sockaddr_in6 peer_{};  // large enough for sockaddr_in too; kept for logs after close
  std::unique_ptr<PreStage> stage_;  // until the pre-stage is done (PROXY header)
  TimerId stageTimer_ = 0;           // its deadline
  TimerId handshakeTimer_ = 0;       // TLS: tls_handshake_timeout_ms
  bool readScheduled_ = false;       // readBufferedSoon() queued a read
  std::function<void(const std::string&)> handshakeFailed_;  // outbound ssl: the connect's onFailed
  std::optional<Address> stagePeer_;   // what a done pre-stage said (PROXY header with addresses)
  std::optional<Address> stageLocal_;
  std::string heldInput_;  // bytes after the stage's, held while connectionMade paused reading
  // Last input received or output sent (by any send: write()'s own, writeRest's
  // or flush's): what idle_timeout_ms measures from.
  std::chrono::steady_clock::time_point lastActivity_;
  // Whether lastActivity_ is kept: only with idle_timeout_ms (a clock read per
  // recv/send costs as much as the rest of an echo's bookkeeping).
  const bool tracksActivity_;
  int depth_ = 0;             // calls into this connection on the stack
  bool opened_ = false;
  bool closing_ = false;      // loseConnection: finish once output is flushed
  bool writeShut_ = false;    // shutdownWrite: no more output; FIN once the queue is sent
  bool finSent_ = false;      // shutdown(SHUT_WR) done
  bool finished_ = false;     // connectionLost delivered, socket closed
  bool eof_ = false;          // peer shut down its sending side
  bool resetOnClose_ = false; // abortConnection / abortNow: close with an RST
  bool pausedByProtocol_ = false;
  bool pausedByBackpressure_ = false;
  bool settleScheduled_ = false;
  // Something settle() acts on changed since it last ran (output queued, close,
  // pause/resume, whenDrained, a plugin failure): every such change goes
  // through settleSoon() or sets it. Lets an echo's write, sent whole, skip settle().
  bool dirty_ = false;
  std::function<void()> drained_;  // Transport::whenDrained request, fired from settle()
  std::size_t drainedAt_ = 0;
  std::function<void()> resumed_;  // Transport::whenReadingResumed request, fired from settle()
  bool requestCheckScheduled_ = false;  // settle() queued fireRequests()
  std::uint32_t registered_ = 0;  // epoll events currently registered (EPOLLIN/EPOLLOUT)
  std::shared_ptr<LoopHandleAnchor> anchor_;  // handle(): made on first use, ended by finish()
};

}  // namespace protohost::host
