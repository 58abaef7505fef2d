#include "net/TlsContext.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace protohost::host {
namespace {

// Mozilla's "intermediate" configuration (ssl-config.mozilla.org, guideline
// 5.7): TLS 1.2 ciphers with forward secrecy and AEAD only. TLS 1.3's suites
// are OpenSSL's defaults, which are the same list.
constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* kIntermediateGroups = "X25519:P-256:P-384";

// Reads every certificate of a PEM file (leaf first). Throws TlsConfigError.
std::vector<X509*> readCertificates(const std::string& path, const char* key) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (!bio) throw TlsConfigError(std::string(key) + " " + path + ": cannot open: " + std::strerror(errno));
  std::vector<X509*> out;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out.push_back(x);
  // The loop ends at the end of the file (PEM_R_NO_START_LINE): not an error once something was read.
  const unsigned long last = ERR_peek_last_error();
  const bool atEnd = ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  BIO_free(bio);
  if (out.empty() || !atEnd) {
    std::string why = takeOpenSslErrors();
    for (X509* x : out) X509_free(x);
    throw TlsConfigError(std::string(key) + " " + path + ": " +
                         (out.empty() ? "no PEM certificate in it" + (why.empty() ? "" : " (" + why + ")") : why));
  }
  ERR_clear_error();
  return out;
}

EVP_PKEY* readKey(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (!bio) throw TlsConfigError("privateKey " + path + ": cannot open: " + std::strerror(errno));
  // No passphrase prompt on a terminal: an encrypted key fails here, with a reason.
  auto noPassphrase = [](char*, int, int, void*) { return 0; };
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, noPassphrase, nullptr);
  BIO_free(bio);
  if (!key) throw TlsConfigError("privateKey " + path + ": no usable PEM private key in it (" + takeOpenSslErrors() + ")");
  return key;
}

std::string commonName(X509* x) {
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
  return buf;
}

}  // namespace

std::string takeOpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason ? reason : buf;
  }
  return out;
}

std::string checkKeyFileSafety(const std::string& path, unsigned serviceUid) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "privateKey " + path + ": " + std::strerror(errno);
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return "refusing private key " + path + ": it is readable or writable by " +
           ((st.st_mode & S_IRWXO) ? "others" : "group") + " (mode " + mode + "; chmod 600 " + path + ")";
  if (st.st_uid != 0 && st.st_uid != ::geteuid() && st.st_uid != serviceUid)
    return "refusing private key " + path + ": it is owned by uid " + std::to_string(st.st_uid) +
           " (must be root or the user the host runs as)";
  return {};
}

