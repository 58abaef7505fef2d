#pragma once
// The plaintext SocketLayer: recv/send/sendmsg/shutdown on a connected,
// non-blocking TCP socket. See SocketLayer.h for the contract.

#include "net/SocketLayer.h"

namespace protohost::host {

/// Closes @p fd with an RST (SO_LINGER 0): the peer reads ECONNRESET at once,
/// and no TIME_WAIT stays here. For refusals and aborts, whatever layer held it.
void closeWithReset(int fd);

class PlainSocket final : public SocketLayer {
 public:
  /// Takes ownership of the connected, non-blocking socket @p fd.
  explicit PlainSocket(int fd) : fd_(fd) {}
  ~PlainSocket() override;
  PlainSocket(const PlainSocket&) = delete;
  PlainSocket& operator=(const PlainSocket&) = delete;

  int fd() const override { return fd_; }
  ssize_t read(char* buf, std::size_t len) override;
  ssize_t write(const char* data, std::size_t len) override;
  ssize_t writev(const iovec* iov, int count) override;
  int shutdownWrite() override;
  void close(bool reset) override;
  int release() override;

 private:
  int fd_;
};

}  // namespace protohost::host
