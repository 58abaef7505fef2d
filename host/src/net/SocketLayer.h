#pragma once
// How a Connection moves bytes (Envoy's "transport socket"): plaintext over
// the socket today (PlainSocket), TLS on the same fd next (issue 11). The
// Connection above it holds the protocol, flow control and the epoll
// registration; a SocketLayer only reads, writes, half-closes and closes.
//
// The calls keep the system calls' contract, so the plaintext path costs one
// indirect call per recv/send and nothing else: a result > 0 is a byte count,
// 0 from read() is the peer's EOF, -1 sets errno (EAGAIN/EWOULDBLOCK: try
// again when epoll says so; EINTR: try again now; anything else: the
// connection failed).
//
// A TLS layer (TlsSocket) adds what plaintext never needs, read by the
// Connection from plain fields so the plaintext path pays no call for them:
// a handshake before the protocol starts, a read that must wait for
// writability (or a write for readability), and decrypted input buffered
// where epoll cannot see it (docs/design-connection-layer.md §3).
//
// Ownership: owns the fd from construction; close() or the destructor closes
// it. Threading: the Connection's loop thread only.

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace protohost {
struct TlsInfo;
}

namespace protohost::host {

class SocketLayer {
 public:
  virtual ~SocketLayer() = default;

  /// The socket (for the epoll registration, getsockname, SO_ERROR); -1 once closed.
  virtual int fd() const = 0;
  /// Up to @p len bytes of the peer's stream into @p buf.
  virtual ssize_t read(char* buf, std::size_t len) = 0;
  /// Writes from @p data without blocking; may take fewer than @p len bytes.
  virtual ssize_t write(const char* data, std::size_t len) = 0;
  /// One gathered write of up to IOV_MAX pieces; may take fewer bytes than all.
  virtual ssize_t writev(const iovec* iov, int count) = 0;
  /// Half-close: the peer reads EOF after what was written. 0 or -1 (errno).
  virtual int shutdownWrite() = 0;
  /// Closes the socket; @p reset: with an RST (SO_LINGER 0), so the peer
  /// reads ECONNRESET, not an EOF that would pass for a complete stream.
  virtual void close(bool reset) = 0;
  /// Gives up the socket without closing it (a lingering close takes it over);
  /// returns the fd. A TLS layer sends its close_notify first.
  virtual int release() = 0;

  // ---- what only a TLS layer uses (PlainSocket keeps the defaults) ----

  enum class Handshake { Done, InProgress, Failed, Closed };
  /// Advances the handshake without blocking. InProgress: call again when
  /// epoll reports what readNeedsWritable() says; Failed: see failure();
  /// Closed: the peer closed before it was done.
  virtual Handshake handshake() { return Handshake::Done; }
  /// Whether handshake() must run (and succeed) before any read or write.
  bool handshakePending() const { return handshakePending_; }
  /// Bytes read off the socket before this layer took over (after a PROXY
  /// header): the start of the TLS stream. Before the first handshake().
  virtual void prependInput(std::string_view) {}
  /// Why the last handshake() or read() failed, for the close reason and the
  /// counter ("timeout" etc. are the Connection's own).
  virtual std::string failure() const { return {}; }
  /// The negotiated parameters once the handshake is done; null for plaintext.
  virtual const TlsInfo* tls() const { return nullptr; }
  /// Sends what the layer owes its peer before a graceful close (TLS: a
  /// close_notify). Called once, when all output has been written.
  virtual void closeNotify() {}
  /// TLS with ktls=on: whether the kernel took over the record layer for
  /// sending / receiving after the handshake.
  virtual bool kernelSend() const { return false; }
  virtual bool kernelReceive() const { return false; }

  /// The last read (or handshake step) needs EPOLLOUT before it can go on.
  bool readNeedsWritable() const { return readNeedsWritable_; }
  /// The last write needs EPOLLIN before it can go on.
  bool writeNeedsReadable() const { return writeNeedsReadable_; }
  /// Input is decrypted and waiting inside the layer: epoll will not report
  /// it, so the Connection reads again without waiting for EPOLLIN.
  bool hasBufferedInput() const { return bufferedInput_; }

 protected:
  bool handshakePending_ = false;
  bool readNeedsWritable_ = false;
  bool writeNeedsReadable_ = false;
  bool bufferedInput_ = false;
};

}  // namespace protohost::host