std::shared_ptr<TlsServerContext> TlsServerContext::load(const TlsOptions& options, unsigned serviceUid) {
  ERR_clear_error();
  std::shared_ptr<TlsServerContext> self(new TlsServerContext());
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) throw TlsConfigError("cannot create a TLS context: " + takeOpenSslErrors());
  self->ctx_ = ctx;
  self->ktls_ = options.ktls;

  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // No compression (CRIME), no renegotiation (client-initiated renegotiation
  // is a DoS lever and TLS 1.3 has none). The server's cipher order (the list
  // above is strongest first), except that a client which puts ChaCha20 first
  // (no AES hardware) gets it: Mozilla leaves the order to the client, but
  // testssl.sh rates a missing server order HIGH, and this keeps what the
  // client's choice was for.
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_PRIORITIZE_CHACHA | (options.ktls ? SSL_OP_ENABLE_KTLS : 0));
  // Partial writes and a moved buffer: a write retried after EAGAIN comes from
  // the Connection's output queue, which may have moved (same bytes).
  // RELEASE_BUFFERS: an idle connection holds no 16 KiB record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, kIntermediateCiphers) != 1 || SSL_CTX_set1_groups_list(ctx, kIntermediateGroups) != 1)
    throw TlsConfigError("cannot set the cipher list: " + takeOpenSslErrors());
  SSL_CTX_set_dh_auto(ctx, 1);  // ffdhe2048 for the DHE-RSA suites
  // Resumption by ticket only: no server-side session cache, which would hold
  // a session per TLS 1.2 handshake (memory the idle-connection figure pays).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  static const unsigned char kSessionContext[] = "protohost";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);

  struct Certificates {  // freed on every way out, thrown or not
    std::vector<X509*> list;
    ~Certificates() {
      for (X509* x : list) X509_free(x);
    }
  } extra;
  if (!options.extraCertChain.empty()) extra.list = readCertificates(options.extraCertChain, "extraCertChain");
  for (const auto& c : options.certificates) {
    if (auto why = checkKeyFileSafety(c.key, serviceUid); !why.empty()) throw TlsConfigError(why);
    Certificate cert;
    std::vector<X509*> chain = readCertificates(c.cert, "certKey");
    cert.leaf = chain.front();
    cert.chain = sk_X509_new_null();
    for (std::size_t i = 1; i < chain.size(); ++i) sk_X509_push(cert.chain, chain[i]);
    for (X509* x : extra.list) {
      X509_up_ref(x);
      sk_X509_push(cert.chain, x);
    }
    cert.name = commonName(cert.leaf);
    self->certificates_.push_back(cert);  // owned from here (freed by the destructor)
    self->certificates_.back().key = readKey(c.key);
    Certificate& loaded = self->certificates_.back();
    if (X509_check_private_key(loaded.leaf, loaded.key) != 1) {
      ERR_clear_error();
      throw TlsConfigError("privateKey " + c.key + " does not match certKey " + c.cert);
    }
    if (X509_cmp_current_time(X509_get0_notAfter(loaded.leaf)) < 0)
      throw TlsConfigError("certKey " + c.cert + ": the certificate has expired");
    if (X509_cmp_current_time(X509_get0_notBefore(loaded.leaf)) > 0)
      throw TlsConfigError("certKey " + c.cert + ": the certificate is not valid yet");
  }
  const Certificate& first = self->certificates_.front();
  if (SSL_CTX_use_cert_and_key(ctx, first.leaf, first.key, first.chain, 1) != 1)
    throw TlsConfigError("certKey " + options.certificates.front().cert + ": " + takeOpenSslErrors());
  if (self->certificates_.size() > 1) {
    SSL_CTX_set_tlsext_servername_callback(ctx, &TlsServerContext::onServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx, self.get());
  }

  if (!options.alpn.empty()) {
    for (const auto& p : options.alpn) {
      self->alpnWire_.push_back(static_cast<char>(p.size()));
      self->alpnWire_ += p;
    }
    SSL_CTX_set_alpn_select_cb(ctx, &TlsServerContext::onAlpn, self.get());
  }

  if (!options.caCerts.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.caCerts.c_str(), nullptr) != 1)
      throw TlsConfigError("caCerts " + options.caCerts + ": " + takeOpenSslErrors());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.caCerts.c_str());
    if (!names) throw TlsConfigError("caCerts " + options.caCerts + ": no CA certificate in it");
    SSL_CTX_set_client_CA_list(ctx, names);
    const bool required = options.clientCert == TlsOptions::ClientCert::Required;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    self->clientCertMode_ = required ? "required" : "optional";
  }

  SSL_CTX_set_app_data(ctx, self.get());
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &TlsServerContext::onTicketKey);
  // Tickets outlive a rotation (a resumption within the hour after it still works), not two.
  SSL_CTX_set_timeout(ctx, static_cast<long>(std::chrono::seconds(kTicketRotation).count()));
  return self;
}

TlsServerContext::~TlsServerContext() {
  for (auto& c : certificates_) {
    X509_free(c.leaf);
    EVP_PKEY_free(c.key);
    sk_X509_pop_free(c.chain, X509_free);
  }
  SSL_CTX_free(ctx_);
  OPENSSL_cleanse(ticketKeys_.data(), ticketKeys_.size() * sizeof(TicketKey));
}

SSL* TlsServerContext::newSession() const { return SSL_new(ctx_); }

std::string TlsServerContext::describe() const {
  std::string out = std::to_string(certificates_.size()) + (certificates_.size() == 1 ? " certificate (" : " certificates (");
  for (std::size_t i = 0; i < certificates_.size(); ++i) out += (i ? ", " : "") + certificates_[i].name;
  out += ")";
  if (!alpnWire_.empty()) {
    out += ", ALPN ";
    for (std::size_t i = 0; i < alpnWire_.size();) {
      const std::size_t n = static_cast<unsigned char>(alpnWire_[i]);
      out += (i ? "," : "") + alpnWire_.substr(i + 1, n);
      i += n + 1;
    }
  }
  if (!clientCertMode_.empty()) out += ", client certificates " + clientCertMode_;
  if (ktls_) out += ", ktls on";
  return out;
}

