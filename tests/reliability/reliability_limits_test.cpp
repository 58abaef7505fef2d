// Reliability matrix rows about limits (docs/reliability.md):
// T03 idle timeout (also while the reactor is busy), T05 connection flood above
// max_connections, T06 per-IP limit, T07 fd exhaustion (EMFILE), T37 metrics
// across a flood. The real host binary, loopback only.

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
#include <numeric>
#include <optional>
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

long long percentile(std::vector<long long> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// ---------------------------------------------------------------- T03

// Hammers echo with @p clients connections from @p threads threads until stopped.
class EchoHammer {
 public:
  EchoHammer(std::uint16_t port, int clients, int threads) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, port, n = clients / threads, t] { run(port, n, t); });
  }
  ~EchoHammer() { stop(); }
  bool waitConnected(int clients, std::chrono::milliseconds timeout) {
    return waitUntil([&] { return connected_.load() >= clients || failures_.load() > 0; }, timeout) &&
           failures_.load() == 0;
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  long roundTrips() const { return roundTrips_.load(); }
  int failures() const { return failures_.load(); }
  std::string firstError() {
    std::lock_guard<std::mutex> lock(mutex_);
    return firstError_;
  }

 private:
  void run(std::uint16_t port, int n, int t) {
    try {
      std::vector<TestClient> cs;
      TestClient::Options o;
      o.timeout = 5s;
      for (int i = 0; i < n && !stop_; ++i) {
        cs.push_back(TestClient::connect(port, o));
        ++connected_;
      }
      const std::string msg(512, static_cast<char>('a' + t));
      while (!stop_) {
        for (auto& c : cs) {
          if (c.roundTrip(msg) != msg) throw std::runtime_error("echo mismatch");
          ++roundTrips_;
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (firstError_.empty()) firstError_ = e.what();
      ++failures_;
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<int> connected_{0};
  std::atomic<long> roundTrips_{0};
  std::atomic<int> failures_{0};
  std::mutex mutex_;
  std::string firstError_;
  std::vector<std::thread> threads_;
};

// T03: idle_timeout_ms = 1000 on one reactor thread. An idle client gets EOF
// 1000 +- 500 ms after connecting, when the host is quiet and while 200 other
// clients hammer echo on the same reactor (for 2 x idle_timeout).
TEST(Reliability, T03_IdleTimeoutAlsoWhileReactorIsBusy) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini;  // threads = 1: the idle connection shares the reactor with the hammer
  ini.listener("echo", "echo", {{"idle_timeout_ms", "1000"}});
  host.startWithConfig(ini.text());
  const std::uint16_t port = host.port("echo");

  auto idleRun = [&](const char* what) -> long long {
    const auto begin = Clock::now();
    TestClient idle = TestClient::connect(port);
    TestClient::Closed closed = idle.waitClosed(5s);
    const long long ms = msSince(begin);
    EXPECT_EQ(closed.how, Ending::Eof) << what << ": idle client ended with " << endingName(closed.how) << " after "
                                       << ms << " ms";
    EXPECT_EQ(closed.data, "") << what;
    return ms;
  };

  const long long quietMs = idleRun("quiet host");

  constexpr int kHammerClients = 200;
  EchoHammer hammer(port, kHammerClients, 4);
  ASSERT_TRUE(hammer.waitConnected(kHammerClients, 30s)) << "hammer: " << hammer.firstError();
  const auto hammerBegin = Clock::now();
  const long before = hammer.roundTrips();
  const long long busyMs = idleRun("busy reactor");
  std::this_thread::sleep_until(hammerBegin + 2000ms);  // hammer for 2 x idle_timeout in all
  const long during = hammer.roundTrips() - before;
  hammer.stop();
  EXPECT_EQ(hammer.failures(), 0) << "a hammering client failed (idle-closed while active?): " << hammer.firstError();
  std::cout << "[   INFO   ] T03: idle EOF after " << quietMs << " ms (quiet), " << busyMs << " ms (busy: "
            << during << " echo round trips by " << kHammerClients << " clients meanwhile)\n";
  EXPECT_GT(during, 1000) << "the reactor was not busy";
  for (long long ms : {quietMs, busyMs}) {
    EXPECT_GE(ms, 500);
    EXPECT_LE(ms, 1500);
  }
  EXPECT_TRUE(host.running());
}

// T03 for a server-push listener: output counts as progress ("no input and no
// output progress"). Two weblog push listeners (push_interval_ms = 0) with
// idle_timeout_ms = 1000. A client of "busy", whose log gets a hit every
// 200 ms, only reads: it is still connected after 3 s and got hits in the last
// second. A client of "quiet", whose log never changes (no output after the
// <hits> root), still gets EOF 1000 +- 500 ms after connecting.
TEST(Reliability, T03_IdleTimeoutCountsOutputOfAPushListener) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  const std::string busyLog = host.writeFile("busy.log", "");
  const std::string quietLog = host.writeFile("quiet.log", "");
  HostIni ini;
  for (const auto& [name, log] : {std::pair<std::string, std::string>{"busy", busyLog}, {"quiet", quietLog}})
    ini.listener(name, "weblog",
                 {{"access_log", log}, {"mode", "push"}, {"push_interval_ms", "0"}, {"idle_timeout_ms", "1000"}});
  host.startWithConfig(ini.text());
  TestClient busy = TestClient::connect(host.port("busy"));
  const auto begin = Clock::now();
  TestClient quiet = TestClient::connect(host.port("quiet"));

  struct Seen {
    std::string data;
    long long closedMs = -1;  // -1: open
    long long lastDataMs = -1;
  };
  Seen seen[2];
  TestClient* clients[2] = {&busy, &quiet};
  std::ofstream append(busyLog, std::ios::app);
  int appended = 0;
  auto nextHit = begin;
  while (Clock::now() - begin < 3000ms && seen[0].closedMs < 0) {
    if (Clock::now() >= nextHit) {
      append << "127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /t03/" << appended++
             << " HTTP/1.0\" 200 2326 \"-\" \"t03\"\n"
             << std::flush;
      nextHit += 200ms;
    }
    pollfd fds[2] = {{busy.fd(), POLLIN, 0}, {seen[1].closedMs < 0 ? quiet.fd() : -1, POLLIN, 0}};
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(nextHit - Clock::now()).count();
    if (::poll(fds, 2, static_cast<int>(std::max<long long>(wait, 0) + 1)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = clients[i]->recvSome(buf, sizeof buf);
      if (n <= 0) {
        seen[i].closedMs = msSince(begin);
        continue;
      }
      seen[i].data.append(buf, static_cast<std::size_t>(n));
      seen[i].lastDataMs = msSince(begin);
    }
  }
  const long long ranMs = msSince(begin);
  std::size_t hits = 0;
  for (std::size_t at = 0; (at = seen[0].data.find("<hit ", at)) != std::string::npos; ++at) ++hits;
  std::cout << "[   INFO   ] T03 push: busy client got " << hits << " of " << appended << " hits, last at "
            << seen[0].lastDataMs << " ms, " << (seen[0].closedMs < 0 ? "still open" : "closed") << " after "
            << ranMs << " ms; quiet client closed after " << seen[1].closedMs << " ms\n";
  EXPECT_LT(seen[0].closedMs, 0) << "the reading push client was cut after " << seen[0].closedMs << " ms";
  EXPECT_GE(hits, 5u);
  EXPECT_GE(seen[0].lastDataMs, ranMs - 1000) << "no hit in the last second";
  EXPECT_GE(seen[1].closedMs, 500) << "quiet client";
  EXPECT_LE(seen[1].closedMs, 1500) << "quiet client";
  EXPECT_NE(seen[1].data.find("<hits>"), std::string::npos);
  EXPECT_TRUE(host.running());
}

// ---------------------------------------------------------------- T05 / T37

struct FloodResult {
  int refusedFast = 0;   // excess sockets closed (EOF/RST) within 1 s of connect
  int eof = 0, rst = 0;  // how they ended
  int served = 0;        // excess sockets that got echo data (must be 0)
  int notClosed = 0;     // still open after the wait
  std::vector<long long> closeMs;  // connect -> close, per excess socket
  std::vector<long long> rttMs;    // held sessions' round trips during the flood
  int rttFailures = 0;
  std::string rttError;
};

/// Holds @p held echo sessions (already admitted), opens @p excess more as fast
/// as possible and watches each until the host closes it; meanwhile the held
/// sessions do round trips. @p during runs once on the caller's thread while
/// the excess sockets are being opened (after every 25th).
FloodResult runFlood(std::uint16_t port, std::vector<TestClient>& held, int excess,
                     const std::function<void()>& during) {
  FloodResult r;
  std::atomic<bool> stop{false};
  std::mutex rttMutex;
  std::condition_variable rttDone;  // a round trip completed (r.rttMs grew)
  std::thread rtt([&] {
    std::size_t i = 0;
    while (!stop) {
      TestClient& c = held[i++ % held.size()];
      const std::string msg = "held " + std::to_string(i);
      const auto t0 = Clock::now();
      try {
        if (c.roundTrip(msg) != msg) throw std::runtime_error("echo mismatch");
        std::lock_guard<std::mutex> lock(rttMutex);
        r.rttMs.push_back(msSince(t0));
        rttDone.notify_all();
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(rttMutex);
        if (r.rttFailures++ == 0) r.rttError = e.what();
      }
    }
  });

  struct Pending {
    TestClient c;
    Clock::time_point connected;
    bool done = false;
  };
  std::vector<Pending> pending;
  pending.reserve(static_cast<std::size_t>(excess));
  auto harvest = [&](int timeoutMs) {
    std::vector<pollfd> fds;
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < pending.size(); ++i)
      if (!pending[i].done) {
        fds.push_back({pending[i].c.fd(), POLLIN, 0});
        idx.push_back(i);
      }
    if (fds.empty()) return;
    if (::poll(fds.data(), fds.size(), timeoutMs) <= 0) return;
    const auto now = Clock::now();
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (!fds[k].revents) continue;
      Pending& p = pending[idx[k]];
      char buf[256];
      ssize_t n = ::recv(p.c.fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      p.done = true;
      r.closeMs.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(now - p.connected).count());
      if (n > 0) ++r.served;
      else if (n == 0) ++r.eof;
      else ++r.rst;
    }
  };
  for (int i = 0; i < excess; ++i) {
    TestClient::Options o;
    o.timeout = 2s;
    try {
      pending.push_back(Pending{TestClient::connect(port, o), Clock::now(), false});
      harvest(0);
    } catch (const IoError& e) {  // refused before connect() returned: as fast as it gets
      r.closeMs.push_back(0);
      ++r.rst;
    }
    // Every 25th connection, whether or not its connect() was refused (a
    // `continue` here once skipped the scrapes T37 counts: CI saw 4 of 6).
    if (i % 25 == 12) {
      if (during) during();
      // The held sessions must be served while the flood goes on, however fast
      // the flood itself is: let 3 more of their round trips complete (or 1 s pass).
      std::unique_lock<std::mutex> lock(rttMutex);
      const std::size_t want = r.rttMs.size() + 3;
      rttDone.wait_for(lock, 1s, [&] { return r.rttMs.size() >= want || r.rttFailures > 0; });
    }
  }
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline &&
         std::any_of(pending.begin(), pending.end(), [](const Pending& p) { return !p.done; }))
    harvest(50);
  stop = true;
  rtt.join();
  for (const auto& p : pending) r.notClosed += p.done ? 0 : 1;
  for (long long ms : r.closeMs) r.refusedFast += ms < 1000 ? 1 : 0;
  return r;
}

