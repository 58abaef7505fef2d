#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "HitFormatter.h"
#include "WeblogFactory.h"
#include "WeblogTestSupport.h"

using namespace protohost::plugins::weblog;
using protohost::ConfigError;
using protohost::LogLevel;
using protohost::testing::ManualReactor;
using protohost::testing::MemoryTransport;
using std::chrono::milliseconds;
using weblogtest::appendFile;
using weblogtest::makeConfig;
using weblogtest::TempDir;

namespace {

std::string configError(const std::map<std::string, std::string>& keys) {
  WeblogFactory f;
  try {
    f.configure(makeConfig(keys));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

/// A factory started on a ManualReactor, with connections made through MemoryTransport.
struct Harness {
  explicit Harness(const std::map<std::string, std::string>& keys, const std::string& baseDir) : context(reactor) {
    auto config = makeConfig(keys, baseDir);
    factory.configure(config);
    EXPECT_TRUE(config.unreadKeys().empty());
    factory.start(context);
  }
  ~Harness() {
    for (std::size_t i = 0; i < clients.size(); ++i)
      if (!transports[i]->closed()) transports[i]->disconnect(*clients[i]);
    clients.clear();
    factory.stop();
  }
  std::size_t connect() {
    transports.push_back(std::make_unique<MemoryTransport>(reactor));
    clients.push_back(factory.buildProtocol());
    transports.back()->connect(*clients.back());
    return clients.size() - 1;
  }
  const std::string& output(std::size_t i) { return transports[i]->value(); }

  ManualReactor reactor;
  weblogtest::TestContext context;
  WeblogFactory factory;
  std::vector<std::unique_ptr<MemoryTransport>> transports;
  std::vector<std::unique_ptr<protohost::Protocol>> clients;
};

/// Burst tests: a 64 KiB per-client bound, push as soon as a line is seen.
constexpr std::size_t kCap = 64 * 1024;
std::map<std::string, std::string> burstKeys() {
  return {{"access_log", "access.log"},
          {"push_interval_ms", "0"},
          {"max_line_bytes", "1000"},
          {"max_client_backlog_bytes", std::to_string(kCap)}};
}

/// Appends numbered lines, at least @p bytes, in one write; returns how many.
int appendBurst(const std::string& log, std::size_t bytes) {
  std::string burst;
  int n = 0;
  while (burst.size() < bytes) burst += weblogtest::numberedLine(n++) + "\n";
  appendFile(log, burst);
  return n;
}

/// Runs tailer rounds (the clients' wake-ups and the room notifications are
/// posts, run with them) until @p n hits were published, or 1000 rounds.
void runTailerUntilPublished(Harness& h, int n) {
  for (int round = 0; round < 1000 && h.factory.hub().publishedHits() < static_cast<std::uint64_t>(n); ++round) {
    h.reactor.advance(kFastPollInterval);
    h.reactor.runPending();
  }
}

}  // namespace

TEST(WeblogFactory, ConfigDefaults) {
  WeblogFactory f;
  auto config = makeConfig({{"access_log", "logs/access.log"}}, "/srv/etc");
  f.configure(config);
  const auto& s = f.settings();
  EXPECT_EQ(s.accessLog, "/srv/etc/logs/access.log");  // relative to the config file
  EXPECT_EQ(s.mode, Mode::Push);
  EXPECT_EQ(s.pushInterval, milliseconds(5000));
  EXPECT_EQ(s.history, 100u);
  EXPECT_EQ(s.maxClientBacklogBytes, 1024u * 1024);
  EXPECT_EQ(s.maxLineBytes, 64u * 1024);
  EXPECT_EQ(s.pollInterval, milliseconds(250));
  EXPECT_TRUE(config.unreadKeys().empty());
}

TEST(WeblogFactory, ConfigEveryKeyIsRead) {
  WeblogFactory f;
  auto config = makeConfig({{"access_log", "/var/log/apache2/access.log"},
                            {"mode", "poll"},
                            {"push_interval_ms", "0"},
                            {"history", "10"},
                            {"max_client_backlog_bytes", "2000000"},
                            {"max_line_bytes", "1000"},
                            {"poll_interval_ms", "100"}});
  f.configure(config);
  EXPECT_TRUE(config.unreadKeys().empty());
  EXPECT_EQ(f.settings().accessLog, "/var/log/apache2/access.log");
  EXPECT_EQ(f.settings().mode, Mode::Poll);
  EXPECT_EQ(f.settings().history, 10u);
  EXPECT_EQ(f.settings().pollInterval, milliseconds(100));
}

TEST(WeblogFactory, PushIntervalZeroPollsTheFileFaster) {
  WeblogFactory f;
  f.configure(makeConfig({{"access_log", "/x"}, {"push_interval_ms", "0"}}));
  EXPECT_EQ(f.settings().pollInterval, kFastPollInterval);
}

TEST(WeblogFactory, ConfigErrorsNameFileLineAndKey) {
  EXPECT_EQ(configError({}), "host.ini:10: access_log: missing required key (the access log to follow)");
  EXPECT_EQ(configError({{"access_log", "/x"}, {"mode", "stream"}}),
            "host.ini:12: mode: expected one of push, poll, got \"stream\"");
  EXPECT_NE(configError({{"access_log", "/x"}, {"push_interval_ms", "-1"}}).find("push_interval_ms: value -1 out of range"),
            std::string::npos);
  EXPECT_NE(configError({{"access_log", "/x"}, {"history", "many"}}).find("history: expected an integer"),
            std::string::npos);
  EXPECT_NE(configError({{"access_log", "/x"}, {"max_line_bytes", "100000"}, {"max_client_backlog_bytes", "100000"}})
                .find("max_client_backlog_bytes: must be at least 1200256"),
            std::string::npos);
  EXPECT_NE(configError({{"access_log", ""}}).find("access_log: must not be empty"), std::string::npos);
}

TEST(WeblogFactory, StreamsNewLinesOfTheLogToEveryClientAsWellFormedXml) {
  TempDir dir;
  appendFile(dir.file("access.log"), "192.0.2.9 - - [x] \"GET /old HTTP/1.0\" 200 1\n");
  Harness h({{"access_log", "access.log"}, {"push_interval_ms", "1000"}, {"max_line_bytes", "65536"}}, dir.path());
  auto a = h.connect();
  appendFile(dir.file("access.log"), weblogtest::kClfLine + "\n" + weblogtest::kCombinedLine + "\n");
  appendFile(dir.file("access.log"), "this is not an access log line\n");
  appendFile(dir.file("access.log"), std::string(5 * 1024 * 1024, '&') + "\n");
  appendFile(dir.file("access.log"),
             std::string("<&\"'> - - [01/Jan/2024:00:00:00 +0000] \"GET /\x01\x1b\xff HTTP/1.1\" 200 1 \"\xc3\" \"\xed\xa0\x80\"\n"));
  appendFile(dir.file("access.log"), weblogtest::numberedLine(1) + "\n");
  // The tailer reads at most 4 MiB per round: a few poll intervals, then one push.
  h.reactor.advance(milliseconds(1000));
  h.reactor.advance(milliseconds(1000));
  const std::string& out = h.output(a);
  EXPECT_EQ(out.substr(0, 6 + weblogtest::kClfHit.size() + weblogtest::kCombinedHit.size()),
            "<hits>" + weblogtest::kClfHit + weblogtest::kCombinedHit);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}}) {
    auto elements = weblogtest::parseHits(out, chunk);
    ASSERT_EQ(elements.size(), 4u);
    EXPECT_EQ(elements[0].attr("request"), "GET /apache_pb.gif HTTP/1.0");
    EXPECT_EQ(elements[1].attr("request"), "GET /a?x=1&y=<2> HTTP/1.1");
    EXPECT_EQ(elements[2].attr("ip"), "<&\"'>");
    EXPECT_EQ(elements[2].attr("request"), "GET /\xEF\xBF\xBD HTTP/1.1");
    EXPECT_EQ(elements[3].attr("request"), weblogtest::numberedRequest(1));
  }
  EXPECT_EQ(h.factory.unparsableLines(), 1u);
  EXPECT_EQ(h.factory.overlongLines(), 1u);
  EXPECT_GE(h.context.count(LogLevel::Warning, "skipped"), 1u);
  EXPECT_LE(h.context.count(LogLevel::Warning, "skipped"), 2u);
}

