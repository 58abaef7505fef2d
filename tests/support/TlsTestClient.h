#pragma once
// A blocking TLS client for the tests (OpenSSL 3, as Debian ships it): TCP to
// a loopback port, an optional plaintext prefix (a PROXY header) sent in the
// same segment as the ClientHello, then the handshake with SNI, ALPN, a CA
// to verify the server against (and its name), and a client certificate.
// Every wait is bounded by Options::timeout (SO_RCVTIMEO/SO_SNDTIMEO).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace protohost::testsupport {

class TlsTestClient {
 public:
  struct Options {
    std::string serverName = "localhost";  // SNI, and the name verified when caFile is set ("": neither)
    std::string caFile;                    // verify the server's chain against it ("": no verification)
    std::vector<std::string> alpn;         // offered in this order
    std::string certFile, keyFile;         // a client certificate (mTLS)
    int minVersion = 0, maxVersion = 0;    // TLS1_2_VERSION etc.; 0: OpenSSL's default
    std::string prefix;                    // plaintext sent first, in the ClientHello's segment (MSG_MORE)
    std::chrono::milliseconds timeout{5000};
  };

  /// Connects to 127.0.0.1:@p port and completes the handshake. Throws
  /// std::runtime_error with OpenSSL's reason (and the verify result) on failure.
  static TlsTestClient connect(std::uint16_t port, const Options& o) {
    TlsTestClient c;
    c.fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{static_cast<time_t>(o.timeout.count() / 1000), static_cast<suseconds_t>(o.timeout.count() % 1000 * 1000)};
    ::setsockopt(c.fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(c.fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
    if (!o.prefix.empty()) ::send(c.fd_, o.prefix.data(), o.prefix.size(), MSG_MORE | MSG_NOSIGNAL);
    c.ctx_ = SSL_CTX_new(TLS_client_method());
    if (o.minVersion) SSL_CTX_set_min_proto_version(c.ctx_, o.minVersion);
    if (o.maxVersion) SSL_CTX_set_max_proto_version(c.ctx_, o.maxVersion);
    if (o.minVersion && o.minVersion < TLS1_2_VERSION) SSL_CTX_set_security_level(c.ctx_, 0);  // let it try
    if (!o.caFile.empty()) {
      if (SSL_CTX_load_verify_locations(c.ctx_, o.caFile.c_str(), nullptr) != 1)
        throw std::runtime_error("cannot load CA " + o.caFile);
      SSL_CTX_set_verify(c.ctx_, SSL_VERIFY_PEER, nullptr);
    }
    if (!o.certFile.empty()) {
      if (SSL_CTX_use_certificate_chain_file(c.ctx_, o.certFile.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(c.ctx_, o.keyFile.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("cannot load client certificate " + o.certFile);
    }
    c.ssl_ = SSL_new(c.ctx_);
    SSL_set_fd(c.ssl_, c.fd_);
    if (!o.serverName.empty()) {
      SSL_set_tlsext_host_name(c.ssl_, o.serverName.c_str());
      if (!o.caFile.empty()) SSL_set1_host(c.ssl_, o.serverName.c_str());
    }
    if (!o.alpn.empty()) {
      std::string wire;
      for (const auto& p : o.alpn) wire += static_cast<char>(p.size()) + p;
      SSL_set_alpn_protos(c.ssl_, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
    }
    if (SSL_connect(c.ssl_) != 1) {
      std::string why = errors();
      const long verify = SSL_get_verify_result(c.ssl_);
      if (verify != X509_V_OK) why += " (verify: " + std::string(X509_verify_cert_error_string(verify)) + ")";
      throw std::runtime_error("TLS handshake failed: " + why);
    }
    return c;
  }

  TlsTestClient(TlsTestClient&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), ctx_(std::exchange(o.ctx_, nullptr)), ssl_(std::exchange(o.ssl_, nullptr)),
        buffer_(std::move(o.buffer_)) {}
  ~TlsTestClient() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }

  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      std::size_t n = 0;
      if (SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) != 1) throw std::runtime_error("TLS write: " + errors());
      bytes.remove_prefix(n);
    }
  }
  /// The next line, without its "\n". Throws on EOF, error or timeout.
  std::string readLine() {
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      fill();
    }
  }
  /// Exactly @p n bytes. Throws on EOF, error or timeout.
  std::string readExactly(std::size_t n) {
    while (buffer_.size() < n) fill();
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }
  /// Reads until the connection ends; returns how: "close_notify", "eof" (without
  /// close_notify) or "error: REASON". Throws on a timeout.
  std::string readToEnd() {
    char buf[4096];
    for (;;) {
      std::size_t n = 0;
      if (SSL_read_ex(ssl_, buf, sizeof buf, &n) == 1) continue;
      const int e = SSL_get_error(ssl_, 0);
      if (e == SSL_ERROR_ZERO_RETURN) return "close_notify";
      if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) throw std::runtime_error("timeout");
      std::string why = errors();
      if (why.find("unexpected eof") != std::string::npos || (e == SSL_ERROR_SYSCALL && why.empty())) return "eof";
      return "error: " + why;
    }
  }
  /// Sends close_notify (a clean end of the stream).
  void closeNotify() { SSL_shutdown(ssl_); }
  std::string version() const { return SSL_get_version(ssl_); }
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
  }
  /// The server certificate's subject CN.
  std::string peerCommonName() const {
    X509* x = SSL_get0_peer_certificate(ssl_);
    if (!x) return {};
    char buf[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
    return buf;
  }
  bool sessionReused() const { return SSL_session_reused(ssl_) == 1; }
  int fd() const { return fd_; }

  static std::string errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out.empty() ? std::string(std::strerror(errno)) : out;
  }

 private:
  TlsTestClient() = default;
  void fill() {
    char buf[16384];
    std::size_t n = 0;
    if (SSL_read_ex(ssl_, buf, sizeof buf, &n) != 1) {
      const int e = SSL_get_error(ssl_, 0);
      throw std::runtime_error(e == SSL_ERROR_ZERO_RETURN ? "TLS read: closed (close_notify)" : "TLS read: " + errors());
    }
    buffer_.append(buf, n);
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffer_;
};

}  // namespace protohost::testsupport
