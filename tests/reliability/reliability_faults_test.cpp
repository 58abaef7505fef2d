// Reliability matrix rows about misbehaving peers and plugins
// (docs/reliability.md): T02 a client that sends but does not
// read, T09 resets and half-closes mid-stream, T14 a throwing plugin (counter),
// T15 a blocking plugin (watchdog), T16 a crashing plugin under a supervisor.
// The real host binary, loopback only.

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "HostProcess.h"
#include "ReliabilitySupport.h"
#include "TestClient.h"

namespace protohost::reliability {
namespace {

using namespace std::chrono_literals;
using e2e::HostIni;
using e2e::HostProcess;
using e2e::PatternStream;
constexpr std::uint64_t kMiB = 1u << 20;

// ---------------------------------------------------------------- T02

TEST(ReliabilitySupport, Sha256KnownAnswers) {
  // FIPS 180-2 examples, so a T02 failure cannot come from the hash itself.
  EXPECT_EQ(Sha256::of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 split;
  const std::string million(1000000, 'a');
  split.update(std::string_view(million).substr(0, 333333));
  split.update(std::string_view(million).substr(333333));
  EXPECT_EQ(split.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(ReliabilitySupport, ExpositionCheckerFindsProblems) {
  const std::string good =
      "# HELP a_total A.\n# TYPE a_total counter\na_total{l=\"x\"} 1\na_total{l=\"y\"} 2\n"
      "# HELP g G.\n# TYPE g gauge\ng 0.5\n";
  EXPECT_TRUE(checkExposition(good).empty());
  EXPECT_EQ(metricValue(good, "a_total", {{"l", "y"}}), std::optional<double>(2));
  EXPECT_FALSE(checkExposition("a_total 1\n").empty()) << "no TYPE";
  EXPECT_FALSE(checkExposition("# HELP a A.\n# TYPE a counter\na 1\n").empty()) << "counter without _total";
  EXPECT_FALSE(checkExposition("# HELP g_total G.\n# TYPE g_total gauge\ng_total 1\n").empty()) << "gauge with _total";
  EXPECT_FALSE(checkExposition("# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n").empty()) << "bad name";
  EXPECT_FALSE(checkExposition("# HELP g G.\n# TYPE g gauge\ng{l=x} 1\n").empty()) << "unquoted label";
  EXPECT_FALSE(checkExposition("# HELP g G.\n# TYPE g gauge\ng 1\ng 2\n").empty()) << "duplicate series";
  EXPECT_FALSE(checkExposition("# HELP g G.\n# TYPE g gauge\ng 1").empty()) << "no final newline";
  EXPECT_FALSE(checkExposition("# HELP g G.\n# TYPE g gauge\ng one\n").empty()) << "bad value";
}

/// The maximum (third field) of /proc/sys/net/ipv4/@p name (tcp_rmem, tcp_wmem).
std::uint64_t tcpBufferMax(const std::string& name) {
  std::ifstream in("/proc/sys/net/ipv4/" + name);
  std::uint64_t min = 0, def = 0, max = 0;
  in >> min >> def >> max;
  return max ? max : 32 * kMiB;
}

/// Sends @p total pattern bytes from its own thread, hashing what it sends;
/// each send blocks at most 250 ms, and the first that times out marks the stall.
class HashingSender {
 public:
  HashingSender(std::uint16_t port, std::uint64_t total) : total_(total), pattern_(7) {
    TestClient::Options o;
    o.receiveBuffer = 4096;  // small window: the client barely takes anything back
    o.timeout = 5s;
    client_ = std::make_unique<TestClient>(TestClient::connect(port, o));
    timeval tv{0, 250000};
    ::setsockopt(client_->fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] { run(); });
  }
  ~HashingSender() {
    abort_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool waitStalled(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [this] { return stalledAt_ > 0 || finished_; });
    return stalledAt_ > 0;
  }
  std::uint64_t stalledAt() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stalledAt_;
  }
  std::uint64_t sent() const { return sent_.load(); }
  /// Joins the sender; returns its error ("" when all was sent) and the hash.
  std::string finish(std::string& hash) {
    if (thread_.joinable()) thread_.join();
    hash = hash_;
    return error_;
  }
  TestClient& client() { return *client_; }

 private:
  void run() {
    Sha256 sha;
    const auto deadline = Clock::now() + 120s;
    std::string buf(65536, '\0');
    std::uint64_t sent = 0;
    while (sent < total_ && !abort_) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), total_ - sent));
      pattern_.fill(sent, buf.data(), n);
      sha.update(std::string_view(buf.data(), n));
      std::size_t off = 0;
      while (off < n && !abort_) {
        ssize_t w = client_->sendSome(buf.data() + off, n - off);
        if (w > 0) {
          off += static_cast<std::size_t>(w);
          sent_.fetch_add(static_cast<std::uint64_t>(w));
          continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          {
            std::lock_guard<std::mutex> lock(mutex_);
            if (stalledAt_ == 0) stalledAt_ = sent_.load();
          }
          cv_.notify_all();
          if (Clock::now() > deadline) {
            error_ = "still stalled after 120 s";
            abort_ = true;
          }
          continue;
        }
        error_ = std::string("send: ") + std::strerror(errno);
        abort_ = true;
      }
      sent += off;
    }
    hash_ = sha.hex();
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    cv_.notify_all();
  }

  std::unique_ptr<TestClient> client_;
  const std::uint64_t total_;
  const PatternStream pattern_;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<bool> abort_{false};
  std::string error_, hash_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t stalledAt_ = 0;
  bool finished_ = false;
  std::thread thread_;
};