TEST(WeblogFactory, SkippedLineWarningsAreRateLimited) {
  TempDir dir;
  appendFile(dir.file("access.log"), "");
  Harness h({{"access_log", "access.log"}}, dir.path());
  for (int i = 0; i < 20; ++i) {
    appendFile(dir.file("access.log"), "junk " + std::to_string(i) + "\n");
    h.reactor.advance(milliseconds(250));
  }
  EXPECT_EQ(h.factory.unparsableLines(), 20u);
  EXPECT_EQ(h.context.count(LogLevel::Warning, "skipped"), 1u);  // 5 s: one warning
  h.reactor.advance(milliseconds(10000));
  EXPECT_EQ(h.context.count(LogLevel::Warning, "skipped 19"), 1u);  // the rest, summed up later
}

TEST(WeblogFactory, PollModeClientsAskForNewHits) {
  TempDir dir;
  appendFile(dir.file("access.log"), "");
  Harness h({{"access_log", "access.log"}, {"mode", "poll"}}, dir.path());
  auto c = h.connect();
  EXPECT_EQ(h.reactor.pendingTimers(), 1u);  // only the tailer's
  h.transports[c]->feed(*h.clients[c], "NEW?");
  appendFile(dir.file("access.log"), weblogtest::kClfLine + "\n");
  h.reactor.advance(milliseconds(250));
  h.transports[c]->feed(*h.clients[c], "NEW?\n");
  h.transports[c]->feed(*h.clients[c], "NEW?\n");
  EXPECT_EQ(h.output(c), "<hits><none/>" + weblogtest::kClfHit + "<none/>");
}

