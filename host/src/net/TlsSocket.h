#pragma once
// The TLS SocketLayer: OpenSSL's SSL_read/SSL_write on the connection's fd,
// for an ssl: listener's accepted connections (and, next, outbound ssl:
// connects). The Connection runs handshake() before it builds the protocol,
// so no plugin code sees a connection whose handshake failed.
//
// Before the handshake, read() is a plain recv(): a PROXY header stage reads
// the plaintext header through it, then hands what followed to
// prependInput(). Contract, as SocketLayer's: -1 with errno EAGAIN while OpenSSL waits for
// the socket (readNeedsWritable/writeNeedsReadable say which readiness it
// waits for when it is not the obvious one), 0 from read() at the peer's
// close_notify, -1 with errno EPROTO or ECONNRESET on a TLS failure, its text
// in failure(). An EOF without close_notify is a failure ("peer closed
// without close_notify"), as OpenSSL 3 reports it: a truncation is not a
// complete stream.
//
// Bytes go through the host's own BIO (recv/send with MSG_NOSIGNAL, and the
// bytes a PROXY header stage read ahead served first); with ktls=on and no
// such bytes, through OpenSSL's socket BIO, which kTLS needs.
//
// Ownership: owns the fd and the SSL. Threading: the connection's loop thread.

#include <openssl/ssl.h>

#include <string>

#include "net/SocketLayer.h"
#include "protohost/Transport.h"

namespace protohost::host {

class TlsSocket final : public SocketLayer {
 public:
  enum class Side { Server, Client };
  /// Takes @p fd and @p ssl (from TlsServerContext::newSession, or for
  /// Side::Client TlsClientContext::newSession).
  /// @p kernelBio: OpenSSL's socket BIO (for kTLS) instead of the host's.
  TlsSocket(int fd, SSL* ssl, bool kernelBio, Side side = Side::Server);
  ~TlsSocket() override;
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  int fd() const override { return fd_; }
  ssize_t read(char* buf, std::size_t len) override;
  ssize_t write(const char* data, std::size_t len) override;
  /// Up to 16 KiB of the pieces in one TLS record: one SSL_write.
  ssize_t writev(const iovec* iov, int count) override;
  /// close_notify, then a TCP half-close.
  int shutdownWrite() override;
  void close(bool reset) override;
  int release() override;

  Handshake handshake() override;
  void prependInput(std::string_view bytes) override;
  std::string failure() const override { return failure_; }
  const TlsInfo* tls() const override { return handshakePending_ ? nullptr : &info_; }
  void closeNotify() override;

  /// Whether the kernel does the record layer (kTLS) for sending / receiving.
  bool kernelSend() const override;
  bool kernelReceive() const override;

 private:
  friend struct TlsSocketBio;
  /// Maps an SSL_read/SSL_write/SSL_do_handshake result @p ret <= 0 to the
  /// SocketLayer contract; @p reading says which flag a wrong readiness sets.
  ssize_t failed(int ret, bool reading);
  void fillInfo();

  int fd_;
  SSL* ssl_;
  std::string prefix_;  // read-ahead bytes served before the socket (host BIO only)
  std::size_t prefixAt_ = 0;
  TlsInfo info_;
  std::string failure_;
  bool fatal_ = false;     // SSL_ERROR_SSL/SYSCALL: no SSL_shutdown may follow
  bool notified_ = false;  // close_notify sent
  bool sawEof_ = false;    // the host BIO's recv returned 0
};

}  // namespace protohost::host
