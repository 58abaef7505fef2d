// End-to-end: the fibonacci plugin with store = postgres, in real host
// processes, against a real PostgreSQL 15 started by scripts/pg-test-server.sh.
// Every answer is checked against the test's own big-number sequence.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <iostream>
#include <set>
#include <unordered_map>

#include "PgTestServer.h"
#include "PluginE2eSupport.h"

namespace protohost::e2e::plugintest {
namespace {

constexpr auto kWait = 30s;  // generous: other builds share this 2-core machine

HostIni pgIni(const std::string& dir, const PgTestServer& pg, HostIni::Keys extra = {}) {
  HostIni ini;
  ini.set("threads", "2");
  HostIni::Keys keys{{"state_file", dir + "/fib.state"},
                     {"store", "postgres"},
                     {"postgres", pg.conninfo()},
                     {"postgres_password_file", pg.passwordFile()}};
  keys.insert(keys.end(), extra.begin(), extra.end());
  ini.listener("fib", "fibonacci", keys);
  ini.raw("\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n");
  return ini;
}

int readyz(std::uint16_t admin) { return httpGet(admin, "/readyz").status; }

/// Answer text -> answer number, for answers 1..n.
std::unordered_map<std::string, std::uint64_t> answerIndex(std::size_t n) {
  std::unordered_map<std::string, std::uint64_t> out;
  FibGenerator g;
  for (std::uint64_t k = 1; k <= n; ++k) {
    out.emplace(g.text(), k);
    g.advance();
  }
  return out;
}

/// One client asking NEXT one at a time, and the ledger of what it got: every
/// number must be a Fibonacci answer (numbers 1..400) never seen before.
class OneByOne {
 public:
  explicit OneByOne(std::uint16_t port) : client_(port), indexOf_(answerIndex(400)) {}
  /// The next answer line ("<no line>" when none came).
  std::string ask() {
    if (!client_.send("NEXT\n")) return "<send failed>";
    auto r = client_.readLine();
    return r.status == LineClient::Status::Line ? r.line : "<no line>";
  }
  /// Records a number answer; fails the test on anything else or on a repeat. Returns its answer number.
  std::uint64_t expectNew(const std::string& line) {
    auto it = indexOf_.find(line);
    if (it == indexOf_.end()) {
      ADD_FAILURE() << "not a Fibonacci answer in range: " << line.substr(0, 80);
      return 0;
    }
    EXPECT_TRUE(seen_.insert(it->second).second) << "answer " << it->second << " repeated";
    highest_ = std::max(highest_, it->second);
    return it->second;
  }
  /// Asks until an ERR line comes (numbers before it are recorded): that line, or "" after @p timeout.
  std::string askUntilErr(std::chrono::milliseconds timeout) {
    std::string line;
    const bool got = waitUntil(
        [&] {
          line = ask();
          if (line.rfind("ERR", 0) == 0) return true;
          expectNew(line);
          return false;
        },
        timeout, 1ms);
    return got ? line : "";
  }
  std::uint64_t highest() const { return highest_; }
  std::size_t count() const { return seen_.size(); }

 private:
  LineClient client_;
  std::unordered_map<std::string, std::uint64_t> indexOf_;
  std::set<std::uint64_t> seen_;
  std::uint64_t highest_ = 0;
};

// ---------------------------------------------------------------------------
// Two hosts on one PostgreSQL sequence, 10 clients x 200 NEXT spread over
// both: every answer is a Fibonacci number, none is handed out twice, and each
// client's answers increase.
TEST(FibonacciPostgresE2e, TwoHostsTenClientsTimesTwoHundredShareOneSequenceWithoutARepeat) {
  PROTOHOST_REQUIRE_POSTGRES();
  constexpr std::size_t kClients = 10, kPerClient = 200, kBlock = 64;
  PgTestServer pg;
  ASSERT_EQ(pg.start(), "");
  HostProcess a, b;
  a.startWithConfig(pgIni(a.dir(), pg, {{"reserve_block", std::to_string(kBlock)}}).text());
  b.startWithConfig(pgIni(b.dir(), pg, {{"reserve_block", std::to_string(kBlock)}}).text());
  const std::uint16_t ports[2] = {a.port("fib", kWait), b.port("fib", kWait)};
  const std::uint16_t admins[2] = {a.port("admin", kWait), b.port("admin", kWait)};
  for (auto admin : admins) ASSERT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, kWait)) << "never ready";