// T02 (what tests/e2e/e2e_backpressure_test.cpp does not cover): 100 MB sent
// by a client that does not read for 10 s. Its sends stall after a few MB and
// stay stalled for the whole 10 s; the host's own queue (read minus sent, from
// /metrics) stays at its 1 MiB bound and its RSS bounded; then the client reads
// everything, and the SHA-256 of what came back equals that of what was sent.
TEST(Reliability, T02_NonReadingClientThenReadsAndSha256Matches) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini;
  ini.listener("echo", "echo");
  ini.raw(kAdminSection);
  host.startWithConfig(ini.text());
  const std::uint16_t port = host.port("echo");
  const std::uint16_t admin = host.port("admin");
  const long startRss = host.rssKiB();

  constexpr std::uint64_t kTotal = 100'000'000;
  const auto begin = Clock::now();
  HashingSender sender(port, kTotal);
  ASSERT_TRUE(sender.waitStalled(20s)) << "sends never blocked; sent " << sender.sent();
  const std::uint64_t stalledAt = sender.stalledAt();
  long peakRss = host.rssKiB();
  while (Clock::now() - begin < 10s) {  // not reading for 10 s
    peakRss = std::max(peakRss, host.rssKiB());
    std::this_thread::sleep_for(50ms);
  }
  const std::uint64_t sentAfterHold = sender.sent();
  // What the host holds itself: read from the client but not yet sent back.
  const std::string page = scrapeMetrics(admin);
  const double hostIn = metricValue(page, "protohost_received_bytes_total", {{"listener", "echo"}}).value_or(-1);
  const double hostOut = metricValue(page, "protohost_sent_bytes_total", {{"listener", "echo"}}).value_or(-1);
  std::cout << "[   INFO   ] T02: first send stall after " << stalledAt << " bytes; " << sentAfterHold
            << " bytes sent after 10 s without reading; host read " << static_cast<long long>(hostIn) << ", sent "
            << static_cast<long long>(hostOut) << " (queued " << static_cast<long long>(hostIn - hostOut) << "); host RSS " << startRss << " KiB at start, peak " << peakRss << " KiB\n";
  // The rest of a stall is kernel socket buffers (client send, host receive
  // and send, autotuned up to the tcp_wmem / tcp_rmem maxima); the host's own
  // queue stops at its 1 MiB bound plus at most one round of reads (4 x 64 KiB).
  const std::uint64_t kernelMax = 2 * tcpBufferMax("tcp_wmem") + tcpBufferMax("tcp_rmem");
  const std::uint64_t stallBound = kernelMax + kMiB + 4 * 65536 + kMiB;
  std::cout << "[   INFO   ] T02: stall bound " << stallBound << " bytes (kernel buffer maxima " << kernelMax
            << " + host queue bound + 1 MiB)\n";
  EXPECT_LT(stalledAt, stallBound) << "the first send stall came later than kernel buffers + host bound allow";
  EXPECT_LE(sentAfterHold - stalledAt, kMiB) << "the client kept sending for 10 s while not reading";
  EXPECT_GE(hostIn, 0);
  EXPECT_LE(hostIn - hostOut, static_cast<double>(kMiB + 4 * 65536)) << "the host queued more than its bound";
  EXPECT_LT(peakRss, startRss + 16 * 1024) << "host RSS grew by more than 16 MiB";

  // Now read it all back, hashing.
  Sha256 received;
  std::uint64_t got = 0;
  std::string buf(1 << 20, '\0');
  const auto readBegin = Clock::now();
  while (got < kTotal && Clock::now() - readBegin < 120s) {
    ssize_t n = sender.client().recvSome(buf.data(), buf.size());
    if (n <= 0) {
      ADD_FAILURE() << "recv after " << got << " bytes: " << (n == 0 ? "EOF" : std::strerror(errno));
      break;
    }
    received.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    got += static_cast<std::uint64_t>(n);
    if (got % (8 * kMiB) < static_cast<std::uint64_t>(n)) peakRss = std::max(peakRss, host.rssKiB());
  }
  std::string sentHash;
  EXPECT_EQ(sender.finish(sentHash), "");
  const std::string receivedHash = received.hex();
  std::cout << "[   INFO   ] T02: read " << got << " bytes back in " << msSince(readBegin) << " ms; sha256 sent "
            << sentHash << ", received " << receivedHash << "; peak RSS " << peakRss << " KiB\n";
  EXPECT_EQ(got, kTotal);
  EXPECT_EQ(receivedHash, sentHash);
  EXPECT_LT(peakRss, startRss + 16 * 1024) << "host RSS grew by more than 16 MiB";
  EXPECT_EQ(sender.client().roundTrip("still there"), "still there");
  EXPECT_TRUE(host.running());
}