/// A host with an echo listener limited to @p maxConnections and the admin endpoint.
struct FloodHost {
  HostProcess host;
  std::uint16_t echo = 0, admin = 0;
  explicit FloodHost(int maxConnections) {
    HostIni ini;
    ini.listener("echo", "echo", {{"max_connections", std::to_string(maxConnections)}});
    ini.raw(kAdminSection);
    host.startWithConfig(ini.text());
    echo = host.port("echo");
    admin = host.port("admin");
  }
  std::vector<TestClient> hold(int n) {
    std::vector<TestClient> held;
    for (int i = 0; i < n; ++i) {
      held.push_back(TestClient::connect(echo));
      const std::string msg = "hello " + std::to_string(i);
      if (held.back().roundTrip(msg) != msg) throw std::runtime_error("held session did not echo");
    }
    return held;
  }
};

// T05: max_connections = 50. Hold 50 echo sessions, open 150 more as fast as
// possible: each excess socket is reset at once (< 1 s, expected ~ms), the held
// sessions keep echoing, refused{reason="max_connections"} = 150, and the host's
// CPU use is back below 10 % of a core within a couple of seconds.
TEST(Reliability, T05_ConnectionFloodAboveMaxConnections) {
  constexpr int kMax = 50, kExcess = 150;
  FloodHost f(kMax);
  DumpLogOnFailure dump{f.host};
  std::vector<TestClient> held = f.hold(kMax);

  FloodResult r = runFlood(f.echo, held, kExcess, nullptr);
  const auto floodEnd = Clock::now();
  std::cout << "[   INFO   ] T05: " << kExcess << " excess: " << r.rst << " RST, " << r.eof << " EOF, " << r.served
            << " served, " << r.notClosed << " open; close after connect p50 " << percentile(r.closeMs, 0.5)
            << " ms, p99 " << percentile(r.closeMs, 0.99) << " ms, max " << percentile(r.closeMs, 1.0)
            << " ms; held round trips: " << r.rttMs.size() << ", p50 " << percentile(r.rttMs, 0.5) << " ms, max "
            << percentile(r.rttMs, 1.0) << " ms\n";
  EXPECT_EQ(r.served, 0) << "an excess connection was served";
  EXPECT_EQ(r.notClosed, 0) << "excess connections left open";
  EXPECT_EQ(r.refusedFast, kExcess) << "excess connections not closed within 1 s of connect";
  EXPECT_LT(percentile(r.closeMs, 0.5), 100) << "median connect->close";
  EXPECT_EQ(r.rttFailures, 0) << r.rttError;
  EXPECT_GT(r.rttMs.size(), 10u) << "the held sessions hardly ran during the flood";
  EXPECT_LT(percentile(r.rttMs, 0.5), 50) << "held sessions' median round trip during the flood";
  EXPECT_LT(percentile(r.rttMs, 1.0), 1000) << "held sessions' slowest round trip during the flood";

  // Every held session still echoes.
  for (std::size_t i = 0; i < held.size(); ++i) ASSERT_EQ(held[i].roundTrip("after"), "after") << "held " << i;

  const std::string metrics = scrapeMetrics(f.admin);
  EXPECT_EQ(metricValue(metrics, "protohost_connections_refused_total", {{"listener", "echo"}, {"reason", "max_connections"}}),
            std::optional<double>(kExcess))
      << metrics;
  EXPECT_EQ(metricValue(metrics, "protohost_connections_open", {{"listener", "echo"}}), std::optional<double>(kMax));
  EXPECT_EQ(metricValue(metrics, "protohost_connections_accepted_total", {{"listener", "echo"}}),
            std::optional<double>(kMax + kExcess));

  // CPU back to idle: some 1 s window within 3 s after the flood uses < 10 % of a core.
  std::vector<double> shares;
  while (shares.empty() || (shares.back() >= 0.10 && Clock::now() - floodEnd < 3s))
    shares.push_back(cpuShare(f.host.pid(), 1000ms));
  std::cout << "[   INFO   ] T05: host CPU after the flood:";
  for (double s : shares) std::cout << " " << s * 100 << "%";
  std::cout << " of one core per 1 s window\n";
  EXPECT_LT(shares.back(), 0.10);
  EXPECT_TRUE(f.host.running());
}

