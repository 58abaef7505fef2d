// End-to-end: the weblog plugin in the real host. The test writes the access
// log itself (unique ids in the request paths), follows it through appends,
// rotation by rename, copytruncate, deletion and re-creation, hostile bytes,
// partial lines and a log that appears late, and parses every client's stream
// with expat, chunk by chunk, as it arrives.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <random>

#include "PluginE2eSupport.h"

namespace protohost::e2e::plugintest {
namespace {

constexpr auto kWait = 30s;  // generous: other builds share this 2-core machine

/// Writes @p bytes to @p fd in pieces cut at random offsets (so lines arrive split across writes).
void writeInRandomPieces(int fd, const std::string& bytes, std::mt19937& rng, std::size_t pieces) {
  std::vector<std::size_t> cuts;
  std::uniform_int_distribution<std::size_t> pos(1, bytes.size() - 1);
  for (std::size_t i = 0; i + 1 < pieces && bytes.size() > 1; ++i) cuts.push_back(pos(rng));
  cuts.push_back(0);
  cuts.push_back(bytes.size());
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
    writeAllFd(fd, std::string_view(bytes).substr(cuts[i], cuts[i + 1] - cuts[i]));
}

std::string linesFor(std::uint64_t first, std::uint64_t last) {
  std::string out;
  for (std::uint64_t id = first; id <= last; ++id) out += clfLine(id);
  return out;
}

/// Everything a client must satisfy at the end: well-formed, still connected,
/// and exactly the ids first..last in order.
void expectStream(WeblogClient& c, std::uint64_t first, std::uint64_t last) {
  SCOPED_TRACE("client " + c.name());
  const WeblogClient::State s = c.state();
  EXPECT_TRUE(s.rootSeen);
  EXPECT_EQ(s.xmlError, "");
  EXPECT_FALSE(s.closed) << s.closeReason;
  EXPECT_EQ(checkConsecutive(s.ids, first, last), "");
}

std::string describe(const WeblogClient& c) {
  auto s = c.state();
  return c.name() + ": " + std::to_string(s.hits) + " hits, last id " +
         (s.ids.empty() ? std::string("-") : std::to_string(s.ids.back())) + ", " + std::to_string(s.bytes) + " bytes" +
         (s.closed ? ", closed: " + s.closeReason : "") + (s.xmlError.empty() ? "" : ", " + s.xmlError) + "\n";
}

bool allReached(const std::vector<std::unique_ptr<WeblogClient>>& clients, std::uint64_t id,
                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (const auto& c : clients) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!c->waitForId(id, std::max(left, 1ms))) return false;
  }
  return true;
}

std::string describe(const std::vector<std::unique_ptr<WeblogClient>>& clients) {
  std::string out;
  for (const auto& c : clients) out += describe(*c);
  return out;
}