// ---------------------------------------------------------------- T09

// T09: clients that reset (SO_LINGER {1,0}) while the host is writing to them
// (an echo stream, a pipeline of fibonacci answers), and clients that
// half-close after sending. The host survives (no SIGPIPE), the half-closers
// get all their bytes then EOF, the resets are counted as errors, the open
// gauges return to 0 and the log is not flooded.
TEST(Reliability, T09_PeerResetAndHalfCloseMidStream) {
  TempDir state;
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini;
  ini.listener("echo", "echo");
  ini.listener("fibonacci", "fibonacci", {{"state_file", state.file("fib.state")}});
  ini.raw(kAdminSection);
  host.startWithConfig(ini.text());
  const std::uint16_t echo = host.port("echo"), fib = host.port("fibonacci"), admin = host.port("admin");
  const std::size_t mark = host.logLineCount();
  const std::string before = scrapeMetrics(admin);
  auto errorsOf = [](const std::string& page, const char* listener) {
    return metricValue(page, "protohost_connections_closed_total", {{"listener", listener}, {"reason", "error"}}).value_or(-1);
  };

  constexpr int kResets = 10, kHalfClosers = 10;
  std::vector<std::thread> threads;
  std::atomic<int> halfCloseOk{0};
  std::mutex errMutex;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& e) {
    std::lock_guard<std::mutex> lock(errMutex);
    errors.push_back(e);
  };
  for (int i = 0; i < kResets; ++i) {
    // Echo: push 2 MB, read a little, reset while the host has output queued.
    threads.emplace_back([&, i] {
      try {
        TestClient::Options o;
        o.receiveBuffer = 8192;
        TestClient c = TestClient::connect(echo, o);
        const std::string chunk = PatternStream(static_cast<std::uint64_t>(i)).bytes(0, 64 * 1024);
        timeval tv{0, 200000};
        ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        std::uint64_t sent = 0;
        for (int k = 0; k < 32; ++k) {
          ssize_t n = c.sendSome(chunk.data(), chunk.size());
          if (n <= 0) break;  // back-pressure: enough is queued
          sent += static_cast<std::uint64_t>(n);
        }
        char buf[4096];
        c.recvSome(buf, sizeof buf);
        if (sent < 256 * 1024) fail("echo reset client " + std::to_string(i) + " sent only " + std::to_string(sent));
        c.resetClose();
      } catch (const std::exception& e) {
        fail("echo reset client " + std::to_string(i) + ": " + e.what());
      }
    });
    // Fibonacci: ask for 500 answers, read one, reset while they are being written.
    threads.emplace_back([&, i] {
      try {
        TestClient::Options o;
        o.receiveBuffer = 4096;
        TestClient c = TestClient::connect(fib, o);
        std::string requests;
        for (int k = 0; k < 500; ++k) requests += "NEXT\n";
        c.sendAll(requests);
        c.readLine();
        c.resetClose();
      } catch (const std::exception& e) {
        fail("fibonacci reset client " + std::to_string(i) + ": " + e.what());
      }
    });
  }
  for (int i = 0; i < kHalfClosers; ++i) {
    threads.emplace_back([&, i] {
      try {
        TestClient c = TestClient::connect(echo);
        const std::string data = PatternStream(100u + static_cast<std::uint64_t>(i)).bytes(0, 100 * 1024);
        c.sendAll(data);
        c.shutdownWrite();
        TestClient::Closed r = c.waitClosed(10s);
        if (r.how != Ending::Eof) fail("half-closer " + std::to_string(i) + " ended with " + endingName(r.how));
        else if (r.data != data) fail("half-closer " + std::to_string(i) + " got " + std::to_string(r.data.size()) + " bytes");
        else ++halfCloseOk;
      } catch (const std::exception& e) {
        fail("half-closer " + std::to_string(i) + ": " + e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_EQ(halfCloseOk.load(), kHalfClosers);

  std::string after;
  const bool drained = waitUntil(
      [&] {
        after = scrapeMetrics(admin);
        return metricValue(after, "protohost_connections_open", {{"listener", "echo"}}) == std::optional<double>(0) &&
               metricValue(after, "protohost_connections_open", {{"listener", "fibonacci"}}) == std::optional<double>(0);
      },
      10s, 50ms);
  EXPECT_TRUE(drained) << "open gauges did not return to 0:\n" << after;
  const double echoErrors = errorsOf(after, "echo") - errorsOf(before, "echo");
  const double fibErrors = errorsOf(after, "fibonacci") - errorsOf(before, "fibonacci");
  const std::size_t logLines = logLinesSince(host, mark).size();
  std::cout << "[   INFO   ] T09: closed{reason=\"error\"} +" << echoErrors << " (echo), +" << fibErrors
            << " (fibonacci) for " << kResets << " resets each; " << halfCloseOk.load() << "/" << kHalfClosers
            << " half-closers complete; " << logLines << " log lines\n";
  EXPECT_EQ(echoErrors, kResets) << "each reset should be counted as an error close";
  EXPECT_EQ(fibErrors, kResets) << "each reset should be counted as an error close";
  EXPECT_LE(logLines, static_cast<std::size_t>(2 * kResets + kHalfClosers)) << "log flood";

  ASSERT_TRUE(host.running()) << "host died (SIGPIPE?)";
  EXPECT_EQ(TestClient::connect(echo).roundTrip("still serving"), "still serving");
  TestClient f = TestClient::connect(fib);
  f.sendAll("NEXT\n");
  EXPECT_TRUE(isDecimal(f.readLine()));
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(10s), std::optional<int>(0));
}

// ---------------------------------------------------------------- T14

// T14 (beyond tests/e2e/e2e_throwing_test.cpp): each exception a plugin throws
// raises protohost_plugin_errors_total{listener,plugin} by one and
// closed_total{reason="plugin_error"} too, is logged exactly once with the
// listener, plugin and what(), and other listeners' counters stay at 0.
TEST(Reliability, T14_ThrowingPluginCountedInMetrics) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  const std::string plugins =
      host.linkPlugins({std::string(e2e::kPluginDir) + "/echo.so", std::string(e2e::kTestPluginDir) + "/throwing.so"});
  HostIni ini(plugins);
  ini.listener("echo", "echo");
  ini.listener("throwing", "throwing");
  ini.raw(kAdminSection);
  host.startWithConfig(ini.text());
  const std::uint16_t echo = host.port("echo"), throwing = host.port("throwing"), admin = host.port("admin");
  const std::map<std::string, std::string> throwingLabels{{"listener", "throwing"}, {"plugin", "throwing"}};

  std::string page = scrapeMetrics(admin);
  EXPECT_EQ(metricValue(page, "protohost_plugin_errors_total", throwingLabels), std::optional<double>(0)) << page;

  TestClient echoClient = TestClient::connect(echo);
  ASSERT_EQ(echoClient.roundTrip("before"), "before");
  const std::size_t mark = host.logLineCount();
  int expected = 0;
  for (const std::string trigger : {"throw please", "int please", "throw again"}) {
    TestClient c = TestClient::connect(throwing);
    c.sendAll(trigger);
    TestClient::Closed r = c.waitClosed(5s);
    EXPECT_TRUE(r.how == Ending::Eof || r.how == Ending::Reset) << trigger << ": " << endingName(r.how);
    EXPECT_EQ(r.data, "") << trigger;
    ++expected;
    const bool counted = waitUntil(
        [&] {
          page = scrapeMetrics(admin);
          return metricValue(page, "protohost_plugin_errors_total", throwingLabels) == std::optional<double>(expected);
        },
        5s, 20ms);
    EXPECT_TRUE(counted) << "after \"" << trigger << "\": plugin_errors_total is "
                         << metricValue(page, "protohost_plugin_errors_total", throwingLabels).value_or(-1) << ", want "
                         << expected;
    EXPECT_EQ(echoClient.roundTrip("between"), "between");
  }
  EXPECT_EQ(metricValue(page, "protohost_connections_closed_total", {{"listener", "throwing"}, {"reason", "plugin_error"}}),
            std::optional<double>(expected));
  EXPECT_EQ(metricValue(page, "protohost_plugin_errors_total", {{"listener", "echo"}}), std::optional<double>(0));

  // Logged once per failure, with listener, plugin name and what().
  std::this_thread::sleep_for(200ms);
  const std::vector<std::string> lines = logLinesSince(host, mark);
  std::size_t boom = 0, nonStd = 0;
  for (const auto& l : lines) {
    if (l.find("ERROR") == std::string::npos) continue;
    const bool named = l.find("listener=throwing") != std::string::npos && l.find("plugin throwing") != std::string::npos;
    if (l.find("boom") != std::string::npos) {
      ++boom;
      EXPECT_TRUE(named) << l;
    }
    if (l.find("non-standard") != std::string::npos) {
      ++nonStd;
      EXPECT_TRUE(named) << l;
    }
  }
  std::cout << "[   INFO   ] T14: plugin_errors_total{listener=\"throwing\"} = " << expected << " after " << expected
            << " throws; error lines: " << boom << " boom, " << nonStd << " non-standard\n";
  EXPECT_EQ(boom, 2u);
  EXPECT_EQ(nonStd, 1u);
  EXPECT_TRUE(host.running());
}

// ---------------------------------------------------------------- T15

// T15: threads = 2, watchdog_ms = 500. A blocking-plugin request blocks one
// reactor for 2 s: the watchdog logs it within ~1 s and counts it
// (protohost_watchdog_misses_total >= 1), while echo keeps answering on the
// other reactor, for an existing session and for new connections (accepted on
// the acceptor thread and given to the reactor that is not stalled).
TEST(Reliability, T15_BlockingPluginWatchdogWhileOthersServe) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  const std::string plugins =
      host.linkPlugins({std::string(e2e::kPluginDir) + "/echo.so", std::string(e2e::kTestPluginDir) + "/blocking.so"});
  HostIni ini(plugins);
  ini.set("threads", "2").set("watchdog_ms", "500");
  ini.listener("echo", "echo");
  ini.listener("blocking", "blocking");
  ini.raw(kAdminSection);
  host.startWithConfig(ini.text());
  const std::uint16_t echo = host.port("echo"), blocking = host.port("blocking"), admin = host.port("admin");
  EXPECT_EQ(metricValue(scrapeMetrics(admin), "protohost_watchdog_misses_total"), std::optional<double>(0));
  const std::vector<std::string> names = host.threadNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "acceptor"), names.end()) << "no acceptor thread with threads = 2";

  // The echo session first, then the blocking one: least-connections puts them
  // on different reactors.
  TestClient session = TestClient::connect(echo);
  ASSERT_EQ(session.roundTrip("before"), "before");
  TestClient blocker = TestClient::connect(blocking);
  blocker.sendAll("0\n");
  ASSERT_EQ(blocker.readLine(), "done");  // at once: the connection is set up

  const std::size_t mark = host.logLineCount();
  const auto blockBegin = Clock::now();
  blocker.sendAll("2000\n");
  // Meanwhile the existing echo session keeps answering.
  long long maxRtt = 0;
  int rtts = 0;
  std::optional<std::string> watchdogLine;
  long long watchdogMs = -1;
  while (Clock::now() - blockBegin < 1500ms) {
    const auto t0 = Clock::now();
    EXPECT_EQ(session.roundTrip("during"), "during");
    maxRtt = std::max(maxRtt, msSince(t0));
    ++rtts;
    if (!watchdogLine) {
      watchdogLine = host.waitForLog("watchdog", 0ms, mark);
      if (watchdogLine) watchdogMs = msSince(blockBegin);
    }
    std::this_thread::sleep_for(10ms);
  }
  if (!watchdogLine) {
    watchdogLine = host.waitForLog("watchdog", 2s, mark);
    if (watchdogLine) watchdogMs = msSince(blockBegin);
  }
  ASSERT_TRUE(watchdogLine.has_value()) << "no watchdog log line";
  EXPECT_NE(watchdogLine->find("watchdog"), std::string::npos);

  // New connections while the other reactor is still blocked: served at once.
  long long newMax = 0;
  for (int i = 0; i < 5 && Clock::now() - blockBegin < 1800ms; ++i) {
    const auto t0 = Clock::now();
    TestClient::Options o;
    o.timeout = 3s;
    TestClient fresh = TestClient::connect(echo, o);
    EXPECT_EQ(fresh.roundTrip("new " + std::to_string(i)), "new " + std::to_string(i));
    newMax = std::max(newMax, msSince(t0));
  }
  const std::string page = scrapeMetrics(admin);
  const double misses = metricValue(page, "protohost_watchdog_misses_total").value_or(-1);
  const bool stillBlocked = Clock::now() - blockBegin < 2000ms;

  blocker.setTimeout(5s);
  EXPECT_EQ(blocker.readLine(), "done");
  std::cout << "[   INFO   ] T15: watchdog line after " << watchdogMs << " ms: " << *watchdogLine << "\n"
            << "[   INFO   ] T15: existing echo session: " << rtts << " round trips during the block, max " << maxRtt
            << " ms; new connections max " << newMax << " ms; watchdog_misses_total " << misses
            << (stillBlocked ? " (scraped during the block)" : " (scraped after the block)") << "\n";
  EXPECT_LE(watchdogMs, 1000 + 250) << "watchdog reported late";
  EXPECT_GE(misses, 1);
  EXPECT_GE(rtts, 20);
  EXPECT_LT(maxRtt, 250) << "the echo session waited for the blocked reactor";
  EXPECT_LT(newMax, 500) << "a new echo connection waited for the blocked reactor";
  EXPECT_TRUE(host.waitForLog("watchdog: reactor thread runs again", 3s, mark).has_value());
  EXPECT_TRUE(host.running());
}

