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
// connection failed). (A TLS layer, which must sometimes write in order to
// read, will add a way to ask for EPOLLOUT: docs/design-connection-layer.md §3.)
//
// Ownership: owns the fd from construction; close() or the destructor closes
// it. Threading: the Connection's loop thread only.

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

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
  /// returns the fd.
  virtual int release() = 0;
};

}  // namespace protohost::host
