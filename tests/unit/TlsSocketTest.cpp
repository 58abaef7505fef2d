// net/TlsSocket: both sides of a TLS connection in one thread, a server
// TlsSocket (TlsServerContext) and a client TlsSocket (TlsClientContext) over
// a non-blocking AF_UNIX socketpair, each step driven by hand: the handshake
// to Done, records of every size down to one byte, a write that the socket
// refuses (EAGAIN) retried from a moved buffer, decrypted input left inside
// OpenSSL (hasBufferedInput), and both ends of a stream (close_notify, and an
// EOF without it). Certificates: tests/tls/make-test-certs.sh at test time.

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "TempDir.h"
#include "net/TlsContext.h"
#include "net/TlsSocket.h"

namespace protohost::host {
namespace {

using testsupport::TempDir;

struct Certs {
  TempDir dir{"protohost-tlsunit"};
  Certs() {
    const std::string cmd = std::string(PROTOHOST_SOURCE_DIR) + "/tests/tls/make-test-certs.sh " + dir.path() + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("make-test-certs.sh failed");
  }
  std::string operator()(const std::string& name) const { return dir.path() + "/" + name; }
};

// Made once per test process (an RSA key takes a while); the tests only read them.
const Certs& sharedCerts() {
  static const Certs certs;
  return certs;
}

// A server and a client TlsSocket on the two ends of a socketpair.
struct Pair {
  const Certs& certs = sharedCerts();
  std::shared_ptr<TlsServerContext> serverCtx;
  std::shared_ptr<TlsClientContext> clientCtx;
  std::unique_ptr<TlsSocket> server, client;

  explicit Pair(int sendBuffer = 0) {
    TlsOptions o;
    o.certificates.push_back({certs("localhost.pem"), certs("localhost.key")});
    serverCtx = TlsServerContext::load(o, 0);
    clientCtx = TlsClientContext::get(certs("ca.pem"), "", "");
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    if (sendBuffer) {
      for (int fd : fds) {
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sendBuffer, sizeof sendBuffer);
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sendBuffer, sizeof sendBuffer);
      }
    }
    server = std::make_unique<TlsSocket>(fds[0], serverCtx->newSession(), false);
    client = std::make_unique<TlsSocket>(fds[1], clientCtx->newSession("localhost"), false, TlsSocket::Side::Client);
  }

  // Alternates both handshakes until both are done (bounded: a handful of flights).
  void handshake() {
    SocketLayer::Handshake s = SocketLayer::Handshake::InProgress, c = SocketLayer::Handshake::InProgress;
    for (int round = 0; round < 20 && (s != SocketLayer::Handshake::Done || c != SocketLayer::Handshake::Done); ++round) {
      c = client->handshake();
      s = server->handshake();
      ASSERT_NE(c, SocketLayer::Handshake::Failed) << client->failure();
      ASSERT_NE(s, SocketLayer::Handshake::Failed) << server->failure();
    }
    ASSERT_EQ(s, SocketLayer::Handshake::Done);
    ASSERT_EQ(c, SocketLayer::Handshake::Done);
  }
};

// Reads from @p s until @p want bytes arrived or a read would block; what it got.
std::string drain(SocketLayer& s, std::size_t want, std::size_t chunk = 65536) {
  std::string got;
  std::string buf(chunk, '\0');
  while (got.size() < want) {
    const ssize_t n = s.read(buf.data(), buf.size());
    if (n <= 0) break;
    got.append(buf.data(), static_cast<std::size_t>(n));
  }
  return got;
}

TEST(TlsSocketTest, HandshakeThenRecordsOfEverySizeBothWays) {
  Pair p;
  EXPECT_TRUE(p.server->handshakePending());
  EXPECT_EQ(p.server->tls(), nullptr) << "no facts before the handshake";
  p.handshake();
  ASSERT_NE(p.server->tls(), nullptr);
  EXPECT_EQ(p.server->tls()->version, "TLSv1.3");
  EXPECT_EQ(p.server->tls()->serverName, "localhost");
  EXPECT_FALSE(p.server->handshakePending());
  for (std::size_t size : {1u, 2u, 100u, 16383u, 16384u, 16385u, 100000u}) {
    std::string data(size, '\0');
    for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 7 + size);
    std::size_t sent = 0;
    std::string got;
    while (got.size() < size) {  // the socketpair holds less than 100 kB: write and read in turns
      if (sent < size) {
        const ssize_t n = p.client->write(data.data() + sent, size - sent);
        if (n > 0) sent += static_cast<std::size_t>(n);
        else ASSERT_EQ(errno, EAGAIN);
      }
      got += drain(*p.server, size - got.size());
    }
    EXPECT_EQ(got, data) << size;
    ASSERT_EQ(p.server->write(data.data(), std::min<std::size_t>(size, 16384)), static_cast<ssize_t>(std::min<std::size_t>(size, 16384)));
    EXPECT_EQ(drain(*p.client, std::min<std::size_t>(size, 16384)), data.substr(0, 16384)) << size;
  }
}