// T37: /metrics scraped before, during and after a T05 flood: every page is
// valid text format (TYPE before samples, names, counters end in _total, ...),
// no counter ever decreases, and the open-connections gauge returns to its
// baseline once the held sessions close. /healthz and /readyz answer 200.
TEST(Reliability, T37_MetricsAcrossConnectionFlood) {
  constexpr int kMax = 50, kExcess = 150;
  FloodHost f(kMax);
  DumpLogOnFailure dump{f.host};

  std::vector<std::string> pages;
  pages.push_back(scrapeMetrics(f.admin));
  const std::string before = pages.front();
  const auto baseline = metricValue(before, "protohost_connections_open", {{"listener", "echo"}});
  ASSERT_TRUE(baseline.has_value()) << before;
  EXPECT_EQ(httpGet(f.admin, "/healthz").status, 200);
  EXPECT_EQ(httpGet(f.admin, "/readyz").status, 200);

  std::vector<TestClient> held = f.hold(kMax);
  pages.push_back(scrapeMetrics(f.admin));

  // Scrapes during the flood, one at a time (concurrent scrapes have no order
  // to compare counters by).
  std::string scrapeError;
  FloodResult r = runFlood(f.echo, held, kExcess, [&] {
    try {
      pages.push_back(scrapeMetrics(f.admin));
    } catch (const std::exception& e) {
      if (scrapeError.empty()) scrapeError = e.what();
    }
  });
  EXPECT_EQ(scrapeError, "") << "a scrape during the flood failed";
  EXPECT_EQ(r.refusedFast, kExcess);
  const std::size_t duringFlood = pages.size() - 2;

  held.clear();  // close the held sessions: the gauge must come back
  std::string after;
  const bool back = waitUntil(
      [&] {
        after = scrapeMetrics(f.admin);
        return metricValue(after, "protohost_connections_open", {{"listener", "echo"}}) == baseline;
      },
      5s, 50ms);
  pages.push_back(after);
  EXPECT_TRUE(back) << "protohost_connections_open{listener=\"echo\"} did not return to " << *baseline << "\n" << after;
  EXPECT_EQ(metricValue(after, "protohost_connections_refused_total", {{"listener", "echo"}, {"reason", "max_connections"}}),
            std::optional<double>(kExcess));
  EXPECT_EQ(httpGet(f.admin, "/healthz").status, 200);
  EXPECT_EQ(httpGet(f.admin, "/readyz").status, 200);

  // Format of every page, and counters never decrease from one page to the next.
  std::size_t counterSeries = 0;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    std::vector<std::string> problems = checkExposition(pages[i]);
    EXPECT_TRUE(problems.empty()) << "scrape " << i << ":\n"
                                  << std::accumulate(problems.begin(), problems.end(), std::string(),
                                                     [](std::string a, const std::string& b) { return a + b + "\n"; });
    if (i == 0) continue;
    const auto types = metricTypes(pages[i - 1]);
    std::map<std::string, double> prev;
    for (const auto& s : parseMetrics(pages[i - 1])) prev[s.series()] = s.value;
    for (const auto& s : parseMetrics(pages[i])) {
      auto t = types.find(s.name);
      if (t == types.end() || t->second != "counter") continue;
      auto p = prev.find(s.series());
      if (p == prev.end()) continue;
      ++counterSeries;
      EXPECT_GE(s.value, p->second) << "counter " << s.series() << " decreased between scrape " << i - 1 << " and " << i;
    }
  }
  std::cout << "[   INFO   ] T37: " << pages.size() << " scrapes (" << duringFlood << " during the flood), " << counterSeries
            << " counter comparisons, echo open gauge " << *baseline << " -> "
            << metricValue(after, "protohost_connections_open", {{"listener", "echo"}}).value_or(-1) << "\n";
  EXPECT_GE(duringFlood, 5u);
  EXPECT_GT(counterSeries, 0u);
}

