// Reliability matrix row T24 (docs/reliability.md): SIGTERM drains
// gracefully, and ends the process in bounded time even while a plugin
// blocks a reactor. The real host binary, loopback only.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "HostProcess.h"
#include "ReliabilitySupport.h"
#include "TestClient.h"
#include "TimingSlack.h"

namespace protohost::reliability {
namespace {

using namespace std::chrono_literals;
using e2e::HostIni;
using e2e::HostProcess;
using e2e::PatternStream;

/// What one client thread saw.
struct Outcome {
  std::string kind;            // "echo-pending", "echo-stream", "fibonacci", "weblog", "half-line"
  Ending how = Ending::Timeout;
  int error = 0;
  long long endMs = -1;        // when it ended, ms after SIGTERM (-1: before)
  std::string problem;         // "" when its data was right
  std::uint64_t bytes = 0;     // bytes received (echo) or answers (fibonacci)
  std::vector<std::string> numbers;  // fibonacci answers
};

std::string clfLine(int i) {
  return "127.0.0." + std::to_string(1 + i % 200) + " - - [10/Oct/2000:13:55:36 -0700] \"GET /page/" + std::to_string(i) +
         " HTTP/1.0\" 200 " + std::to_string(100 + i) + " \"-\" \"drain-test\"\n";
}

// T24: 20 clients mid-session (4 echo clients with 256 KiB echo pending and
// unread, 1 echo client with over 1 MiB pending that the host stopped reading
// from (back-pressure), 4 echo clients streaming both ways, 5 fibonacci request loops,
// 4 weblog push subscribers, 1 fibonacci client with half a request line,
// 1 echo client that never reads), then SIGTERM with drain_timeout_ms = 2000:
// new connects are refused at once (ECONNREFUSED within ~200 ms), echo clients
// get every pending byte then EOF, streams end with EOF, the half-line client
// is closed by the drain deadline, the never-reading client exactly at it, the
// host exits 0 within drain_timeout + 1 s, and after a restart fibonacci
// continues exactly after the last number served.
TEST(Reliability, T24_SigtermGracefulDrain) {
  TempDir dir;
  const std::string stateFile = dir.file("fib.state");
  const std::string accessLog = dir.write("access.log", "");
  constexpr int kDrainMs = 2000;
  auto config = [&] {
    HostIni ini;
    ini.set("threads", "2").set("drain_timeout_ms", std::to_string(kDrainMs));
    ini.listener("echo", "echo");
    ini.listener("echo_stream", "echo");
    ini.listener("echo_big", "echo");
    ini.listener("fibonacci", "fibonacci", {{"state_file", stateFile}});
    ini.listener("weblog", "weblog", {{"access_log", accessLog}, {"mode", "push"}, {"push_interval_ms", "100"},
                                      {"poll_interval_ms", "20"}});
    ini.raw(kAdminSection);
    return ini.text();
  };
  auto host = std::make_unique<HostProcess>();
  DumpLogOnFailure dump{*host};
  host->startWithConfig(config());
  const std::uint16_t echo = host->port("echo"), stream = host->port("echo_stream"), big = host->port("echo_big"),
                      fib = host->port("fibonacci"), weblog = host->port("weblog"), admin = host->port("admin");

  std::atomic<bool> stopAll{false};
  std::atomic<long long> termAtNs{0};  // steady_clock ns of the SIGTERM, 0 before
  auto sinceTerm = [&]() -> long long {
    const long long t = termAtNs.load();
    if (t == 0) return -1;
    return (Clock::now().time_since_epoch().count() - t) / 1'000'000;
  };
  std::mutex mutex;
  std::vector<Outcome> outcomes;
  auto record = [&](Outcome o) {
    std::lock_guard<std::mutex> lock(mutex);
    outcomes.push_back(std::move(o));
  };
  std::vector<std::thread> threads;

  // Weblog: an appender writes a hit every 20 ms until the end.
  std::thread appender([&] {
    std::ofstream out(accessLog, std::ios::app);
    for (int i = 0; !stopAll; ++i) {
      out << clfLine(i) << std::flush;
      std::this_thread::sleep_for(20ms);
    }
  });

  // On any early return (a failed ASSERT): stop the host, then join every thread.
  struct JoinAll {
    std::atomic<bool>& stop;
    HostProcess& host;
    std::vector<std::thread>& threads;
    std::thread& appender;
    ~JoinAll() {
      stop = true;
      if (host.running()) host.signal(SIGKILL);
      for (auto& t : threads)
        if (t.joinable()) t.join();
      if (appender.joinable()) appender.join();
    }
  } joinAll{stopAll, *host, threads, appender};

  // 4 echo clients: 256 KiB sent, nothing read yet.
  constexpr int kPending = 4;
  constexpr std::size_t kPendingBytes = 256 * 1024;
  std::vector<std::unique_ptr<TestClient>> pending;
  for (int i = 0; i < kPending; ++i) {
    pending.push_back(std::make_unique<TestClient>(TestClient::connect(echo)));
    pending.back()->sendAll(PatternStream(static_cast<std::uint64_t>(i)).bytes(0, kPendingBytes));
  }
  // 4 streaming echo clients: a writer and a reader each. Two send a 4 KiB
  // chunk every 5 ms and read at once; two ("heavy") send without pause and,
  // until the SIGTERM, read slower than they send, so the host has echo queued
  // (and their input waiting) when the drain starts.
  constexpr int kStreams = 4;
  std::atomic<int> streamsFlowing{0};
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      Outcome o;
      const bool heavy = i >= 2;
      o.kind = heavy ? "echo-stream-heavy" : "echo-stream";
      const PatternStream pattern(1000u + static_cast<std::uint64_t>(i));
      TestClient::Options opts;
      if (heavy) opts.receiveBuffer = 16 * 1024;
      TestClient c = TestClient::connect(stream, opts);
      std::atomic<std::uint64_t> sent{0};
      std::atomic<bool> readerDone{false};
      std::thread writer([&] {
        std::string chunk(4096, '\0');
        timeval tv{0, 100000};
        ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        while (!readerDone && !stopAll) {
          pattern.fill(sent, chunk.data(), chunk.size());
          ssize_t n = c.sendSome(chunk.data(), chunk.size());
          if (n > 0) sent += static_cast<std::uint64_t>(n);
          else if (errno != EAGAIN && errno != EWOULDBLOCK) break;  // the host closed
          if (!heavy) std::this_thread::sleep_for(5ms);
        }
      });
      std::string buf(65536, '\0');
      bool counted = false;
      for (;;) {
        pollfd p{c.fd(), POLLIN, 0};
        if (::poll(&p, 1, 8000) <= 0) {
          o.how = Ending::Timeout;
          break;
        }
        ssize_t n = ::recv(c.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          if (o.problem.empty() && pattern.mismatch(o.bytes, std::string_view(buf.data(), static_cast<std::size_t>(n))) !=
                                       std::string_view::npos)
            o.problem = "wrong echo bytes at offset ~" + std::to_string(o.bytes);
          o.bytes += static_cast<std::uint64_t>(n);
          if (!counted && o.bytes >= 64 * 1024) {
            counted = true;
            ++streamsFlowing;
          }
          if (heavy && termAtNs.load() == 0) std::this_thread::sleep_for(2ms);  // slower than the writer
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        o.how = n == 0 ? Ending::Eof : errno == ECONNRESET ? Ending::Reset : Ending::Error;
        o.error = n < 0 ? errno : 0;
        break;
      }
      o.endMs = sinceTerm();
      readerDone = true;
      writer.join();
      if (o.bytes > sent) o.problem = "more echoed than sent";
      record(std::move(o));
    });
  }
  // 5 fibonacci request loops.
  constexpr int kFibLoops = 5;
  for (int i = 0; i < kFibLoops; ++i) {
    threads.emplace_back([&] {
      Outcome o;
      o.kind = "fibonacci";
      try {
        TestClient c = TestClient::connect(fib);
        for (;;) {
          c.sendAll("NEXT\n");
          o.numbers.push_back(c.readLine());
          std::this_thread::sleep_for(2ms);
        }
      } catch (const IoError& e) {
        o.how = e.error() == 0 ? Ending::Eof : e.error() == ECONNRESET || e.error() == EPIPE ? Ending::Reset
                : e.timedOut()                                                              ? Ending::Timeout
                                                                                            : Ending::Error;
        o.error = e.error();
      }
      o.endMs = sinceTerm();
      for (std::size_t k = 0; k < o.numbers.size(); ++k) {
        if (!isDecimal(o.numbers[k])) o.problem = "not a number: " + o.numbers[k];
        else if (k > 0 && !decimalLess(o.numbers[k - 1], o.numbers[k])) o.problem = "answers not increasing";
      }
      record(std::move(o));
    });
  }
  // 4 weblog push subscribers.
  constexpr int kSubscribers = 4;
  std::atomic<int> subscribersFed{0};
  for (int i = 0; i < kSubscribers; ++i) {
    threads.emplace_back([&] {
      Outcome o;
      o.kind = "weblog";
      TestClient c = TestClient::connect(weblog);
      std::string data, buf(65536, '\0');
      bool counted = false;
      for (;;) {
        pollfd p{c.fd(), POLLIN, 0};
        if (::poll(&p, 1, 8000) <= 0) break;
        ssize_t n = ::recv(c.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          data.append(buf.data(), static_cast<std::size_t>(n));
          if (!counted && data.find("<hit ") != std::string::npos) {
            counted = true;
            ++subscribersFed;
          }
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        o.how = n == 0 ? Ending::Eof : errno == ECONNRESET ? Ending::Reset : Ending::Error;
        o.error = n < 0 ? errno : 0;
        break;
      }
      o.endMs = sinceTerm();
      o.bytes = data.size();
      if (data.rfind("<hits>", 0) != 0) o.problem = "stream does not start with <hits>";
      else if (data.find("<hit ") == std::string::npos) o.problem = "no hit received";
      record(std::move(o));
    });
  }
  // 1 fibonacci client with half a request line, never finished.
  TestClient halfLine = TestClient::connect(fib);
  halfLine.sendAll("NEX");
  // 1 echo client that sends until its sends stall and never reads: its echo
  // cannot be flushed, so only the drain deadline closes it.
  TestClient stuck = TestClient::connect(stream);
  {
    timeval tv{0, 200000};
    ::setsockopt(stuck.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const std::string chunk(65536, 's');
    std::uint64_t stuckSent = 0;
    while (stuckSent < 64u * 1024 * 1024 && stuck.sendSome(chunk.data(), chunk.size()) > 0) stuckSent += chunk.size();
    ASSERT_LT(stuckSent, 64u * 1024 * 1024) << "the stuck client's sends never stalled";
  }

  // 1 echo client ("big") that sends until the host stops reading from it
  // (back-pressure: over 1 MiB of echo queued) and reads only after the
  // SIGTERM: it must get every byte the host read from it, then EOF.
  TestClient bigClient = TestClient::connect(big);
  const PatternStream bigPattern(4242);
  {
    timeval tv{0, 200000};
    ::setsockopt(bigClient.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string chunk(65536, '\0');
    std::uint64_t bigSent = 0;
    for (;;) {
      bigPattern.fill(bigSent, chunk.data(), chunk.size());
      ssize_t n = bigClient.sendSome(chunk.data(), chunk.size());
      if (n <= 0) break;
      bigSent += static_cast<std::uint64_t>(n);
      if (n < static_cast<ssize_t>(chunk.size())) break;  // the pattern must stay aligned: stop at a short send
      ASSERT_LT(bigSent, 64u * 1024 * 1024) << "the big client's sends never stalled";
    }
  }
  // What the host read from it: stable once reading is paused.
  double bigRead = -1;
  ASSERT_TRUE(waitUntil(
      [&] {
        const double before = metricValue(scrapeMetrics(admin), "protohost_received_bytes_total", {{"listener", "echo_big"}}).value_or(-1);
        std::this_thread::sleep_for(200ms);
        bigRead = metricValue(scrapeMetrics(admin), "protohost_received_bytes_total", {{"listener", "echo_big"}}).value_or(-1);
        return bigRead > 0 && bigRead == before;
      },
      10s, 0ms));

  // Everyone mid-session: echo input all read by the host, streams flowing, numbers and hits arriving.
  const std::uint64_t pendingTotal = kPending * kPendingBytes;
  std::string page;
  ASSERT_TRUE(waitUntil(
      [&] {
        page = scrapeMetrics(admin);
        return metricValue(page, "protohost_received_bytes_total", {{"listener", "echo"}}) ==
               std::optional<double>(static_cast<double>(pendingTotal));
      },
      10s, 20ms))
      << "the host did not read the pending echo input\n" << page;
  ASSERT_TRUE(waitUntil([&] { return streamsFlowing.load() == kStreams && subscribersFed.load() == kSubscribers; }, 10s))
      << streamsFlowing.load() << " streams flowing, " << subscribersFed.load() << " subscribers fed";
  std::this_thread::sleep_for(200ms);  // fibonacci loops have answers by now
  ASSERT_EQ(metricValue(scrapeMetrics(admin), "protohost_connections_open", {{"listener", "fibonacci"}}),
            std::optional<double>(kFibLoops + 1));

  // SIGTERM; probe for ECONNREFUSED on a listener from the same instant.
  const auto term = Clock::now();
  termAtNs = term.time_since_epoch().count();
  ASSERT_TRUE(host->signal(SIGTERM));
  long long refusedMs = -1;
  int connectedDuringDrain = 0;
  while (Clock::now() - term < 3s) {
    int err = probeConnect(echo, 200ms);
    if (err == ECONNREFUSED) {
      refusedMs = msSince(term);
      break;
    }
    if (err == 0) ++connectedDuringDrain;
    std::this_thread::sleep_for(1ms);
  }
  // Pending echo: every byte, then EOF.
  std::vector<Outcome> pendingOutcomes;
  for (int i = 0; i < kPending; ++i) {
    Outcome o;
    o.kind = "echo-pending";
    TestClient::Closed r = pending[static_cast<std::size_t>(i)]->waitClosed(5s);
    o.how = r.how;
    o.error = r.error;
    o.endMs = msSince(term);
    o.bytes = r.data.size();
    if (r.data != PatternStream(static_cast<std::uint64_t>(i)).bytes(0, kPendingBytes))
      o.problem = "got " + std::to_string(r.data.size()) + " of " + std::to_string(kPendingBytes) + " bytes" +
                  (r.data.size() <= kPendingBytes && r.data == PatternStream(static_cast<std::uint64_t>(i)).bytes(0, r.data.size())
                       ? " (a correct prefix)"
                       : " (wrong bytes)");
    pendingOutcomes.push_back(std::move(o));
  }
  {
    Outcome o;
    o.kind = "echo-big";
    TestClient::Closed r = bigClient.waitClosed(5s);
    o.how = r.how;
    o.error = r.error;
    o.endMs = msSince(term);
    o.bytes = r.data.size();
    const auto want = static_cast<std::size_t>(bigRead);
    if (r.data.size() != want || bigPattern.mismatch(0, r.data) != std::string_view::npos)
      o.problem = "got " + std::to_string(r.data.size()) + " of the " + std::to_string(want) +
                  " bytes the host had read (" + std::to_string(static_cast<long long>(want) - static_cast<long long>(r.data.size())) +
                  " lost)";
    pendingOutcomes.push_back(std::move(o));
  }
  TestClient::Closed half = halfLine.waitClosed(std::chrono::milliseconds(kDrainMs + 3000));
  const long long halfMs = msSince(term);
  // The stuck client: nothing read until it is closed; then it must be closed.
  pollfd stuckPoll{stuck.fd(), POLLRDHUP, 0};
  long long stuckMs = -1;
  if (::poll(&stuckPoll, 1, kDrainMs + 3000 - static_cast<int>(msSince(term))) > 0) stuckMs = msSince(term);
  const auto status = host->waitExit(std::chrono::milliseconds(kDrainMs + 5000));
  const long long exitMs = msSince(term);
  stopAll = true;
  for (auto& t : threads) t.join();
  appender.join();
  for (auto& o : pendingOutcomes) outcomes.push_back(std::move(o));

  // Report.
  std::cout << "[   INFO   ] T24: ECONNREFUSED " << refusedMs << " ms after SIGTERM (" << connectedDuringDrain
            << " connects before it); exit status " << (status ? std::to_string(*status) : "none") << " after " << exitMs
            << " ms; half-line client " << endingName(half.how) << " after " << halfMs
            << " ms; never-reading echo client closed after " << stuckMs << " ms\n";
  std::map<std::string, std::map<std::string, int>> endings;
  for (const auto& o : outcomes) {
    endings[o.kind][endingName(o.how)]++;
    std::cout << "[   INFO   ] T24:   " << o.kind << ": " << endingName(o.how)
              << (o.error ? " (" + std::string(std::strerror(o.error)) + ")" : "") << " at +" << o.endMs << " ms, "
              << (o.kind == "fibonacci" ? std::to_string(o.numbers.size()) + " answers" : std::to_string(o.bytes) + " bytes")
              << (o.problem.empty() ? "" : "; PROBLEM: " + o.problem) << "\n";
  }

  EXPECT_GE(refusedMs, 0) << "new connects were never refused";
  EXPECT_LE(refusedMs, 200) << "new connects not refused at once";
  EXPECT_EQ(status, std::optional<int>(0));
  EXPECT_LE(exitMs, kDrainMs + protohost::testing::slackMs(1000)) << "exit later than drain_timeout + 1 s";
  EXPECT_NE(half.how, Ending::Timeout) << "the half-line client was never closed";
  EXPECT_LE(halfMs, kDrainMs + 500) << "the half-line client was closed after the drain deadline";
  EXPECT_EQ(half.data, "");
  EXPECT_GE(stuckMs, kDrainMs - 100) << "the never-reading client was closed before the drain deadline";
  EXPECT_LE(stuckMs, kDrainMs + 1000) << "the never-reading client was not force-closed at the drain deadline";
  EXPECT_TRUE(host->waitForLog("drain timeout: closing 1 connection", 0ms).has_value());
  ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(kPending + 1 + kStreams + kFibLoops + kSubscribers));
  for (const auto& o : outcomes) {
    SCOPED_TRACE(o.kind);
    EXPECT_EQ(o.problem, "");
    if (o.kind == "fibonacci") {
      EXPECT_TRUE(o.how == Ending::Eof || o.how == Ending::Reset) << endingName(o.how);
      EXPECT_FALSE(o.numbers.empty());
    } else {
      EXPECT_EQ(o.how, Ending::Eof) << endingName(o.how) << " " << std::strerror(o.error);
    }
    EXPECT_GE(o.endMs, 0) << "ended before the SIGTERM";
    EXPECT_LE(o.endMs, kDrainMs + 1000);
  }

  // Fibonacci continues above the last number served.
  std::vector<std::string> served;
  for (const auto& o : outcomes) served.insert(served.end(), o.numbers.begin(), o.numbers.end());
  std::sort(served.begin(), served.end(), decimalLess);
  ASSERT_GE(served.size(), 3u);
  EXPECT_EQ(std::adjacent_find(served.begin(), served.end()), served.end()) << "a number was served twice";
  HostProcess again;  // the first host has exited; its log stays for DumpLogOnFailure
  again.startWithConfig(config());
  TestClient c = TestClient::connect(again.port("fibonacci"));
  c.sendAll("NEXT\n");
  const std::string next = c.readLine();
  const std::string& last = served.back();
  const std::string& beforeLast = served[served.size() - 2];
  const bool contiguousTail = decimalAdd(served[served.size() - 3], beforeLast) == last;
  const bool exact = contiguousTail && next == decimalAdd(beforeLast, last);
  std::cout << "[   INFO   ] T24: " << served.size() << " numbers served, last " << last.size() << " digits; after restart "
            << next.size() << " digits, " << (exact ? "exactly the next Fibonacci number" : "not the immediate successor")
            << "\n";
  EXPECT_TRUE(isDecimal(next)) << next;
  EXPECT_TRUE(decimalLess(last, next)) << "after restart: " << next << " is not above the last served " << last;
  EXPECT_TRUE(exact) << "a clean stop should persist the exact next answer";
  again.signal(SIGTERM);
  EXPECT_EQ(again.waitExit(10s), std::optional<int>(0));
}

// ---- TERM in bounded time while a plugin blocks a reactor (README: Signals)

constexpr int kBlockedDrainMs = 1000;
constexpr int kBlockedBoundMs = kBlockedDrainMs + 2500;  // drain_timeout_ms + the documented 2.5 s

/// [host] for the rows below: drain_timeout_ms = 1000 and a watchdog that
/// reports a blocked reactor within 200 ms; plugins_dir holds echo and blocking.
HostIni blockingHostIni(HostProcess& host, const std::string& threads) {
  HostIni ini(host.linkPlugins({std::string(e2e::kPluginDir) + "/echo.so", std::string(e2e::kTestPluginDir) + "/blocking.so"}));
  ini.set("threads", threads).set("drain_timeout_ms", std::to_string(kBlockedDrainMs)).set("watchdog_ms", "200");
  return ini;
}

/// Makes @p blocker (a client of tests/fixtures/blocking) block its reactor
/// for 60 s, once the watchdog reported it blocked.
void blockItsReactor(HostProcess& host, TestClient& blocker) {
  blocker.sendAll("0\n");
  ASSERT_EQ(blocker.readLine(), "done");
  const std::size_t mark = host.logLineCount();
  blocker.sendAll("60000\n");
  ASSERT_TRUE(host.waitForLog("watchdog: reactor thread has not run", 5s, mark).has_value()) << "not blocked";
}

/// After a SIGTERM at @p term: the host exits 70 within the bound, not before
/// the drain deadline, with an error line (after log line @p mark) that names
/// listener slow, the reactor it blocks and @p what it did not finish.
void expectBoundedExitNamingSlow(HostProcess& host, Clock::time_point term, std::size_t mark, const std::string& what) {
  const std::optional<int> status = host.waitExit(std::chrono::milliseconds(kBlockedBoundMs + 2000));
  const long long exitMs = msSince(term);
  ASSERT_TRUE(status.has_value()) << "still running " << exitMs << " ms after SIGTERM";
  std::cout << "[   INFO   ] exit " << *status << " after " << exitMs << " ms\n";
  EXPECT_EQ(*status, 70);
  EXPECT_GE(exitMs, kBlockedDrainMs);
  EXPECT_LE(exitMs, kBlockedBoundMs + protohost::testing::slackMs(500));  // + the scheduling slack of a loaded machine
  const auto line = host.waitForLog("ERROR .*listener slow: reactor-[01] \\(in plugin code\\) did not finish " + what, 0ms, mark);
  EXPECT_TRUE(line.has_value()) << "no error line naming the listener and \"" << what << "\"";
  if (line) std::cout << "[   INFO   ] " << *line << "\n";
}

// T24 with a plugin that blocks its reactor (tests/fixtures/blocking: 60 s in
// dataReceived), threads = 2, drain_timeout_ms = 1000: SIGTERM still ends the
// process within drain_timeout_ms + 2.5 s (README: Signals), with exit code 70
// and an error line that names the blocking listener and its reactor. The echo
// client on the other reactor is drained as usual, at once (EOF).
TEST(Reliability, T24_SigtermEndsInBoundedTimeWhileAPluginBlocksAReactor) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini = blockingHostIni(host, "2");
  ini.listener("echo", "echo");
  ini.listener("slow", "blocking");
  host.startWithConfig(ini.text());
  const std::uint16_t echo = host.port("echo"), slow = host.port("slow");

  // Least connections puts them on different reactors.
  TestClient session = TestClient::connect(echo);
  ASSERT_EQ(session.roundTrip("before"), "before");
  TestClient blocker = TestClient::connect(slow);
  const std::size_t mark = host.logLineCount();
  blockItsReactor(host, blocker);
  if (::testing::Test::HasFatalFailure()) return;

  const auto term = Clock::now();
  ASSERT_TRUE(host.signal(SIGTERM));
  // The other reactor drains meanwhile: its echo client is closed at once, long before the exit.
  EXPECT_EQ(session.waitClosed(std::chrono::milliseconds(kBlockedDrainMs)).how, Ending::Eof);
  EXPECT_TRUE(host.running()) << "exited during the drain";
  expectBoundedExitNamingSlow(host, term, mark, "closing its connections");
}

// T24 while the main thread itself waits on the blocked reactor: a reload
// replaced listener echo (idle_timeout_ms changed), and the last connection of
// its previous configuration ends while listener slow blocks the other
// reactor. The main thread's once-a-second release of that configuration
// (stop its factory, then let every reactor run what it posted) waits on the
// blocked reactor; SIGTERM must still end the process in bounded time, exit
// 70, naming listener slow.
TEST(Reliability, T24_SigtermBoundedWhileReleasingAReplacedListenerWaitsOnABlockedReactor) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  auto config = [&](const std::string& idleMs) {
    HostIni ini = blockingHostIni(host, "2");
    ini.set("log_level", "debug");
    ini.listener("echo", "echo", {{"idle_timeout_ms", idleMs}});
    ini.listener("slow", "blocking");
    return ini.text();
  };
  host.startWithConfig(config("0"));
  const std::uint16_t echo = host.port("echo"), slow = host.port("slow");
  TestClient old = TestClient::connect(echo);
  ASSERT_EQ(old.roundTrip("before"), "before");
  std::size_t mark = host.logLineCount();
  host.writeConfig(config("600000"));
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(host.waitForLog("configuration reloaded", 5s, mark).has_value());
  // `old` holds the replaced configuration of echo; the blocker goes to the other reactor.
  TestClient blocker = TestClient::connect(slow);
  mark = host.logLineCount();
  blockItsReactor(host, blocker);
  if (::testing::Test::HasFatalFailure()) return;
  old.close();
  ASSERT_TRUE(host.waitForLog("\\[listener=echo\\] last connection of the previous configuration ended", 5s, mark).has_value());