// A write the socket cannot take returns -1/EAGAIN (not a failure), and its
// retry from a moved copy of the same bytes (the Connection's output queue)
// goes on where it stopped; nothing is lost or doubled.
TEST(TlsSocketTest, RefusedWriteIsRetriedFromAMovedBufferWithNothingLost) {
  Pair p(4096);
  p.handshake();
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::size_t sent = 0;
  int refusals = 0;
  std::string got;
  while (got.size() < data.size()) {
    // A fresh copy each time: the retry's buffer moved, as SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows.
    const std::string pending = data.substr(sent);
    const ssize_t n = sent < data.size() ? p.server->write(pending.data(), pending.size()) : 0;
    if (n > 0) sent += static_cast<std::size_t>(n);
    else if (sent < data.size()) {
      ASSERT_EQ(errno, EAGAIN) << p.server->failure();
      ++refusals;
    }
    got += drain(*p.client, data.size() - got.size(), 1000);
  }
  EXPECT_GT(refusals, 0) << "the small socket buffers never refused a write: the test did not test";
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

// A read into a buffer smaller than the record leaves the rest decrypted
// inside OpenSSL, where epoll cannot see it: hasBufferedInput says so.
TEST(TlsSocketTest, ARecordReadInPiecesReportsBufferedInput) {
  Pair p;
  p.handshake();
  const std::string record(10000, 'r');
  ASSERT_EQ(p.client->write(record.data(), record.size()), 10000);
  char buf[1000];
  ssize_t n = -1;
  for (int i = 0; i < 5 && n < 0; ++i) n = p.server->read(buf, sizeof buf);  // the record may take a moment
  ASSERT_EQ(n, 1000);
  EXPECT_TRUE(p.server->hasBufferedInput());
  std::string rest = drain(*p.server, 9000, 1000);
  EXPECT_EQ(rest.size(), 9000u);
  EXPECT_FALSE(p.server->hasBufferedInput());
}

TEST(TlsSocketTest, CloseNotifyIsAnEofAndAPlainFinIsATruncation) {
  {
    Pair p;
    p.handshake();
    p.client->closeNotify();
    char buf[16];
    EXPECT_EQ(p.server->read(buf, sizeof buf), 0);
  }
  {
    Pair p;
    p.handshake();
    ::shutdown(p.client->fd(), SHUT_WR);  // FIN without close_notify
    char buf[16];
    EXPECT_EQ(p.server->read(buf, sizeof buf), -1);
    EXPECT_EQ(p.server->failure(), "TLS: peer closed without close_notify");
  }
}

TEST(TlsSocketTest, PlaintextIsAFailedHandshakeWithOpenSslsReason) {
  Pair p;
  const std::string http = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(::send(p.client->fd(), http.data(), http.size(), 0), static_cast<ssize_t>(http.size()));
  EXPECT_EQ(p.server->handshake(), SocketLayer::Handshake::Failed);
  EXPECT_NE(p.server->failure().find("http request"), std::string::npos) << p.server->failure();
}

TEST(TlsSocketTest, ClientRefusesACertificateForAnotherName) {
  Pair p;
  p.client = std::make_unique<TlsSocket>(p.client->release(), p.clientCtx->newSession("other.test"), false,
                                         TlsSocket::Side::Client);
  SocketLayer::Handshake c = SocketLayer::Handshake::InProgress;
  for (int round = 0; round < 20 && c == SocketLayer::Handshake::InProgress; ++round) {
    c = p.client->handshake();
    p.server->handshake();
  }
  EXPECT_EQ(c, SocketLayer::Handshake::Failed);
  EXPECT_NE(p.client->failure().find("certificate verify failed (hostname mismatch)"), std::string::npos)
      << p.client->failure();
}

TEST(TlsContextTest, KeyFileSafety) {
  const Certs& certs = sharedCerts();
  TempDir own("protohost-tlskey");
  const std::string key = own.path() + "/key.pem";
  std::filesystem::copy_file(certs("localhost.key"), key);
  ::chmod(key.c_str(), 0600);
  EXPECT_EQ(checkKeyFileSafety(key, 0), "");
  ::chmod(key.c_str(), 0604);
  EXPECT_EQ(checkKeyFileSafety(key, 0),
            "refusing private key " + key + ": it is readable or writable by others (mode 0604; chmod 600 " + key + ")");
  ::chmod(key.c_str(), 0640);
  EXPECT_NE(checkKeyFileSafety(key, 0).find("readable or writable by group (mode 0640"), std::string::npos);
  TlsOptions o;
  o.certificates.push_back({certs("localhost.pem"), key});
  EXPECT_THROW(TlsServerContext::load(o, 0), TlsConfigError);
}

}  // namespace
}  // namespace protohost::host