  // Each host holds at most its current block and one ahead: the highest answer is bounded.
  const auto indexOf = answerIndex(kClients * kPerClient + 8 * kBlock);
  std::vector<std::vector<std::string>> answers(kClients);
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  const auto started = Clock::now();
  for (std::size_t i = 0; i < kClients; ++i)
    threads.emplace_back([&, i] {
      const std::size_t window = i % 3 == 0 ? 1 : i % 3 == 1 ? 8 : kPerClient;
      try {
        answers[i] = requestAnswers(ports[i % 2], kPerClient, window);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();

  std::unordered_map<std::uint64_t, std::size_t> clientOf;
  std::uint64_t highest = 0;
  int reported = 0;
  for (std::size_t i = 0; i < kClients; ++i) {
    SCOPED_TRACE("client " + std::to_string(i) + " on host " + (i % 2 ? "b" : "a"));
    EXPECT_EQ(errors[i], "");
    ASSERT_EQ(answers[i].size(), kPerClient);
    std::uint64_t prev = 0;
    for (const auto& text : answers[i]) {
      auto it = indexOf.find(text);
      if (it == indexOf.end()) {
        if (reported++ < 5) ADD_FAILURE() << "not a Fibonacci answer in range: \"" << text.substr(0, 80) << "\"";
        continue;
      }
      const std::uint64_t k = it->second;
      if (!clientOf.emplace(k, i).second && reported++ < 5)
        ADD_FAILURE() << "answer " << k << " handed out twice (clients " << clientOf[k] << " and " << i << ")";
      if (k <= prev && reported++ < 5) ADD_FAILURE() << "answer " << k << " after " << prev << " on one connection";
      prev = k;
      highest = std::max(highest, k);
    }
  }
  EXPECT_EQ(clientOf.size(), kClients * kPerClient);
  // The row is above every answer handed out.
  const std::string next = pg.sql("SELECT next FROM protohost_sequences WHERE name = 'fibonacci'");
  EXPECT_GT(std::stoull(next), highest);
  // Round trips: the row started at 1 and each reservation moved it by at least one block (more
  // when more requests waited: group commit), so (next - 1) / block is an upper bound of them.
  const double takes = static_cast<double>(std::stoull(next) - 1) / kBlock;
  const double perThousand = takes * 1000.0 / static_cast<double>(kClients * kPerClient);
  EXPECT_LE(perThousand, 1000.0 / kBlock * 1.5) << "more round trips than one per block (plus the blocks ahead)";
  std::cout << "[ measured ] 2 hosts, " << kClients << " clients x " << kPerClient << ": " << kClients * kPerClient
            << " answers in " << seconds << " s; highest answer number " << highest << ", row next=" << next
            << " (reserve_block " << kBlock << "): at most " << takes << " reservations, " << perThousand
            << " per 1000 answers (1000 / reserve_block = " << 1000.0 / kBlock << ")\n";
  for (auto* h : {&a, &b}) {
    EXPECT_TRUE(h->signal(SIGTERM));
    EXPECT_EQ(h->waitExit(kWait), 0);
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL stopped: once the reserved numbers are used up, requests get
// "ERR unavailable: ..." and /readyz turns 503. Started again: the host
// reconnects by itself (no request needed) and serves again, within a bound;
// no number is repeated across the outage.
TEST(FibonacciPostgresE2e, PostgresStoppedFailsClosedThenServiceResumesByItself) {
  PROTOHOST_REQUIRE_POSTGRES();
  constexpr auto kResumeBound = 15s;  // back-off at most 4 s + the 1 s retry interval + connect, with slack
  PgTestServer pg;
  ASSERT_EQ(pg.start(), "");
  HostProcess host;
  host.startWithConfig(pgIni(host.dir(), pg, {{"reserve_block", "8"}, {"postgres_timeout_ms", "1000"}}).text());
  const auto port = host.port("fib", kWait);
  const auto admin = host.port("admin", kWait);
  ASSERT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, kWait));

  OneByOne client(port);
  for (int i = 0; i < 5; ++i) client.expectNew(client.ask());

  ASSERT_EQ(pg.stop(), "");
  // The rest of the reserved numbers may still go out; then ERR, at once (fail closed).
  const std::size_t before = client.count();
  EXPECT_EQ(client.askUntilErr(kWait), "ERR unavailable: the shared sequence store (PostgreSQL) is unavailable");
  EXPECT_LE(client.count() - before, 16u) << "served beyond what was reserved before the stop";
  EXPECT_TRUE(waitUntil([&] { return readyz(admin) == 503; }, 5s)) << "/readyz still 200";
  EXPECT_EQ(client.ask().rfind("ERR unavailable:", 0), 0u);

  ASSERT_EQ(pg.start(), "");
  const auto restarted = Clock::now();
  // No request while it recovers: the retry timer alone must bring it back (a balancer sends nothing to a 503 host).
  EXPECT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, kResumeBound))
      << "not ready " << kResumeBound.count() << " s after PostgreSQL came back";
  const double resumed = std::chrono::duration<double>(Clock::now() - restarted).count();
  for (int i = 0; i < 20; ++i) client.expectNew(client.ask());
  std::cout << "[ measured ] ready again " << resumed << " s after PostgreSQL was started again\n";

  // kill -9 of PostgreSQL under load: a reservation whose answer was lost is never used (a gap, not a repeat).
  ASSERT_EQ(pg.kill(), "");
  EXPECT_EQ(client.askUntilErr(kWait).rfind("ERR unavailable:", 0), 0u);
  ASSERT_EQ(pg.start(), "");
  ASSERT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, kResumeBound));
  for (int i = 0; i < 20; ++i) client.expectNew(client.ask());
  EXPECT_GE(countLogLines(host, "connected to PostgreSQL"), 3u);
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);
}