  const auto term = Clock::now();
  ASSERT_TRUE(host.signal(SIGTERM));
  expectBoundedExitNamingSlow(host, term, mark, "releasing the previous configuration of listener echo");
}

// T24 with a SIGHUP while the only reactor (reactor-0) is blocked: the reload
// adds listener echo, whose factory must start on reactor-0, so the reload
// waits there. It is not rejected (a plugin that runs long is no error): it
// completes once the reactor is free. A SIGTERM during that wait still ends the
// process in bounded time, exit 70, naming listener slow; the reload is never
// applied.
TEST(Reliability, T24_SigtermBoundedWhileAReloadWaitsOnABlockedReactor) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini = blockingHostIni(host, "1");
  ini.listener("slow", "blocking");
  host.startWithConfig(ini.text());
  TestClient blocker = TestClient::connect(host.port("slow"));
  blockItsReactor(host, blocker);
  if (::testing::Test::HasFatalFailure()) return;
  ini.listener("echo", "echo");
  host.writeConfig(ini.text());
  const std::size_t mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(host.waitForLog("SIGHUP received: reloading", 5s, mark).has_value());

  const auto term = Clock::now();
  ASSERT_TRUE(host.signal(SIGTERM));
  expectBoundedExitNamingSlow(host, term, mark, "applying a reload");
  EXPECT_FALSE(host.waitForLog("configuration reloaded", 0ms, mark).has_value());
}

}  // namespace
}  // namespace protohost::reliability