// ---------------------------------------------------------------- T16

// T16: crashing.so and fibonacci on one host, under a tiny supervisor (this
// test): "crash" kills the host with SIGSEGV; it is restarted (3 times) on the
// same state file. Every fibonacci answer, across all runs, is larger than
// every earlier one (disjoint and increasing).
TEST(Reliability, T16_CrashingPluginSupervisorRestartsFibonacciMonotonic) {
  // No core files from the deliberate crashes (the host inherits this limit).
  rlimit noCore{0, 0};
  ::setrlimit(RLIMIT_CORE, &noCore);
  TempDir state;
  const std::string stateFile = state.file("fib.state");

  std::vector<std::string> answers;  // all runs, in order
  std::vector<std::size_t> runStarts;
  std::vector<int> statuses;
  constexpr int kCrashes = 3;
  for (int run = 0; run <= kCrashes; ++run) {
    HostProcess host;
    const std::string plugins = host.linkPlugins(
        {std::string(e2e::kPluginDir) + "/fibonacci.so", std::string(e2e::kTestPluginDir) + "/crashing.so"});
    HostIni ini(plugins);
    ini.listener("fibonacci", "fibonacci", {{"state_file", stateFile}, {"reserve_block", "32"}});
    ini.listener("crashing", "crashing");
    host.startWithConfig(ini.text());
    std::uint16_t fib = 0, crashing = 0;
    try {
      fib = host.port("fibonacci");
      crashing = host.port("crashing");
    } catch (const std::exception& e) {
      FAIL() << "run " << run << ": " << e.what();
    }
    runStarts.push_back(answers.size());
    TestClient c = TestClient::connect(fib);
    for (int k = 0; k < 5; ++k) {
      c.sendAll("NEXT\n");
      answers.push_back(c.readLine());
    }
    TestClient crasher = TestClient::connect(crashing);
    ASSERT_EQ(crasher.roundTrip("hello"), "hello");
    if (run == kCrashes) {  // the last run ends cleanly
      ASSERT_TRUE(host.signal(SIGTERM));
      EXPECT_EQ(host.waitExit(10s), std::optional<int>(0));
      break;
    }
    crasher.sendAll("crash");
    const auto status = host.waitExit(10s);
    // The supervisor restarts a host killed by a signal; the row wants that signal to be SIGSEGV.
    ASSERT_TRUE(status.has_value() && *status > 128) << "run " << run << ": the host did not crash (status "
                                                     << (status ? std::to_string(*status) : "none") << ")\n"
                                                     << host.stderrText();
    statuses.push_back(*status);
    EXPECT_EQ(*status, 128 + SIGSEGV) << "run " << run << ": the host died by signal " << *status - 128 << " ("
                                      << strsignal(*status - 128) << "), not by SIGSEGV";
    EXPECT_NE(crasher.waitClosed(2s).how, Ending::Timeout);
    EXPECT_THROW(c.readLine(), IoError);  // the fibonacci client saw the crash too
  }

  std::string all;
  for (std::size_t i = 0; i < answers.size(); ++i) all += (i ? " " : "") + answers[i];
  std::cout << "[   INFO   ] T16: " << statuses.size() << " crash restarts, exit statuses:";
  for (int st : statuses) std::cout << " " << st;
  std::cout << "; answers per run start at index";
  for (auto s : runStarts) std::cout << " " << s;
  std::cout << ": " << all << "\n";
  ASSERT_EQ(answers.size(), 5u * (kCrashes + 1));
  for (std::size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(isDecimal(answers[i])) << "answer " << i << ": " << answers[i];
    if (i > 0) {
      EXPECT_TRUE(decimalLess(answers[i - 1], answers[i]))
          << "answer " << i << " (" << answers[i] << ") is not above answer " << i - 1 << " (" << answers[i - 1] << ")";
    }
  }
}

}  // namespace
}  // namespace protohost::reliability