// ---------------------------------------------------------------------------
// 1. Push (100 ms and immediate) and poll clients while the log is appended to,
//    rotated by rename (matrix T32: the writer keeps appending to the old fd),
//    copytruncated (T33), deleted and recreated (T34).
TEST(WeblogE2e, EveryClientGetsEveryHitOnceInOrderThroughRotationTruncationAndRecreation) {
  HostProcess host;
  const std::string log = host.dir() + "/access.log";
  // Already there when the host starts: never sent (the tailer starts at the end).
  writeWholeFile(log, clfLine(900001) + clfLine(900002));

  HostIni ini;
  ini.set("threads", "2");
  ini.listener("push100", "weblog",
               {{"access_log", log}, {"mode", "push"}, {"push_interval_ms", "100"}, {"poll_interval_ms", "20"}});
  ini.listener("push0", "weblog", {{"access_log", log}, {"push_interval_ms", "0"}});
  ini.listener("poll", "weblog", {{"access_log", log}, {"mode", "poll"}, {"poll_interval_ms", "20"}});
  host.startWithConfig(ini.text());
  const auto push100 = host.port("push100", kWait);
  const auto push0 = host.port("push0", kWait);
  const auto poll = host.port("poll", kWait);

  WeblogClient::Options pushOpts;
  auto pollOpts = [](std::vector<std::string> pieces) {
    WeblogClient::Options o;
    o.poll = true;
    o.requestPieces = std::move(pieces);
    return o;
  };

  // Early clients: connected before any line is written; they must get every
  // line from their first hit on (synchronised below) to the end.
  std::vector<std::unique_ptr<WeblogClient>> early;
  early.push_back(std::make_unique<WeblogClient>("early-push100", push100, pushOpts));
  early.push_back(std::make_unique<WeblogClient>("early-push0", push0, pushOpts));
  early.push_back(std::make_unique<WeblogClient>("early-poll", poll, pollOpts({"NEW?"})));
  for (auto& c : early) ASSERT_TRUE(c->waitForRoot(kWait)) << c->name() << " got no <hits>";

  int fd = openAppend(log);
  std::uint64_t next = 1;
  auto writeLines = [&](std::uint64_t count) {
    writeAllFd(fd, linesFor(next, next + count - 1));
    next += count;
  };
  ASSERT_TRUE(syncOnFirstHit(fd, next, early)) << describe(early);
  const std::uint64_t lastEarlySync = next - 1;

  // Five more lines, seen (published) by every listener before the late clients connect.
  writeLines(5);
  const std::uint64_t lastBeforeLate = next - 1;
  ASSERT_TRUE(allReached(early, lastBeforeLate, kWait)) << describe(early);

  std::vector<std::unique_ptr<WeblogClient>> late;
  late.push_back(std::make_unique<WeblogClient>("late-push100", push100, pushOpts));
  late.push_back(std::make_unique<WeblogClient>("late-push0", push0, pushOpts));
  late.push_back(std::make_unique<WeblogClient>("late-poll-newline", poll, pollOpts({"NEW?\n"})));
  late.push_back(std::make_unique<WeblogClient>("late-poll-split", poll, pollOpts({"NE", "W?\r\n"})));
  late.push_back(std::make_unique<WeblogClient>("late-poll-two-per-write", poll, pollOpts({"NEW?NEW?"})));
  for (auto& c : late) ASSERT_TRUE(c->waitForRoot(kWait)) << c->name() << " got no <hits>";

  // Sync on a first hit (see syncOnFirstHit), then: the lines before the late
  // clients connected were never sent to them.
  const std::uint64_t firstLateSync = next;
  ASSERT_TRUE(syncOnFirstHit(fd, next, late)) << describe(late);
  for (auto& c : late)
    EXPECT_GE(c->state().ids.front(), firstLateSync) << c->name() << " received a line written before it connected";

  std::vector<std::unique_ptr<WeblogClient>> all;
  for (auto& c : early) all.push_back(std::move(c));
  for (auto& c : late) all.push_back(std::move(c));
  std::map<std::string, std::uint64_t> firstIdOf;
  for (auto& c : all) {
    firstIdOf[c->name()] = c->state().ids.front();
    if (c->name().rfind("early", 0) == 0) {
      EXPECT_LE(firstIdOf[c->name()], lastEarlySync) << c->name();
    }
  }

  std::mt19937 rng(20240601);

  // Appends, split at random byte offsets (partial lines between writes).
  {
    std::string bytes = linesFor(next, next + 299);
    next += 300;
    writeInRandomPieces(fd, bytes, rng, 40);
  }

  // Rotation by rename: the writer keeps its old fd for a while (until every
  // tailer noticed the name is gone), then switches to a new file.
  {
    SCOPED_TRACE("rotation by rename");
    const std::size_t mark = host.logLineCount();
    ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0) << std::strerror(errno);
    writeLines(5);
    ASSERT_TRUE(waitUntil([&] { return countLogLines(host, "is gone", mark) >= 3; }, kWait))
        << "every tailer should notice the rename; log:\n"
        << host.stderrText();
    writeLines(5);  // still the old file
    ::close(fd);
    fd = openAppend(log);
    std::string bytes = linesFor(next, next + 49);
    next += 50;
    writeInRandomPieces(fd, bytes, rng, 10);
  }
  // copytruncate loses whatever the tailer had not read yet when the file is
  // truncated (inherent to copytruncate): let every client catch up first.
  ASSERT_TRUE(allReached(all, next - 1, kWait)) << describe(all);

  std::uint64_t longId = 0;
  std::string longPad;
  {
    SCOPED_TRACE("copytruncate");
    const std::size_t mark = host.logLineCount();
    std::filesystem::copy_file(log, log + ".2");
    const auto oldSize = static_cast<std::size_t>(std::filesystem::file_size(log));
    ASSERT_GT(oldSize, 1000u);
    ASSERT_EQ(::ftruncate(fd, 0), 0) << std::strerror(errno);
    writeLines(1);  // shorter than the old size
    ASSERT_TRUE(waitUntil([&] { return countLogLines(host, "was truncated", mark) >= 3; }, kWait))
        << "every tailer should notice the truncation; log:\n"
        << host.stderrText();
    ASSERT_TRUE(allReached(all, next - 1, kWait)) << describe(all);
    // One line longer than the whole old file, then more lines.
    longId = next++;
    longPad = "pad=" + std::string(oldSize + 500, 'L');
    writeAllFd(fd, clfLine(longId, longPad));
    writeLines(20);
  }

  {
    SCOPED_TRACE("delete and recreate");
    const std::size_t mark = host.logLineCount();
    ASSERT_EQ(::unlink(log.c_str()), 0) << std::strerror(errno);
    writeLines(3);  // to the deleted file, still open by the tailers
    ASSERT_TRUE(waitUntil([&] { return countLogLines(host, "is gone", mark) >= 3; }, kWait))
        << "every tailer should notice the deletion; log:\n"
        << host.stderrText();
    ::close(fd);
    fd = openAppend(log);
    writeLines(30);
  }
  ::close(fd);

  const std::uint64_t last = next - 1;
  EXPECT_TRUE(allReached(all, last, kWait)) << describe(all);
  for (auto& c : all) c->stop();

  for (auto& c : all) expectStream(*c, firstIdOf[c->name()], last);

  // Attribute values as written, including the long line (every client has it).
  for (auto& c : all) {
    SCOPED_TRACE("client " + c->name());
    bool sawLong = false;
    for (const auto& e : c->elements()) {
      if (e.kind != StreamElement::Kind::Hit) continue;
      const auto& a = e.attributes;
      ASSERT_EQ(a.size(), 7u);
      EXPECT_EQ(a.at("ip"), "127.0.0.1");
      EXPECT_EQ(a.at("timestamp"), "10/Oct/2000:13:55:36 -0700");
      EXPECT_EQ(a.at("status"), "200");
      EXPECT_EQ(a.at("bytes"), std::to_string(1000 + e.id % 1000));
      EXPECT_EQ(a.at("referrer"), "http://example.com/");
      EXPECT_EQ(a.at("agent"), "pe2e/1.0");
      if (e.id == longId) {
        sawLong = true;
        EXPECT_EQ(a.at("request"), hitRequest(longId, longPad));
      } else {
        EXPECT_EQ(a.at("request"), hitRequest(e.id));
      }
    }
    EXPECT_TRUE(sawLong);
  }
  EXPECT_EQ(host.signal(SIGTERM), true);
  EXPECT_EQ(host.waitExit(kWait), 0);
}