TEST(WeblogFactory, PushIntervalZeroDeliversOnTheNextTailerRound) {
  TempDir dir;
  appendFile(dir.file("access.log"), "");
  Harness h({{"access_log", "access.log"}, {"push_interval_ms", "0"}}, dir.path());
  auto c = h.connect();
  appendFile(dir.file("access.log"), weblogtest::kClfLine + "\n");
  h.reactor.advance(kFastPollInterval);
  EXPECT_EQ(h.output(c), "<hits>" + weblogtest::kClfHit);
}

TEST(WeblogFactory, MissingLogAtStartStillServesAndPicksTheFileUpLater) {
  TempDir dir;
  Harness h({{"access_log", "access.log"}, {"push_interval_ms", "500"}}, dir.path());
  EXPECT_GE(h.context.count(LogLevel::Info, "waiting for"), 1u);
  auto c = h.connect();
  h.reactor.advance(milliseconds(1000));
  EXPECT_EQ(h.output(c), "<hits>");
  appendFile(dir.file("access.log"), weblogtest::kCombinedLine + "\n");
  h.reactor.advance(milliseconds(1000));
  EXPECT_EQ(h.output(c), "<hits>" + weblogtest::kCombinedHit);
}

TEST(WeblogFactory, RotationAndTruncationDeliverEachHitOnceInOrder) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  auto server = std::make_unique<weblogtest::Writer>(log);
  Harness h({{"access_log", "access.log"}, {"push_interval_ms", "300"}}, dir.path());
  auto a = h.connect();
  int n = 0;
  auto write = [&](int count) {
    for (int i = 0; i < count; ++i) server->write(weblogtest::numberedLine(n++) + "\n");
  };
  write(3);
  h.reactor.advance(milliseconds(250));
  auto b = h.connect();  // joins after hits 0-2 were read
  const int bFirst = n;
  write(2);
  ASSERT_EQ(std::rename(log.c_str(), dir.file("access.log.1").c_str()), 0);
  write(2);  // late writes to the renamed file
  server = std::make_unique<weblogtest::Writer>(log);
  write(2);
  h.reactor.advance(milliseconds(500));
  ASSERT_EQ(::truncate(log.c_str(), 0), 0);
  write(1);
  h.reactor.advance(milliseconds(500));
  ASSERT_EQ(::unlink(log.c_str()), 0);
  server = std::make_unique<weblogtest::Writer>(log);
  write(2);
  h.reactor.advance(milliseconds(1000));

  auto check = [&](std::size_t client, int first) {
    auto elements = weblogtest::parseHits(h.output(client), 5);
    ASSERT_EQ(elements.size(), static_cast<std::size_t>(n - first));
    for (int i = first; i < n; ++i)
      EXPECT_EQ(elements[static_cast<std::size_t>(i - first)].attr("request"), weblogtest::numberedRequest(i));
  };
  check(a, 0);
  check(b, bFirst);
}