// ---------------------------------------------------------------------------
// The row goes back (what a restore from backup or a failover to an asynchronous
// standby does): the host refuses the block below its local high-water mark with
// an ERR, raises the row to its mark, and serves again above it; nothing repeats.
TEST(FibonacciPostgresE2e, ARowThatWentBackIsRefusedBelowTheHostsHighWaterMark) {
  PROTOHOST_REQUIRE_POSTGRES();
  PgTestServer pg;
  ASSERT_EQ(pg.start(), "");
  HostProcess host;
  host.startWithConfig(pgIni(host.dir(), pg, {{"reserve_block", "8"}}).text());
  const auto port = host.port("fib", kWait);
  const auto admin = host.port("admin", kWait);
  ASSERT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, kWait));
  OneByOne client(port);
  for (int i = 0; i < 20; ++i) client.expectNew(client.ask());
  const auto mark = std::stoull(pg.sql("SELECT next FROM protohost_sequences WHERE name = 'fibonacci'"));
  ASSERT_EQ(pg.sql("UPDATE protohost_sequences SET next = 1 WHERE name = 'fibonacci'"), "");  // "restored"

  EXPECT_EQ(client.askUntilErr(kWait), "ERR unavailable: the shared sequence went back below this host's high-water mark");
  const std::uint64_t highest = client.highest();
  EXPECT_TRUE(host.waitForLog("below this host's high-water mark", kWait).has_value());
  // Raised to the host's mark at once, and the next reservation (1 s later, on the retry timer) is above it.
  EXPECT_GE(std::stoull(pg.sql("SELECT next FROM protohost_sequences WHERE name = 'fibonacci'")), mark);
  EXPECT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, 15s));
  for (int i = 0; i < 20; ++i)
    EXPECT_GT(client.expectNew(client.ask()), highest) << "an answer at or below one handed out before the rollback";
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);
}

// ---------------------------------------------------------------------------
// Least privilege: a role that may only read and update an existing table (no
// CREATE on the schema, PostgreSQL 15's default for public) serves, and its
// password comes from postgres_password_file.
TEST(FibonacciPostgresE2e, ARoleWithoutCreateServesFromAnExistingTable) {
  PROTOHOST_REQUIRE_POSTGRES();
  PgTestServer pg;
  ASSERT_EQ(pg.start(), "");
  pg.sql("CREATE TABLE protohost_sequences (name text PRIMARY KEY, next bigint NOT NULL CHECK (next >= 1))");
  pg.sql("CREATE ROLE fib LOGIN PASSWORD 'fib-secret'");
  pg.sql("GRANT SELECT, INSERT, UPDATE ON protohost_sequences TO fib");
  HostProcess host;
  const std::string password = host.writeFile("fib.password", "fib-secret\n");
  ASSERT_EQ(::chmod(password.c_str(), 0600), 0);
  HostIni ini;
  ini.listener("fib", "fibonacci",
               {{"state_file", host.dir() + "/fib.state"},
                {"store", "postgres"},
                {"postgres", "host=127.0.0.1 port=" + std::to_string(pg.port()) + " dbname=postgres user=fib"},
                {"postgres_password_file", password}});
  ini.raw("\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n");
  host.startWithConfig(ini.text());
  const auto port = host.port("fib", kWait);
  const auto admin = host.port("admin", kWait);
  ASSERT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, kWait)) << host.stderrText();
  EXPECT_EQ(requestAnswers(port, 3), (std::vector<std::string>{"2", "3", "5"}));
  EXPECT_EQ(pg.sql("SELECT name FROM protohost_sequences"), "fibonacci");
  EXPECT_EQ(countLogLines(host, "permission denied"), 0u);
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);
}

