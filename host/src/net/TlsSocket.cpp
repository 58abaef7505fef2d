#include "net/TlsSocket.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "net/PlainSocket.h"
#include "net/TlsContext.h"

namespace protohost::host {
namespace {

// SSL_get_error needs an empty error queue before the call it judges. Clearing
// one that is already empty (always, but after a failure) cost 1,674
// instructions per echoed message in OpenSSL 3.0, more than the host's whole
// gap to a minimal OpenSSL echo (bench/tls-callgrind.sh): look first.
inline void clearErrorQueue() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

// The host's BIO: recv/send on the fd (MSG_NOSIGNAL: no SIGPIPE even where
// the process does not ignore it), with the bytes a PROXY stage read ahead
// served first. Its data pointer is the TlsSocket.
struct TlsSocketBio {
  static int read(BIO* bio, char* buf, std::size_t len, std::size_t* done) {
    auto* s = static_cast<TlsSocket*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (s->prefixAt_ < s->prefix_.size()) {
      const std::size_t n = std::min(len, s->prefix_.size() - s->prefixAt_);
      std::memcpy(buf, s->prefix_.data() + s->prefixAt_, n);
      s->prefixAt_ += n;
      if (s->prefixAt_ == s->prefix_.size()) std::string().swap(s->prefix_);
      *done = n;
      return 1;
    }
    const ssize_t n = ::recv(s->fd_, buf, len, 0);
    if (n > 0) {
      *done = static_cast<std::size_t>(n);
      return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(bio);
    if (n == 0) s->sawEof_ = true;  // BIO_CTRL_EOF says so: OpenSSL reports a truncation, not an I/O error
    *done = 0;
    return n == 0 ? 0 : -1;
  }
  static int write(BIO* bio, const char* data, std::size_t len, std::size_t* done) {
    auto* s = static_cast<TlsSocket*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    const ssize_t n = ::send(s->fd_, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      *done = static_cast<std::size_t>(n);
      return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
    *done = 0;
    return -1;
  }
  static long ctrl(BIO* bio, int cmd, long, void*) {
    if (cmd == BIO_CTRL_FLUSH) return 1;  // nothing buffered here
    if (cmd == BIO_CTRL_EOF) return static_cast<TlsSocket*>(BIO_get_data(bio))->sawEof_ ? 1 : 0;
    return 0;
  }
  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* mm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "protohost socket");
      BIO_meth_set_read_ex(mm, &TlsSocketBio::read);
      BIO_meth_set_write_ex(mm, &TlsSocketBio::write);
      BIO_meth_set_ctrl(mm, &TlsSocketBio::ctrl);
      BIO_meth_set_create(mm, &TlsSocketBio::create);
      return mm;
    }();
    return m;
  }
};

TlsSocket::TlsSocket(int fd, SSL* ssl, bool kernelBio, Side side) : fd_(fd), ssl_(ssl) {
  handshakePending_ = true;
  if (kernelBio) {
    SSL_set_fd(ssl_, fd_);
  } else {
    BIO* bio = BIO_new(TlsSocketBio::method());
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);  // one BIO both ways: the SSL owns it
  }
  if (side == Side::Server) SSL_set_accept_state(ssl_);
  else SSL_set_connect_state(ssl_);
}

TlsSocket::~TlsSocket() {
  SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
}

void TlsSocket::prependInput(std::string_view bytes) {
  if (bytes.empty()) return;
  if (SSL_get_rbio(ssl_) && BIO_method_type(SSL_get_rbio(ssl_)) == BIO_TYPE_SOCKET) {
    // kTLS asked for, but the PROXY stage read ahead: the host's BIO serves those bytes (no kTLS here).
    BIO* bio = BIO_new(TlsSocketBio::method());
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);
  }
  prefix_.assign(bytes);
  prefixAt_ = 0;
}

ssize_t TlsSocket::failed(int ret, bool reading) {
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      if (reading) readNeedsWritable_ = false;
      else writeNeedsReadable_ = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      if (reading) readNeedsWritable_ = true;
      else writeNeedsReadable_ = false;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: a complete stream
      return 0;
    case SSL_ERROR_SYSCALL: {
      const int sys = errno;
      fatal_ = true;
      const std::string queued = takeOpenSslErrors();
      failure_ = !queued.empty() ? "TLS: " + queued
                 : sys != 0      ? std::string(std::strerror(sys))
                                 : "peer closed without close_notify";
      errno = sys != 0 ? sys : ECONNRESET;
      return -1;
    }
    default: {  // SSL_ERROR_SSL: a protocol error; no SSL_shutdown may follow (man SSL_get_error)
      fatal_ = true;
      const unsigned long first = ERR_peek_error();
      std::string why = takeOpenSslErrors();
      if (ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING) why = "peer closed without close_notify";
      // Why a certificate was refused: "certificate verify failed" alone does not say.
      if (const long verify = SSL_get_verify_result(ssl_); verify != X509_V_OK && ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED)
        why += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
      failure_ = why.empty() ? "TLS error" : "TLS: " + why;
      errno = EPROTO;
      return -1;
    }
  }
}