// Pacing (HitHub::room): a burst ten times max_client_backlog_bytes, written
// at once, reaches every push client that takes its hits, in order; nobody is
// cut off.
TEST(WeblogFactory, BurstOfTenTimesTheBacklogCapReachesEveryReadingClient) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "");
  Harness h(burstKeys(), dir.path());
  auto a = h.connect();
  auto b = h.connect();
  const int n = appendBurst(log, 10 * kCap);
  // Without pacing the first publish would be 10x the cap and every client cut off.
  runTailerUntilPublished(h, n);
  EXPECT_EQ(h.factory.hub().publishedHits(), static_cast<std::uint64_t>(n));
  for (auto c : {a, b}) {
    EXPECT_FALSE(h.transports[c]->closed());
    auto elements = weblogtest::parseHits(h.output(c), 4096);
    ASSERT_EQ(elements.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(elements[static_cast<std::size_t>(i)].attr("request"), weblogtest::numberedRequest(i));
  }
  EXPECT_EQ(h.factory.hub().slowClients(), 0u);
}

// Clients that cannot take their hits must not stall the others for long:
// one whose peer stopped reading (unsent output) and one that is never woken
// (its reactor stuck) hold the tailer back for kLaggardTimeout, then are cut
// off; the reading client gets every hit.
TEST(WeblogFactory, ClientsThatDoNotTakeTheirHitsAreCutOffAfterTheLaggardTimeout) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "");
  Harness h(burstKeys(), dir.path());
  auto reader = h.connect();
  auto full = h.connect();
  h.transports[full]->setPendingBytes(kCap / 2);  // its peer stopped reading
  const auto stuck = h.factory.hub().subscribe([] {}, SIZE_MAX);  // never pulls
  const int n = appendBurst(log, 4 * kCap);
  h.reactor.advance(kFastPollInterval);
  h.reactor.runPending();
  EXPECT_FALSE(h.transports[full]->closed());
  EXPECT_GT(h.factory.heldBackHits(), 0u) << "the laggards should hold the tailer back";
  const auto before = h.factory.hub().publishedHits();
  h.reactor.advance(kLaggardTimeout - kFastPollInterval - std::chrono::milliseconds(1));
  h.reactor.runPending();
  EXPECT_EQ(h.factory.hub().publishedHits(), before) << "released before the deadline";
  EXPECT_FALSE(h.transports[full]->closed());
  runTailerUntilPublished(h, n);
  EXPECT_EQ(h.context.count(LogLevel::Warning, "2 client(s) did not take their hits within 2000 ms"), 1u);
  EXPECT_TRUE(h.transports[full]->aborted());
  EXPECT_EQ(h.factory.hub().pull(stuck, SIZE_MAX).status, HitHub::PullStatus::TooFarBehind);
  h.factory.hub().unsubscribe(stuck);
  auto elements = weblogtest::parseHits(h.output(reader), 4096);
  ASSERT_EQ(elements.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(elements[static_cast<std::size_t>(i)].attr("request"), weblogtest::numberedRequest(i));
  EXPECT_FALSE(h.transports[reader]->closed());
}

TEST(WeblogFactory, StopCancelsTheTailerTimerAndClosesTheFile) {
  TempDir dir;
  appendFile(dir.file("access.log"), "");
  ManualReactor reactor;
  weblogtest::TestContext context(reactor);
  WeblogFactory f;
  f.configure(makeConfig({{"access_log", "access.log"}}, dir.path()));
  f.start(context);
  EXPECT_EQ(reactor.pendingTimers(), 1u);
  f.stop();
  EXPECT_EQ(reactor.pendingTimers(), 0u);
  reactor.advance(milliseconds(1000));  // nothing runs
}
