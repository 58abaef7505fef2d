#pragma once
// The TLS settings of one ssl: listener, loaded and checked: an OpenSSL
// SSL_CTX with the certificates (SNI picks among them), the ALPN list, the
// client-certificate CA (mTLS) and the rotating session-ticket keys.
//
// Defaults a reviewer signs off (docs/tls.md): TLS 1.2 and 1.3 only, the
// Mozilla "intermediate" cipher list, no compression, no renegotiation,
// session tickets on with keys rotated every kTicketRotation.
//
// Ownership: shared. The Listener holds the current one and hands it to each
// connection it accepts; an SSL made from it holds the SSL_CTX, so a HUP that
// swaps in a new context leaves existing connections on theirs.
// Threading: load() on the main thread; newSession() and the OpenSSL
// callbacks on any reactor thread (the ticket keys have their own mutex).

#include <openssl/ssl.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/Endpoint.h"

namespace protohost::host {

/// A TLS file or setting the host cannot serve with; what() names the file
/// and OpenSSL's reason.
class TlsConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Refuses a private-key file that others could read or replace: readable or
/// writable by group or others, or owned by neither root, this process's user
/// nor @p serviceUid. Returns the reason, or "" when it is safe.
std::string checkKeyFileSafety(const std::string& path, unsigned serviceUid);

/// OpenSSL's error queue as one line ("reason; reason"), emptied.
std::string takeOpenSslErrors();

class TlsServerContext {
 public:
  /// Ticket keys older than this encrypt no new tickets; twice this old, none are accepted.
  static constexpr std::chrono::hours kTicketRotation{1};

  /// Loads every file of @p options and checks them: each key file's safety,
  /// each certificate against its key, not expired. Throws TlsConfigError.
  static std::shared_ptr<TlsServerContext> load(const TlsOptions& options, unsigned serviceUid);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  /// A server session for a new connection (its own reference to the
  /// SSL_CTX), or null when OpenSSL is out of memory. Any thread.
  SSL* newSession() const;
  bool ktls() const { return ktls_; }
  /// For log lines at start and reload: "2 certificates (a.example, b.example), ALPN h2,http/1.1, mTLS required".
  std::string describe() const;

 private:
  struct Certificate {
    X509* leaf = nullptr;
    EVP_PKEY* key = nullptr;
    STACK_OF(X509)* chain = nullptr;  // intermediates, then extraCertChain
    std::string name;                 // the subject's CN, for describe()
  };
  struct TicketKey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    std::chrono::steady_clock::time_point made;
  };

  TlsServerContext() = default;
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                    unsigned int inlen, void* arg);
  static int onTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                         int encrypt);
  /// The key a new ticket is encrypted with (rotated when due), or the one named @p name (null: none).
  bool currentTicketKey(TicketKey& out);
  int findTicketKey(const unsigned char* name, TicketKey& out);

  SSL_CTX* ctx_ = nullptr;
  std::vector<Certificate> certificates_;
  std::string alpnWire_;  // alpn= in wire format (length-prefixed names), server preference order
  std::string clientCertMode_;
  bool ktls_ = false;
  std::mutex ticketMutex_;
  std::vector<TicketKey> ticketKeys_;  // newest first; at most 2
};

/// The client side, for outbound ssl: connects (ConnectEndpoint.h): TLS 1.2
/// and 1.3, the server's certificate verified against caCerts or the system's
/// trust store, and its name against the endpoint's hostname.
/// Ownership: shared; get() keeps one per (caCerts, certKey, privateKey) for the
/// process's life, since loading the system's store costs milliseconds.
/// Threading: any thread.
class TlsClientContext {
 public:
  /// The context for @p caCerts ("" : the system's store) and client
  /// certificate @p certKey / @p privateKey ("" : none). Throws TlsConfigError.
  static std::shared_ptr<TlsClientContext> get(const std::string& caCerts, const std::string& certKey,
                                               const std::string& privateKey);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  /// A client session that sends @p serverName as SNI (when it is a name) and
  /// verifies the certificate names it (a DNS name or an IP address); null
  /// when OpenSSL is out of memory.
  SSL* newSession(const std::string& serverName) const;

 private:
  TlsClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
};

}  // namespace protohost::host