// ---------------------------------------------------------------------------
// Poll mode: one answer per NEW?, however requests are split or coalesced.
TEST(WeblogE2e, PollAnswersEveryRequestExactlyOnceAndClosesOnGarbage) {
  HostProcess host;
  const std::string log = host.dir() + "/access.log";
  writeWholeFile(log, "");
  HostIni ini;
  ini.listener("poll", "weblog", {{"access_log", log}, {"mode", "poll"}, {"poll_interval_ms", "20"}});
  host.startWithConfig(ini.text());
  const auto port = host.port("poll", kWait);

  TestClient c = TestClient::connect(port, TestClient::Options{5s, 0, 0});
  int one = 1;
  ::setsockopt(c.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  HitStream stream(true);
  auto readUntil = [&](std::size_t elements, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (stream.elements().size() < elements && stream.error().empty() && Clock::now() < deadline) {
      pollfd p{c.fd(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      ssize_t n = ::recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      stream.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
    return stream.elements().size() >= elements;
  };
  std::size_t requests = 0;

  c.sendAll("NEW?NEW?\nNEW?\r\n");  // three requests in one segment
  requests += 3;
  ASSERT_TRUE(readUntil(3, kWait)) << stream.error();
  c.sendAll("NE");
  std::this_thread::sleep_for(150ms);  // deliberately a separate segment and read
  c.sendAll("W?");
  requests += 1;
  ASSERT_TRUE(readUntil(4, kWait)) << stream.error();

  const int fd = openAppend(log);
  writeAllFd(fd, clfLine(1));
  ::close(fd);
  // One request at a time until the hit comes: every answer is <none/> until then.
  bool gotHit = false;
  for (int i = 0; i < 400 && !gotHit; ++i) {
    c.sendAll(i % 2 ? "NEW?" : "\nNEW?\n");
    ++requests;
    ASSERT_TRUE(readUntil(requests, kWait)) << "no answer to request " << requests << "; " << stream.error();
    gotHit = stream.elements().back().kind == StreamElement::Kind::Hit;
  }
  ASSERT_TRUE(gotHit);
  std::this_thread::sleep_for(300ms);  // deliberately: no extra answer trickles in
  readUntil(requests + 1, 1ms);
  const auto& els = stream.elements();
  ASSERT_EQ(els.size(), requests) << "one answer per NEW?";
  for (std::size_t i = 0; i + 1 < els.size(); ++i) EXPECT_EQ(els[i].kind, StreamElement::Kind::None) << i;
  EXPECT_EQ(els.back().id, 1u);
  EXPECT_EQ(stream.error(), "");

  // Nothing new: <none/> again, then anything but NEW? closes the connection.
  c.sendAll("NEW?");
  ASSERT_TRUE(readUntil(requests + 1, kWait));
  EXPECT_EQ(stream.elements().back().kind, StreamElement::Kind::None);
  c.sendAll("HELLO\n");
  TestClient::Closed closed = c.waitClosed();
  EXPECT_NE(closed.how, TestClient::Close::Timeout) << "garbage should close a poll connection";
}

// ---------------------------------------------------------------------------
// 2. T10: hostile bytes in the log never break a client's XML; the normal line arrives.
TEST(WeblogE2e, HostileLogLinesKeepEveryStreamWellFormed) {
  HostProcess host;
  const std::string log = host.dir() + "/access.log";
  writeWholeFile(log, "");
  HostIni ini;  // threads = 1: <hits> and the subscription happen in one go on the tailer's thread
  ini.listener("push0", "weblog", {{"access_log", log}, {"push_interval_ms", "0"}});
  ini.listener("poll", "weblog", {{"access_log", log}, {"mode", "poll"}, {"poll_interval_ms", "20"}});
  host.startWithConfig(ini.text());
  WeblogClient::Options pollOpts;
  pollOpts.poll = true;
  std::vector<std::unique_ptr<WeblogClient>> clients;
  clients.push_back(std::make_unique<WeblogClient>("push0", host.port("push0", kWait), WeblogClient::Options{}));
  clients.push_back(std::make_unique<WeblogClient>("poll", host.port("poll", kWait), pollOpts));
  for (auto& c : clients) ASSERT_TRUE(c->waitForRoot(kWait));

  const int fd = openAppend(log);
  writeAllFd(fd, clfLine(1));
  ASSERT_TRUE(allReached(clients, 1, kWait)) << describe(clients);
  const long rssBefore = host.rssKiB();

  // A 5 MB line, first without its newline (held across several tailer rounds), then ended.
  writeAllFd(fd, std::string(5u << 20, 'x'));
  std::this_thread::sleep_for(300ms);  // deliberately: the tailer sees the unterminated giant line
  writeAllFd(fd, std::string(1u << 20, 'y') + "\n");
  // A second 5 MB line with its newline in one write.
  writeAllFd(fd, std::string(5u << 20, 'z') + "\n");
  // Raw hostile lines (not Common/Combined Log Format: skipped).
  writeAllFd(fd, "<&\"'\n");
  writeAllFd(fd, "\x01\x1b\n");
  writeAllFd(fd, "\xff\xfe\xc3\x28 \xed\xa0\x80\n");
  writeAllFd(fd, std::string("\0\0\0 nul bytes\n", 15));
  // Hostile bytes inside parsable lines: escaped, stripped or replaced.
  // (a '"' inside a quoted field is logged as \" by Apache and nginx, and kept as written)
  writeAllFd(fd, clfLine(2, "q=<&\\\"'>]]>", "tab\there", "]]><!--"));
  writeAllFd(fd, clfLine(3, {}, "ctl\x01\x1b\x08 end"));
  writeAllFd(fd, clfLine(4, {}, "bad\xff\xfe\xc3\x28utf8 \xc3\xa9\xe2\x82\xac", "\xed\xa0\x80\xef\xbf\xbe-"));
  writeAllFd(fd, clfLine(5));  // the normal line
  ::close(fd);

  EXPECT_TRUE(allReached(clients, 5, kWait)) << describe(clients);
  const long rssAfter = host.rssKiB();
  for (auto& c : clients) c->stop();
  for (auto& c : clients) {
    expectStream(*c, 1, 5);
    std::map<std::uint64_t, std::map<std::string, std::string>> byId;
    for (const auto& e : c->elements())
      if (e.kind == StreamElement::Kind::Hit) byId[e.id] = e.attributes;
    SCOPED_TRACE("client " + c->name());
    EXPECT_EQ(byId.size(), 5u);
    EXPECT_EQ(byId[2]["request"], "GET /hit/2?q=<&\\\"'>]]> HTTP/1.1");
    EXPECT_EQ(byId[2]["agent"], "tab\there");
    EXPECT_EQ(byId[2]["referrer"], "]]><!--");
    EXPECT_EQ(byId[3]["agent"], "ctl end");  // C0 controls dropped
    const std::string fffd = "\xef\xbf\xbd";
    const std::string agent4 = byId[4]["agent"];
    ASSERT_GE(agent4.size(), 3 + fffd.size());
    EXPECT_EQ(agent4.substr(0, 3), "bad");
    const std::string tail = "(utf8 \xc3\xa9\xe2\x82\xac";
    ASSERT_GE(agent4.size(), tail.size());
    EXPECT_EQ(agent4.substr(agent4.size() - tail.size()), tail) << "valid UTF-8 is kept";
    std::string middle = agent4.substr(3, agent4.size() - 3 - tail.size());
    EXPECT_FALSE(middle.empty());
    for (std::size_t i = 0; i < middle.size(); i += fffd.size())
      EXPECT_EQ(middle.substr(i, fffd.size()), fffd) << "ill-formed UTF-8 becomes U+FFFD: " << middle;
    const std::string ref4 = byId[4]["referrer"];
    EXPECT_EQ(ref4.substr(ref4.size() - 1), "-");
    EXPECT_EQ(ref4.find("\xef\xbf\xbe"), std::string::npos) << "U+FFFE is not an XML character";
  }
  EXPECT_TRUE(host.waitForLog("longer than max_line_bytes", kWait).has_value()) << host.stderrText();
  ASSERT_GT(rssBefore, 0);
  EXPECT_LT(rssAfter - rssBefore, 32 * 1024) << "the giant lines must not be buffered (KiB before/after: "
                                             << rssBefore << "/" << rssAfter << ")";
}

// ---------------------------------------------------------------------------
// 3. T34: a line written in two parts is one hit; a log missing at start, and
//    one deleted and recreated, is followed by name.
TEST(WeblogE2e, PartialLinesAndALogThatAppearsLater) {
  HostProcess host;
  const std::string dir = host.dir() + "/logs";
  const std::string log = dir + "/access.log";  // neither exists yet
  HostIni ini;
  ini.listener("push0", "weblog", {{"access_log", log}, {"push_interval_ms", "0"}});
  ini.listener("poll", "weblog", {{"access_log", log}, {"mode", "poll"}, {"poll_interval_ms", "20"}});
  host.startWithConfig(ini.text());
  WeblogClient::Options pollOpts;
  pollOpts.poll = true;
  std::vector<std::unique_ptr<WeblogClient>> clients;
  clients.push_back(std::make_unique<WeblogClient>("push0", host.port("push0", kWait), WeblogClient::Options{}));
  clients.push_back(std::make_unique<WeblogClient>("poll", host.port("poll", kWait), pollOpts));
  for (auto& c : clients) ASSERT_TRUE(c->waitForRoot(kWait)) << "the listener serves while the log is missing";
  EXPECT_TRUE(host.waitForLog("waiting for .*access\\.log to appear", kWait).has_value()) << host.stderrText();

  std::filesystem::create_directories(dir);
  int fd = openAppend(log);
  writeAllFd(fd, linesFor(1, 3));  // a file that appears is read from its start
  ASSERT_TRUE(allReached(clients, 3, kWait)) << describe(clients);

  // "abc" then later "def\n": one hit.
  const std::string line4 = clfLine(4, "split=here");
  const std::size_t cut = line4.find("split=") + 3;
  writeAllFd(fd, line4.substr(0, cut));
  std::this_thread::sleep_for(400ms);  // deliberately: many tailer rounds see the partial line
  for (auto& c : clients) EXPECT_EQ(c->state().ids.back(), 3u) << c->name() << ": a partial line was sent";
  writeAllFd(fd, line4.substr(cut));
  writeAllFd(fd, clfLine(5));
  ASSERT_TRUE(allReached(clients, 5, kWait)) << describe(clients);

  // Deleted, missing for a while, recreated.
  const std::size_t mark = host.logLineCount();
  ASSERT_EQ(::unlink(log.c_str()), 0);
  ::close(fd);
  ASSERT_TRUE(waitUntil([&] { return countLogLines(host, "is gone", mark) >= 2; }, kWait)) << host.stderrText();
  std::this_thread::sleep_for(300ms);  // deliberately: missing for several rounds
  fd = openAppend(log);
  writeAllFd(fd, clfLine(6));
  ::close(fd);
  EXPECT_TRUE(allReached(clients, 6, kWait)) << describe(clients);
  for (auto& c : clients) c->stop();
  for (auto& c : clients) {
    expectStream(*c, 1, 6);
    for (const auto& e : c->elements())
      if (e.id == 4) {
        EXPECT_EQ(e.attributes.at("request"), hitRequest(4, "split=here"));
      }
  }
}

// ---------------------------------------------------------------------------
// 4. T01: a client that never reads is cut off at max_client_backlog_bytes; a
//    reading client gets every line, and the host's memory stays bounded.
//
// The writer appends as fast as it can, never waiting for B: the log runs
// up to 20 MB ahead of B, 80 times the cap (the tailer is paced by the
// clients that read; see also BurstLargerThanTheBacklogCap... below).
TEST(WeblogE2e, SlowReaderIsCutOffOthersGetEveryLine) {
  HostProcess host;
  const std::string log = host.dir() + "/access.log";
  writeWholeFile(log, "");
  constexpr std::size_t kCap = 256 * 1024;
  HostIni ini;
  ini.set("threads", "2");
  ini.listener("weblog", "weblog",
               {{"access_log", log},
                {"push_interval_ms", "0"},
                {"poll_interval_ms", "10"},
                {"max_line_bytes", "16384"},
                {"max_client_backlog_bytes", std::to_string(kCap)}});
  ini.raw("\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n");
  host.startWithConfig(ini.text());
  const auto port = host.port("weblog", kWait);
  const auto admin = host.port("admin", kWait);
  // A: tiny receive buffer set before connect, never reads (MSG_PEEK only:
  // <hits> was written in connectionMade, so A is subscribed).
  TestClient slow = TestClient::connect(port, TestClient::Options{10s, 4096, 0});
  char peek[6] = {};
  ASSERT_EQ(::recv(slow.fd(), peek, sizeof peek, MSG_PEEK | MSG_WAITALL), 6) << std::strerror(errno);
  ASSERT_EQ(std::string(peek, 6), "<hits>");
  // B: reads everything.
  WeblogClient::Options bOpts;
  bOpts.keepAttributes = false;
  WeblogClient reader("reader", port, bOpts);
  ASSERT_TRUE(reader.waitForRoot(kWait));
  // On failure: the host's view (bytes out, connections) and whether a new client is served.
  auto diagnose = [&] {
    std::string out = "metrics:\n";
    std::istringstream metrics(httpGet(admin, "/metrics").body);
    for (std::string l; std::getline(metrics, l);)
      if (l.find("listener=\"weblog\"") != std::string::npos) out += "  " + l + "\n";
    WeblogClient probe("probe", port, WeblogClient::Options{});
    probe.waitForRoot(5s);
    const int pfd = openAppend(log);
    writeAllFd(pfd, clfLine(999999999));
    ::close(pfd);
    out += probe.waitForId(999999999, 5s) ? "a new client gets a new line" : "a new client gets no new line either";
    out += reader.waitForId(999999999, 5s) ? ", and so does the stalled reader\n" : "; the stalled reader does not\n";
    return out + "log:\n" + host.stderrText();
  };


  const int fd = openAppend(log);
  std::uint64_t next = 1;
  {
    std::vector<WeblogClient*> b{&reader};
    ASSERT_TRUE(syncOnFirstHit(fd, next, b)) << describe(reader);
  }
  const std::uint64_t firstOfReader = reader.state().ids.front();

  const long rssBefore = host.rssKiB();
  long rssPeak = rssBefore;
  ASSERT_GT(rssBefore, 0);

  // ~200-byte lines, 20 MB in all.
  const std::string pad(110, 'p');
  const std::size_t lineSize = clfLine(100000, pad).size();
  const std::uint64_t total = (20u << 20) / lineSize;
  constexpr std::uint64_t kChunk = 256;  // lines per write, ~51 KB
  std::uint64_t written = next - 1;
  const auto deadline = Clock::now() + 120s;
  while (written < total && Clock::now() < deadline) {
    std::string bytes;
    const std::uint64_t n = std::min<std::uint64_t>(kChunk, total - written);
    for (std::uint64_t i = 1; i <= n; ++i) bytes += clfLine(written + i, pad);
    writeAllFd(fd, bytes);
    written += n;
    rssPeak = std::max(rssPeak, host.rssKiB());
  }
  ::close(fd);
  ASSERT_EQ(written, total) << "the writer did not finish in time; reader: " << describe(reader) << diagnose();
  EXPECT_TRUE(reader.waitForId(total, kWait)) << reader.state().hits << " of " << total << " hits";
  rssPeak = std::max(rssPeak, host.rssKiB());
  reader.stop();
  expectStream(reader, firstOfReader, total);

  // A was cut off: logged (with A's address), and its stream ends: reading now,
  // A gets what the kernel buffers held when the host closed it, then EOF --
  // a prefix of the stream, not the 20 MB.
  sockaddr_in self{};
  socklen_t selfLen = sizeof self;
  ASSERT_EQ(::getsockname(slow.fd(), reinterpret_cast<sockaddr*>(&self), &selfLen), 0);
  const std::string slowPeer = "127.0.0.1:" + std::to_string(ntohs(self.sin_port));
  EXPECT_TRUE(host.waitForLog("peer=" + slowPeer + "\\].*client is not keeping up", kWait).has_value())
      << "expected a disconnect of " << slowPeer << "; log:\n"
      << host.stderrText();
  slow.setReceiveTimeout(10s);
  TestClient::Closed end = slow.waitClosed();
  EXPECT_NE(end.how, TestClient::Close::Timeout) << "the client that never reads should have been disconnected";
  HitStream prefix(false);
  prefix.feed(end.data);
  EXPECT_EQ(prefix.error(), "");
  std::vector<std::uint64_t> prefixIds;
  for (const auto& e : prefix.elements()) prefixIds.push_back(e.id);
  if (!prefixIds.empty()) {
    EXPECT_EQ(checkConsecutive(prefixIds, prefixIds.front(), prefixIds.back()), "");
  }
  EXPECT_LT(prefixIds.size(), total / 2) << "A received " << end.data.size() << " bytes";
  std::cout << "[   INFO   ] T01: " << total << " lines (" << (total * lineSize >> 20) << " MiB) written unpaced; reader got all; "
            << "cut-off client received " << end.data.size() << " bytes; host VmRSS " << rssBefore << " -> peak " << rssPeak
            << " KiB\n";
  EXPECT_LT(rssPeak - rssBefore, 64 * 1024) << "host VmRSS KiB before " << rssBefore << ", peak " << rssPeak;
}

// A burst of log lines larger than max_client_backlog_bytes, written at once
// (a busy server's buffered log flush, or a tailer round delayed by load), with
// the default limits: a client that reads as fast as it can must still get every
// line. The cap is there to cut off clients that do not read, not to drop a
// burst for everyone.
TEST(WeblogE2e, BurstLargerThanTheBacklogCapReachesAReadingClient) {
  HostProcess host;
  const std::string log = host.dir() + "/access.log";
  writeWholeFile(log, "");
  HostIni ini;
  ini.listener("weblog", "weblog", {{"access_log", log}, {"push_interval_ms", "0"}});  // cap: 1 MiB
  host.startWithConfig(ini.text());
  WeblogClient::Options opts;
  opts.keepAttributes = false;
  WeblogClient reader("reader", host.port("weblog", kWait), opts);
  ASSERT_TRUE(reader.waitForRoot(kWait));

  const std::string pad(110, 'p');
  WeblogClient second("second", host.port("weblog", kWait), opts);
  ASSERT_TRUE(second.waitForRoot(kWait));
  const std::uint64_t total = (12u << 20) / clfLine(1, pad).size();  // 12 MB of log in one write
  std::string bytes;
  for (std::uint64_t id = 1; id <= total; ++id) bytes += clfLine(id, pad);
  const auto burstStart = Clock::now();
  const int fd = openAppend(log);
  writeAllFd(fd, bytes);
  ::close(fd);
  for (WeblogClient* c : {&reader, &second}) {
    EXPECT_TRUE(c->waitFor(
        [&](const WeblogClient::State& s) { return s.closed || (!s.ids.empty() && s.ids.back() >= total); }, kWait));
    c->stop();
    expectStream(*c, 1, total);
  }
  std::cout << "[   INFO   ] burst: " << total << " lines (" << (bytes.size() >> 20) << " MiB) in one write, "
            << "each of 2 readers got all in order in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - burstStart).count() << " ms\n";
  EXPECT_FALSE(host.waitForLog("client is not keeping up|did not take their hits", 1ms).has_value()) << host.stderrText();
}

}  // namespace
}  // namespace protohost::e2e::plugintest