// SNI: the first certificate whose names match the client's server name; the
// default (first) one when none does or the client sent no name.
int TlsServerContext::onServerName(SSL* ssl, int*, void* arg) {
  auto* self = static_cast<TlsServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name || !*name) return SSL_TLSEXT_ERR_OK;
  for (std::size_t i = 1; i < self->certificates_.size(); ++i) {
    const Certificate& c = self->certificates_[i];
    if (X509_check_host(c.leaf, name, 0, 0, nullptr) == 1) {
      if (SSL_use_cert_and_key(ssl, c.leaf, c.key, c.chain, 1) != 1) return SSL_TLSEXT_ERR_ALERT_FATAL;
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_OK;
}

// ALPN: the server's first preference the client also offers. No overlap is a
// fatal no_application_protocol alert (RFC 7301 §3.2); a client that offers
// no ALPN at all is served without one.
int TlsServerContext::onAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                             unsigned int inlen, void* arg) {
  auto* self = static_cast<TlsServerContext*>(arg);
  const auto* server = reinterpret_cast<const unsigned char*>(self->alpnWire_.data());
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, server, static_cast<unsigned>(self->alpnWire_.size()), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

bool TlsServerContext::currentTicketKey(TicketKey& out) {
  std::lock_guard<std::mutex> lock(ticketMutex_);
  const auto now = std::chrono::steady_clock::now();
  if (ticketKeys_.empty() || now - ticketKeys_.front().made >= kTicketRotation) {
    TicketKey k{};
    if (RAND_bytes(k.name, sizeof k.name) != 1 || RAND_priv_bytes(k.aes, sizeof k.aes) != 1 ||
        RAND_priv_bytes(k.hmac, sizeof k.hmac) != 1)
      return false;
    k.made = now;
    ticketKeys_.insert(ticketKeys_.begin(), k);
    if (ticketKeys_.size() > 2) {
      OPENSSL_cleanse(&ticketKeys_.back(), sizeof(TicketKey));
      ticketKeys_.pop_back();
    }
  }
  out = ticketKeys_.front();
  return true;
}

// 1: this key, 2: this key, and issue a new ticket (it is the previous one), 0: unknown.
int TlsServerContext::findTicketKey(const unsigned char* name, TicketKey& out) {
  std::lock_guard<std::mutex> lock(ticketMutex_);
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < ticketKeys_.size(); ++i) {
    if (std::memcmp(ticketKeys_[i].name, name, sizeof out.name) != 0) continue;
    if (now - ticketKeys_[i].made >= 2 * kTicketRotation) return 0;
    out = ticketKeys_[i];
    return i == 0 ? 1 : 2;
  }
  return 0;
}

// OpenSSL's session-ticket key callback (man SSL_CTX_set_tlsext_ticket_key_evp_cb).
int TlsServerContext::onTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                                  EVP_MAC_CTX* mac, int encrypt) {
  auto* self = static_cast<TlsServerContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  TicketKey k;
  int result = 1;
  if (encrypt) {
    if (!self->currentTicketKey(k)) return -1;
    std::memcpy(name, k.name, sizeof k.name);
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1) return -1;
  } else {
    result = self->findTicketKey(name, k);
    if (result == 0) return 0;  // unknown or retired: a full handshake
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1) return -1;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof k.hmac),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  OPENSSL_cleanse(&k, sizeof k);
  return result;
}

std::shared_ptr<TlsClientContext> TlsClientContext::get(const std::string& caCerts, const std::string& certKey,
                                                        const std::string& privateKey) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<TlsClientContext>> cache;
  const std::string key = caCerts + '\0' + certKey + '\0' + privateKey;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  ERR_clear_error();
  std::shared_ptr<TlsClientContext> self(new TlsClientContext());
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) throw TlsConfigError("cannot create a TLS context: " + takeOpenSslErrors());
  self->ctx_ = ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, kIntermediateCiphers) != 1)
    throw TlsConfigError("cannot set the cipher list: " + takeOpenSslErrors());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (caCerts.empty() ? SSL_CTX_set_default_verify_paths(ctx) != 1
                      : SSL_CTX_load_verify_locations(ctx, caCerts.c_str(), nullptr) != 1)
    throw TlsConfigError((caCerts.empty() ? std::string("the system's trust store") : "caCerts " + caCerts) + ": " +
                         takeOpenSslErrors());
  if (!certKey.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, certKey.c_str()) != 1)
      throw TlsConfigError("certKey " + certKey + ": " + takeOpenSslErrors());
    if (SSL_CTX_use_PrivateKey_file(ctx, privateKey.c_str(), SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1)
      throw TlsConfigError("privateKey " + privateKey + ": " + takeOpenSslErrors());
  }
  cache.emplace(key, self);
  return self;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

SSL* TlsClientContext::newSession(const std::string& serverName) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  unsigned char ip[16];
  const bool isIp = ::inet_pton(AF_INET, serverName.c_str(), ip) == 1 || ::inet_pton(AF_INET6, serverName.c_str(), ip) == 1;
  if (isIp) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName.c_str());  // no SNI for an address (RFC 6066)
  } else {
    SSL_set_tlsext_host_name(ssl, serverName.c_str());
    SSL_set1_host(ssl, serverName.c_str());
  }
  return ssl;
}

}  // namespace protohost::host
