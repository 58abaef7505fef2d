// T36 (docs/reliability-matrix row): the fibonacci cluster under failures, with
// real servers started by the repo's own scripts: PostgreSQL 15 primary and
// synchronous standby (scripts/pg-test-server.sh), two hosts with
// store = postgres behind HAProxy 2.6 (etc/haproxy/fibonacci.cfg: leastconn,
// send-proxy-v2, /readyz checks). 50 clients x 1,000 NEXT through HAProxy;
// during the run one host is kill -9ed and restarted, the primary is kill -9ed
// and the standby promoted, and then PostgreSQL is stopped for 5 s (both hosts
// turn 503, HAProxy takes both out, service resumes by itself). Every answer is
// a Fibonacci number, none is handed out twice, no request waits beyond a
// stated bound, and the hosts' logs show the clients' address (PROXY v2), not
// HAProxy's.

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <iostream>
#include <mutex>
#include <unordered_map>

#include "PgTestServer.h"
#include "PluginE2eSupport.h"
#include "PortForwardE2eSupport.h"

namespace protohost::e2e::plugintest {
namespace {

using portforward::freeLoopbackPort;

constexpr auto kWait = 30s;
constexpr std::size_t kClients = 50, kPerClient = 1000;
// No request may wait longer than this for its line (a number or an ERR), and no
// client longer than kNumberBound for its next number, reconnects and retries included:
// a failover costs the failure detection (postgres_timeout_ms 1 s), libpq's connect to
// the promoted standby and the retry interval (1 s), with back-off up to 4 s.
constexpr auto kLineBound = 10s;
constexpr auto kNumberBound = 20s;
constexpr auto kClientPause = 20ms;  // after an ERR or a lost connection
constexpr auto kOutage = 5s;         // PostgreSQL stopped this long
constexpr const char* kClientAddress = "127.0.0.5";  // the clients' source address: HAProxy's is 127.0.0.1

std::size_t hashOf(std::string_view s) { return std::hash<std::string_view>{}(s); }

struct Stats {
  std::mutex mutex;
  std::unordered_map<std::size_t, int> owner;  // hash of an answer -> client
  std::size_t numbers = 0, errs = 0, reconnects = 0, repeats = 0, notFibonacci = 0;
  double maxLineSeconds = 0, maxNumberSeconds = 0;
  std::string firstProblem;
};

TEST(FibonacciT36, FiftyClientsThroughHaproxySurviveAHostKillAFailoverAndAnOutageWithoutARepeat) {
  PROTOHOST_REQUIRE_POSTGRES();
  if (::system("command -v haproxy >/dev/null 2>&1") != 0) {
    if (PgTestServer::inCi()) FAIL() << "haproxy not installed (scripts/bootstrap.sh)";
    GTEST_SKIP() << "haproxy not installed (scripts/bootstrap.sh)";
  }
  PgTestServer primary, standby;
  ASSERT_EQ(primary.start(), "");
  ASSERT_EQ(standby.startStandbyOf(primary), "");
  ASSERT_EQ(primary.sql("SELECT sync_state FROM pg_stat_replication"), "sync");

  // Fixed ports: a restarted host must come back where HAProxy looks for it.
  TempDir state;
  const std::uint16_t fib[2] = {freeLoopbackPort(), freeLoopbackPort()};
  const std::uint16_t admin[2] = {freeLoopbackPort(), freeLoopbackPort()};
  const std::string conninfo = "host=127.0.0.1,127.0.0.1 port=" + std::to_string(primary.port()) + "," +
                               std::to_string(standby.port()) +
                               " dbname=postgres user=protohost target_session_attrs=read-write";
  auto iniOf = [&](int h) {
    HostIni ini;
    ini.set("threads", "2");
    ini.set("log_level", "debug");  // the PROXY header lines
    ini.listener("fib", "fibonacci",
                 {{"proxy_protocol", "required"},
                  {"state_file", state / ("host" + std::to_string(h) + ".state")},
                  {"reserve_block", "256"},
                  {"store", "postgres"},
                  {"postgres", conninfo},
                  {"postgres_password_file", primary.passwordFile()},
                  {"postgres_timeout_ms", "1000"}},
                 "tcp:" + std::to_string(fib[h]) + ":interface=127.0.0.1");
    ini.raw("\n[admin]\nlisten = tcp:" + std::to_string(admin[h]) + ":interface=127.0.0.1\n");
    return ini.text();
  };
  std::unique_ptr<HostProcess> hosts[2];
  for (int h = 0; h < 2; ++h) {
    hosts[h] = std::make_unique<HostProcess>();
    hosts[h]->startWithConfig(iniOf(h));
  }
  for (int h = 0; h < 2; ++h)
    ASSERT_TRUE(waitUntil([&] { return httpGet(admin[h], "/readyz").status == 200; }, kWait)) << "host " << h;

  const std::uint16_t front = freeLoopbackPort();
  testsupport::ChildProcess haproxy(
      {.argv = {"haproxy", "-db", "-f", std::string(PROTOHOST_SOURCE_DIR) + "/etc/haproxy/fibonacci.cfg"},
       .searchPath = true,
       .env = {{"FIB_BIND", "127.0.0.1:" + std::to_string(front)},
               {"HOST_A", "127.0.0.1:" + std::to_string(fib[0])},
               {"HOST_B", "127.0.0.1:" + std::to_string(fib[1])},
               {"HOST_A_ADMIN_PORT", std::to_string(admin[0])},
               {"HOST_B_ADMIN_PORT", std::to_string(admin[1])}}});
  ASSERT_TRUE(waitAccepting(front, kWait)) << haproxy.stderrText();

  // The reference: hashes of answers 1..kMaxIndex (the answers are too large to keep: ~250 MB).
  constexpr std::size_t kMaxIndex = kClients * kPerClient + 20000;  // + the gaps of the failures
  std::unordered_map<std::size_t, std::uint32_t> indexOf;
  indexOf.reserve(kMaxIndex);
  {
    FibGenerator g;
    for (std::uint32_t k = 1; k <= kMaxIndex; ++k) {
      indexOf.emplace(hashOf(g.text()), k);
      g.advance();
    }
  }

  Stats stats;
  std::atomic<std::size_t> progress{0};
  auto problem = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(stats.mutex);
    if (stats.firstProblem.empty()) stats.firstProblem = what;
  };
  const auto started = Clock::now();
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      std::optional<TestClient> conn;
      std::size_t got = 0;
      auto lastNumber = Clock::now();
      bool pause = false;
      while (got < kPerClient) {
        if (Clock::now() - lastNumber > kNumberBound) {
          problem("client " + std::to_string(c) + " got no number for " + std::to_string(kNumberBound.count()) + " s");
          return;
        }
        if (pause) std::this_thread::sleep_for(kClientPause);  // a client's back-off, not a wait for a condition
        pause = false;
        try {
          if (!conn) conn.emplace(TestClient::connect(front, TestClient::Options{kLineBound, 0, 0, kClientAddress}));
          const auto asked = Clock::now();
          conn->sendAll("NEXT\n");
          const std::string line = conn->readLine();
          const double waited = std::chrono::duration<double>(Clock::now() - asked).count();
          std::lock_guard<std::mutex> lock(stats.mutex);
          stats.maxLineSeconds = std::max(stats.maxLineSeconds, waited);
          if (line.rfind("ERR", 0) == 0) {
            ++stats.errs;
            pause = true;  // fail closed: ask again a little later (HAProxy drains the host soon)
            continue;
          }
          auto it = indexOf.find(hashOf(line));
          if (it == indexOf.end()) {
            ++stats.notFibonacci;
            continue;
          }
          if (!stats.owner.emplace(it->first, static_cast<int>(c)).second) ++stats.repeats;
          ++stats.numbers;
          stats.maxNumberSeconds =
              std::max(stats.maxNumberSeconds, std::chrono::duration<double>(Clock::now() - lastNumber).count());
          lastNumber = Clock::now();
          ++got;
          ++progress;
        } catch (const IoError&) {
          // The host was killed, or HAProxy shut the session of a host marked down: reconnect.
          conn.reset();
          pause = true;
          std::lock_guard<std::mutex> lock(stats.mutex);
          ++stats.reconnects;
        }
      }
    });

  // The failures, at 20%, 50% and 75% of the answers.
  constexpr std::size_t kTotal = kClients * kPerClient;
  auto at = [&](double fraction) {
    return waitUntil([&] { return progress.load() >= static_cast<std::size_t>(fraction * kTotal); }, 240s);
  };
  double hostBackSeconds = 0, failoverSeconds = 0;
  if (at(0.2)) {
    EXPECT_TRUE(hosts[0]->signal(SIGKILL));
    EXPECT_TRUE(hosts[0]->waitExit(kWait).has_value());
    const auto killed = Clock::now();
    hosts[0] = std::make_unique<HostProcess>();
    hosts[0]->startWithConfig(iniOf(0));
    EXPECT_TRUE(waitUntil([&] { return httpGet(admin[0], "/readyz").status == 200; }, kWait));
    hostBackSeconds = std::chrono::duration<double>(Clock::now() - killed).count();
  }
  if (at(0.5)) {
    const auto killed = Clock::now();
    EXPECT_EQ(primary.kill(), "");
    EXPECT_EQ(standby.promote(), "");
    const std::size_t before = progress.load();
    EXPECT_TRUE(waitUntil([&] { return progress.load() > before + 1000; }, 60s)) << "no progress after the failover";
    failoverSeconds = std::chrono::duration<double>(Clock::now() - killed).count();
  }
  double outageReadySeconds = 0, resumeSeconds = 0;
  bool drained = false;
  if (at(0.75)) {
    // PostgreSQL (the promoted standby, now the only server) stopped for kOutage: both hosts
    // report 503 and HAProxy takes them out; started again, service resumes by itself.
    const auto stopped = Clock::now();
    EXPECT_EQ(standby.stop(), "");
    EXPECT_TRUE(waitUntil(
        [&] { return httpGet(admin[0], "/readyz").status == 503 && httpGet(admin[1], "/readyz").status == 503; },
        kWait));
    outageReadySeconds = std::chrono::duration<double>(Clock::now() - stopped).count();
    drained = waitUntil(
        [&] {
          const std::string log = haproxy.stderrText();
          return log.find("fibonacci_hosts/a is DOWN") != std::string::npos &&
                 log.find("fibonacci_hosts/b is DOWN") != std::string::npos;
        },
        kWait);
    EXPECT_TRUE(drained) << "HAProxy did not take both hosts out: " << haproxy.stderrText();
    std::this_thread::sleep_until(stopped + kOutage);  // the outage lasts kOutage
    const auto restarted = Clock::now();
    EXPECT_EQ(standby.start(), "");
    const std::size_t before = progress.load();
    EXPECT_TRUE(waitUntil([&] { return progress.load() > before + 1000; }, 60s)) << "no progress after the outage";
    resumeSeconds = std::chrono::duration<double>(Clock::now() - restarted).count();
  }
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();

  EXPECT_EQ(stats.firstProblem, "");
  EXPECT_EQ(stats.repeats, 0u) << "a number was handed out twice";
  EXPECT_EQ(stats.notFibonacci, 0u);
  EXPECT_EQ(stats.numbers, kTotal);
  EXPECT_LE(stats.maxLineSeconds, std::chrono::duration<double>(kLineBound).count());
  EXPECT_LE(stats.maxNumberSeconds, std::chrono::duration<double>(kNumberBound).count());
  // The hosts saw the clients' address from the PROXY v2 header, not HAProxy's 127.0.0.1.
  EXPECT_GT(countLogLines(*hosts[1], kClientAddress), 0u) << "no log line of host b names the clients' address";
  std::cout << "[ T36 ] " << stats.numbers << " answers to " << kClients << " clients in " << seconds
            << " s; ERR lines " << stats.errs << ", reconnects " << stats.reconnects << ", repeats " << stats.repeats
            << "; longest wait for a line " << stats.maxLineSeconds << " s (bound " << kLineBound.count()
            << " s), for a number " << stats.maxNumberSeconds << " s (bound " << kNumberBound.count()
            << " s); host killed -> ready again in " << hostBackSeconds << " s; primary killed -> 1000 more answers in "
            << failoverSeconds << " s; PostgreSQL stopped -> both hosts 503 in " << outageReadySeconds
            << " s, HAProxy took both out: " << (drained ? "yes" : "no") << ", started again after "
            << std::chrono::duration<double>(kOutage).count() << " s -> 1000 more answers in " << resumeSeconds << " s\n";
  for (auto& h : hosts) {
    EXPECT_TRUE(h->signal(SIGTERM));
    EXPECT_EQ(h->waitExit(kWait), 0);
  }
}

}  // namespace
}  // namespace protohost::e2e::plugintest
