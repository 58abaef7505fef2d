#pragma once
// One listening socket and its acceptor: a non-blocking listen socket on the
// accept loop (the only reactor with threads = 1; a dedicated thread
// otherwise, so a plugin blocking one reactor cannot stop accepts for the
// others), accept4() in a bounded loop with a back-off at EMFILE, each
// connection handed to the least-loaded reactor that is not stalled.
//
// Threading: bind() on the main thread; the rest on the accept loop's thread.


#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <vector>

#include "net/Endpoint.h"
#include "reactor/EventLoop.h"
#include "net/ConnectionOwner.h"
#include "net/TlsContext.h"

namespace protohost::host {

class ConnectionSet;

class Listener final : public IoHandler {
 public:
  /// @p runtime: whose connections it accepts (admission, protocols).
  /// @p loops: where they go, each into its ConnectionSet. Main thread.
  Listener(std::shared_ptr<ConnectionOwner> runtime, Endpoint endpoint, EventLoop& acceptLoop,
           std::vector<EventLoop*> loops);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// Binds without SO_REUSEPORT (a second instance must fail, not co-bind) and
  /// listens. A bind that fails with EADDRINUSE (the previous instance still
  /// closing, nginx's case) is retried up to @p retries times, kBindRetryInterval
  /// apart, blocking this thread, each retry logged once; any other error fails
  /// at once. Throws std::runtime_error("cannot listen on ADDR: bind: reason").
  void bind(int retries = 0);
  static constexpr std::chrono::milliseconds kBindRetryInterval{500};
  /// Uses an inherited listening socket instead of binding (systemd socket
  /// activation); makes it non-blocking. Throws std::runtime_error when it cannot.
  void adopt(int fd);
  /// The endpoint with the port the kernel assigned when it was 0.
  const Endpoint& endpoint() const { return endpoint_; }
  /// Starts accepting on the first reactor.
  void startAccepting();
  /// Stops accepting and closes the socket (new connects are refused from here on).
  void close();
  /// Hands new connections to @p runtime from now on (reload keeps the socket:
  /// no accept gap). Connections already accepted keep their runtime.
  void setRuntime(std::shared_ptr<ConnectionOwner> runtime) { runtime_ = std::move(runtime); }
  /// ssl: listeners: the TLS context new connections get (a HUP swaps in a
  /// fresh one; accepted connections keep theirs). Null: plain TCP. The main
  /// thread before startAccepting(), the accept loop's thread after.
  void setTls(std::shared_ptr<TlsServerContext> tls) {
    if (tls) runtime_->stats.tls.store(true, std::memory_order_relaxed);
    tls_ = std::move(tls);
  }
  const std::shared_ptr<ConnectionOwner>& runtime() const { return runtime_; }

 private:
  /// One socket() + bind() + listen(); 0, or the errno with @p step naming the
  /// call that failed (nothing is left open then).
  int bindOnce(const char*& step);
  /// Takes @p fd (listening, non-blocking) as this listener's socket.
  void useSocket(int fd);
  void onIoEvent(std::uint32_t events) override;
  void backOff(int err);
  void dispatch(int fd, std::string ip, const sockaddr_storage& peer);
  void refuse(int fd, Refusal refusal, const sockaddr_storage& peer);

  std::shared_ptr<ConnectionOwner> runtime_;
  std::shared_ptr<TlsServerContext> tls_;
  Endpoint endpoint_;
  EventLoop& acceptLoop_;
  std::vector<EventLoop*> loops_;
  std::vector<ConnectionSet*> sets_;  // loops_[i]'s set
  int fd_ = -1;  // the listening socket, in the accept loop's connection set while accepting
  bool bound_ = false;
  bool accepting_ = false;
  std::uint64_t backOffTimer_ = 0;
  std::chrono::milliseconds backOff_{25};  // next accept pause after EMFILE
  std::size_t nextLoop_ = 0;
  std::chrono::steady_clock::time_point lastBackOffLog_{};
  std::chrono::steady_clock::time_point lastRefusalLog_{};
  std::uint64_t refusedSinceLog_ = 0;
};

}  // namespace protohost::host