// ---------------------------------------------------------------------------
// A reload (HUP) with a changed listener: the new factory serves new
// connections while the old one still serves its connection; both reserve from
// the row and share the local state file; no number repeats, each connection's
// answers increase, and the old factory stops cleanly when its connection ends.
TEST(FibonacciPostgresE2e, AReloadRunsOldAndNewFactoryOnOneSequenceWithoutARepeat) {
  PROTOHOST_REQUIRE_POSTGRES();
  PgTestServer pg;
  ASSERT_EQ(pg.start(), "");
  HostProcess host;
  host.startWithConfig(pgIni(host.dir(), pg, {{"reserve_block", "16"}}).text());
  const auto port = host.port("fib", kWait);
  const auto admin = host.port("admin", kWait);
  ASSERT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, kWait));
  OneByOne before(port);  // served by the first factory until it closes
  std::set<std::uint64_t> all;
  std::uint64_t lastBefore = 0, lastAfter = 0;
  auto take = [&](OneByOne& c, std::uint64_t& last) {
    const std::uint64_t k = c.expectNew(c.ask());
    EXPECT_TRUE(all.insert(k).second) << "answer " << k << " handed out twice";
    EXPECT_GT(k, last) << "one connection's answers increase";
    last = k;
  };
  for (int i = 0; i < 10; ++i) take(before, lastBefore);

  // The same port, another reserve_block: the listener's factory is replaced.
  const std::size_t mark = host.logLineCount();
  host.writeConfig(pgIni(host.dir(), pg, {{"reserve_block", "8"}}).text());
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(host.waitForLog("configuration reloaded", kWait, mark).has_value()) << host.stderrText();
  const auto port2 = host.port("fib", kWait);
  OneByOne after(port2);
  ASSERT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, kWait));
  for (int i = 0; i < 60; ++i) {
    take(i % 2 ? before : after, i % 2 ? lastBefore : lastAfter);
  }
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);
  // The row is above everything both factories handed out.
  EXPECT_GT(std::stoull(pg.sql("SELECT next FROM protohost_sequences WHERE name = 'fibonacci'")), *all.rbegin());
}

// ---------------------------------------------------------------------------
// A host that starts while PostgreSQL is down starts (the listener is up), is
// not ready and answers ERR; it becomes ready by itself once the server is up.
TEST(FibonacciPostgresE2e, HostStartedBeforePostgresIsNotReadyUntilItComes) {
  PROTOHOST_REQUIRE_POSTGRES();
  PgTestServer pg;
  ASSERT_EQ(pg.start(), "");  // initdb and a port
  ASSERT_EQ(pg.stop(), "");
  HostProcess host;
  host.startWithConfig(pgIni(host.dir(), pg, {{"postgres_timeout_ms", "500"}}).text());
  const auto port = host.port("fib", kWait);
  const auto admin = host.port("admin", kWait);
  EXPECT_EQ(readyz(admin), 503);
  auto first = requestAnswers(port, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0], "ERR unavailable: the shared sequence store (PostgreSQL) is unavailable");
  ASSERT_EQ(pg.start(), "");
  EXPECT_TRUE(waitUntil([&] { return readyz(admin) == 200; }, 15s));
  auto later = requestAnswers(port, 3);
  EXPECT_EQ(later, (std::vector<std::string>{"2", "3", "5"}));  // the new row was seeded from the fresh state file
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);
}

}  // namespace
}  // namespace protohost::e2e::plugintest