// T37 (promtool): `promtool check metrics` accepts a real scrape. Left out of
// gtest_discover_tests; registered as its own ctest only when CMake finds
// promtool (which also sets PROTOHOST_PROMTOOL); skips without it.
TEST(ReliabilityPromtool, T37_PromtoolChecksMetrics) {
  const char* promtool = std::getenv("PROTOHOST_PROMTOOL");
  if (!promtool || !*promtool) GTEST_SKIP() << "PROTOHOST_PROMTOOL not set";
  FloodHost f(2);
  DumpLogOnFailure dump{f.host};
  std::vector<TestClient> held = f.hold(2);
  // The third client is refused: the refusal counter moves. The RST can land
  // before connect() reports success, so a reset connect is that refusal too.
  try {
    TestClient extra = TestClient::connect(f.echo);
    extra.waitClosed(2s);
  } catch (const IoError& e) {
    ASSERT_EQ(e.error(), ECONNRESET) << e.what();
  }
  std::string scraped;
  ASSERT_TRUE(waitUntil(
      [&] {
        scraped = scrapeMetrics(f.admin);
        return metricValue(scraped, "protohost_connections_refused_total",
                           {{"listener", "echo"}, {"reason", "max_connections"}}) == std::optional<double>(1);
      },
      5s, 20ms))
      << scraped;
  TempDir dir;
  const std::string page = dir.write("metrics.txt", scraped);
  const std::string out = dir.file("promtool.out");
  const std::string cmd = std::string("'") + promtool + "' check metrics < '" + page + "' > '" + out + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << cmd << " -> " << rc << "\n" << text;
  std::cout << "[   INFO   ] promtool check metrics: exit " << (WIFEXITED(rc) ? WEXITSTATUS(rc) : -1) << " " << text << "\n";
}