SocketLayer::Handshake TlsSocket::handshake() {
  if (!handshakePending_) return Handshake::Done;
  clearErrorQueue();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    handshakePending_ = false;
    readNeedsWritable_ = false;
    bufferedInput_ = SSL_has_pending(ssl_) == 1;
    fillInfo();
    return Handshake::Done;
  }
  if (failed(r, true) == -1 && errno == EAGAIN) return Handshake::InProgress;
  if (sawEof_) return Handshake::Closed;
  if (failure_.empty()) failure_ = "the peer ended it";
  return Handshake::Failed;
}

ssize_t TlsSocket::read(char* buf, std::size_t len) {
  // Before the handshake the stream is still plaintext: what a pre-stage (the
  // PROXY header) reads. The Connection calls handshake(), not read(), once
  // the stage is done.
  if (handshakePending_) return ::recv(fd_, buf, len, 0);
  clearErrorQueue();
  const int r = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(len, INT_MAX)));
  if (r > 0) {
    readNeedsWritable_ = false;
    bufferedInput_ = SSL_has_pending(ssl_) == 1;
    return r;
  }
  bufferedInput_ = false;
  return failed(r, true);
}

ssize_t TlsSocket::write(const char* data, std::size_t len) {
  if (len == 0) return 0;
  clearErrorQueue();
  const int r = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(len, INT_MAX)));
  if (r > 0) {
    writeNeedsReadable_ = false;
    return r;
  }
  return failed(r, false);
}

ssize_t TlsSocket::writev(const iovec* iov, int count) {
  // One record's worth gathered: a TLS record is at most 16 KiB, so more
  // would not go out in one piece anyway. The rest the caller queues.
  constexpr std::size_t kRecord = 16384;
  thread_local char scratch[kRecord];
  std::size_t used = 0;
  for (int i = 0; i < count && used < kRecord; ++i) {
    const std::size_t n = std::min(iov[i].iov_len, kRecord - used);
    std::memcpy(scratch + used, iov[i].iov_base, n);
    used += n;
  }
  return write(scratch, used);
}

void TlsSocket::closeNotify() {
  if (notified_ || fatal_ || handshakePending_ || fd_ < 0) return;
  notified_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // sends close_notify; not waiting for the peer's
  ERR_clear_error();
}

int TlsSocket::shutdownWrite() {
  closeNotify();
  return ::shutdown(fd_, SHUT_WR);
}

void TlsSocket::close(bool reset) {
  if (fd_ < 0) return;
  if (reset) {
    closeWithReset(std::exchange(fd_, -1));  // an abort: no close_notify
    return;
  }
  closeNotify();
  ::close(std::exchange(fd_, -1));
}

int TlsSocket::release() {
  closeNotify();
  return std::exchange(fd_, -1);
}

bool TlsSocket::kernelSend() const { return BIO_get_ktls_send(SSL_get_wbio(ssl_)) == 1; }
bool TlsSocket::kernelReceive() const { return BIO_get_ktls_recv(SSL_get_rbio(ssl_)) == 1; }

void TlsSocket::fillInfo() {
  info_.version = SSL_get_version(ssl_);
  info_.cipher = SSL_get_cipher_name(ssl_);
  if (const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) info_.serverName = sni;
  const unsigned char* alpn = nullptr;
  unsigned int alpnLen = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpnLen);
  if (alpn) info_.alpn.assign(reinterpret_cast<const char*>(alpn), alpnLen);
  if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
    if (BIO* mem = BIO_new(BIO_s_mem())) {
      X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
      char* text = nullptr;
      const long n = BIO_get_mem_data(mem, &text);
      if (n > 0) info_.peerSubject.assign(text, static_cast<std::size_t>(n));
      BIO_free(mem);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdLen = 0;
    if (X509_digest(peer, EVP_sha256(), md, &mdLen) == 1) {
      static const char* hex = "0123456789abcdef";
      for (unsigned i = 0; i < mdLen; ++i) {
        info_.peerFingerprint.push_back(hex[md[i] >> 4]);
        info_.peerFingerprint.push_back(hex[md[i] & 15]);
      }
    }
    X509_free(peer);
  }
}

}  // namespace protohost::host