// ---------------------------------------------------------------- T06

// T06: max_connections_per_ip = 10. 20 clients bound to 127.0.0.2: the first
// 10 are served, the other 10 are reset at once; a client from 127.0.0.3 is
// served; once a .2 client leaves, another .2 client gets in.
TEST(Reliability, T06_PerIpLimit) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini;
  ini.listener("echo", "echo", {{"max_connections_per_ip", "10"}});
  ini.raw(kAdminSection);
  host.startWithConfig(ini.text());
  const std::uint16_t port = host.port("echo");
  const std::uint16_t admin = host.port("admin");

  // Served: the echo comes back. Refused: EOF or RST before any data.
  struct Outcome {
    bool served = false;
    long long ms = 0;
    std::string how;
  };
  auto attempt = [&](const std::string& source, std::vector<TestClient>& keep) {
    Outcome o;
    TestClient::Options opt;
    opt.source = source;
    opt.timeout = 3s;
    const auto t0 = Clock::now();
    std::optional<TestClient> connected;
    try {
      connected.emplace(TestClient::connect(port, opt));
    } catch (const IoError& e) {  // reset before connect() reported success: refused
      o.ms = msSince(t0);
      o.how = e.error() == ECONNRESET ? "RST" : std::string("connect: ") + e.what();
      return o;
    }
    TestClient& c = *connected;
    c.sendSome("ping\n", 5);  // may fail once the RST is in: that is a refusal too
    char buf[16];
    const ssize_t n = c.recvSome(buf, sizeof buf);  // echo (served), EOF or RST (refused), or the 3 s timeout
    const int err = errno;
    o.ms = msSince(t0);
    if (n > 0) {
      o.served = std::string_view(buf, static_cast<std::size_t>(n)) == std::string_view("ping\n").substr(0, static_cast<std::size_t>(n));
      o.how = o.served ? "served" : "wrong data";
      if (o.served) keep.push_back(std::move(*connected));
    } else if (n == 0) {
      o.how = "EOF";
    } else {
      o.how = err == ECONNRESET || err == EPIPE ? "RST" : err == EAGAIN ? "timeout" : std::strerror(err);
    }
    return o;
  };

  std::vector<TestClient> kept;
  int served = 0, refused = 0;
  long long slowestRefusal = 0;
  for (int i = 0; i < 20; ++i) {
    Outcome o = attempt("127.0.0.2", kept);
    if (i < 10) {
      EXPECT_TRUE(o.served) << "client " << i << " from 127.0.0.2: " << o.how;
    } else {
      EXPECT_FALSE(o.served) << "client " << i << " from 127.0.0.2 was served above the limit";
      EXPECT_TRUE(o.how == "RST" || o.how == "EOF") << "client " << i << ": " << o.how;
      EXPECT_LT(o.ms, 1000) << "client " << i << " refused only after " << o.ms << " ms";
      slowestRefusal = std::max(slowestRefusal, o.ms);
    }
    (o.served ? served : refused)++;
  }
  Outcome other = attempt("127.0.0.3", kept);
  EXPECT_TRUE(other.served) << "the 127.0.0.3 client: " << other.how;
  std::cout << "[   INFO   ] T06: from 127.0.0.2 " << served << " served, " << refused
            << " refused (slowest refusal " << slowestRefusal << " ms); 127.0.0.3 " << other.how << "\n";

  const std::string metrics = scrapeMetrics(admin);
  EXPECT_EQ(metricValue(metrics, "protohost_connections_refused_total", {{"listener", "echo"}, {"reason", "max_connections_per_ip"}}),
            std::optional<double>(10))
      << metrics;
  EXPECT_EQ(metricValue(metrics, "protohost_connections_open", {{"listener", "echo"}}), std::optional<double>(11));

  // The held ones still echo; one .2 client leaving makes room for another.
  for (auto& c : kept) EXPECT_EQ(c.roundTrip("again"), "again");
  kept.erase(kept.begin());
  std::vector<TestClient> more;
  const bool admitted = waitUntil([&] { return attempt("127.0.0.2", more).served; }, 3s, 50ms);
  EXPECT_TRUE(admitted) << "no room for a .2 client after one left";
}

// ---------------------------------------------------------------- T07

// T07: the host under `prlimit --nofile=64:64`; 200 clients connect and stay.
// While the host is out of fds it backs off instead of spinning (< 10 % of a
// core), logs "Too many open files" at most about once per second, and once the
// clients close, a new client is accepted (its echo arrives) within 1 s.
TEST(Reliability, T07_FdExhaustionBacksOffAndRecovers) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  host.setCommandPrefix({"prlimit", "--nofile=64:64"});
  HostIni ini;
  ini.listener("echo", "echo");
  host.startWithConfig(ini.text());
  const std::uint16_t port = host.port("echo");

  {
    std::ifstream limits("/proc/" + std::to_string(host.pid()) + "/limits");
    std::string line;
    bool found = false;
    while (std::getline(limits, line))
      if (line.rfind("Max open files", 0) == 0) {
        found = true;
        EXPECT_NE(line.find(" 64 "), std::string::npos) << line;
      }
    EXPECT_TRUE(found);
  }
  ASSERT_EQ(TestClient::connect(port).roundTrip("warm up"), "warm up");

  // 200 clients, connects started without waiting (the backlog takes them).
  std::vector<TestClient> clients;
  for (int i = 0; i < 200; ++i) clients.push_back(TestClient::start(port, TestClient::Options{}));
  const std::regex emfile("Too many open files");
  ASSERT_TRUE(host.waitForLog(emfile, 10s).has_value()) << "the host never hit EMFILE";
  const long fds = openFds(host.pid());

  // Saturated: hold for 4 s; CPU and log rate over that window.
  const std::size_t linesBefore = countMatches(host.stderrText(), emfile);
  const auto holdBegin = Clock::now();
  const double cpu = cpuShare(host.pid(), 4000ms);
  const double holdSeconds = std::chrono::duration<double>(Clock::now() - holdBegin).count();
  const std::size_t emfileLines = countMatches(host.stderrText(), emfile) - linesBefore;
  std::cout << "[   INFO   ] T07: host holds " << fds << " fds; while saturated for " << holdSeconds << " s: CPU "
            << cpu * 100 << "% of one core, " << emfileLines << " \"Too many open files\" lines\n";
  EXPECT_GE(fds, 60) << "the host did not reach its fd limit";
  EXPECT_LT(cpu, 0.10) << "the host spins while out of fds";
  EXPECT_GE(emfileLines, 1u) << "no EMFILE report while saturated";
  EXPECT_LE(static_cast<double>(emfileLines), holdSeconds + 1) << "EMFILE logged more than once per second";
  ASSERT_TRUE(host.running());

  // Free the fds: a new client is accepted within 1 s.
  clients.clear();
  const auto freed = Clock::now();
  TestClient::Options o;
  o.timeout = 5s;
  std::string echoed;
  long long acceptedMs = -1;
  try {
    TestClient fresh = TestClient::connect(port, o);
    echoed = fresh.roundTrip("after EMFILE");
    acceptedMs = msSince(freed);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "new client after the fds were freed: " << e.what();
  }
  std::cout << "[   INFO   ] T07: new client served " << acceptedMs << " ms after the 200 clients closed\n";
  EXPECT_EQ(echoed, "after EMFILE");
  EXPECT_GE(acceptedMs, 0);
  EXPECT_LE(acceptedMs, 1000);

  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(10s), std::optional<int>(0));
}

}  // namespace
}  // namespace protohost::reliability
