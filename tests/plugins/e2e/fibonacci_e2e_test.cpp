// End-to-end: the fibonacci plugin in the real host. Every answer is checked
// against the test's own exact big-number sequence: concurrency, restarts by
// SIGTERM and SIGKILL at random instants, corrupt state, a state directory that
// disappears, oversized and trickled requests, and the end of the sequence.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <unordered_map>

#include "PluginE2eSupport.h"

namespace protohost::e2e::plugintest {
namespace {

constexpr auto kWait = 30s;  // generous: other builds share this 2-core machine

HostIni fibIni(const std::string& statePath, HostIni::Keys extra = {}, const std::string& threads = "2") {
  HostIni ini;
  ini.set("threads", threads);
  HostIni::Keys keys{{"state_file", statePath}};
  keys.insert(keys.end(), extra.begin(), extra.end());
  ini.listener("fib", "fibonacci", keys);
  return ini;
}

std::string firstLines(const std::vector<std::string>& v, std::size_t n = 3) {
  std::string out;
  for (std::size_t i = 0; i < v.size() && i < n; ++i) out += "\"" + v[i].substr(0, 60) + "\" ";
  return out;
}

// ---------------------------------------------------------------------------
// 5. 50 clients x 200 requests: the union of the answers is exactly answers
//    1..10000, each once, and each client's answers increase.
TEST(FibonacciE2e, FiftyClientsTimesTwoHundredGetExactlyTheFirstTenThousandAnswers) {
  constexpr std::size_t kClients = 50, kPerClient = 200, kTotal = kClients * kPerClient;
  HostProcess host;
  host.startWithConfig(fibIni(host.dir() + "/fib.state").text());
  const auto port = host.port("fib", kWait);

  const std::vector<std::string> expected = fibAnswers(kTotal);
  std::unordered_map<std::string_view, std::size_t> indexOf;
  for (std::size_t k = 0; k < expected.size(); ++k) indexOf.emplace(expected[k], k + 1);

  std::vector<std::vector<std::string>> answers(kClients);
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < kClients; ++i)
    threads.emplace_back([&, i] {
      // Mixed: one at a time, small windows, and all 200 pipelined at once.
      const std::size_t window = i % 3 == 0 ? 1 : i % 3 == 1 ? 8 : kPerClient;
      try {
        answers[i] = requestAnswers(port, kPerClient, window);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();

  std::vector<int> seenBy(kTotal + 1, -1);
  int reported = 0;
  for (std::size_t i = 0; i < kClients; ++i) {
    SCOPED_TRACE("client " + std::to_string(i));
    EXPECT_EQ(errors[i], "");
    ASSERT_EQ(answers[i].size(), kPerClient) << firstLines(answers[i]);
    std::size_t prev = 0;
    for (const auto& a : answers[i]) {
      auto it = indexOf.find(a);
      if (it == indexOf.end()) {
        if (reported++ < 5) ADD_FAILURE() << "not one of answers 1.." << kTotal << ": \"" << a.substr(0, 80) << "\"";
        continue;
      }
      const std::size_t k = it->second;
      if (k <= prev && reported++ < 5) ADD_FAILURE() << "answer " << k << " after answer " << prev;
      if (seenBy[k] >= 0 && reported++ < 5)
        ADD_FAILURE() << "answer " << k << " handed out twice (clients " << seenBy[k] << " and " << i << ")";
      seenBy[k] = static_cast<int>(i);
      prev = k;
    }
  }
  std::size_t missing = 0;
  for (std::size_t k = 1; k <= kTotal; ++k) missing += seenBy[k] < 0;
  EXPECT_EQ(missing, 0u) << "the union must be exactly answers 1.." << kTotal;
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);
}

// ---------------------------------------------------------------------------
// 6. Restarts under load, by SIGTERM and SIGKILL at random instants.
TEST(FibonacciE2e, NoAnswerRepeatsAcrossRandomSigtermAndSigkillRestarts) {
  constexpr int kCycles = 10;
  constexpr std::size_t kClients = 8, kMaxPerClient = 150, kWindow = 4;
  TempDir dir;
  const std::string state = dir / "fib.state";
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("random seed " + std::to_string(seed));
  std::mt19937 rng(seed);

  FibLedger ledger;            // every answer of every cycle
  std::uint64_t maxIndex = 0;  // highest answer index received in all cycles so far
  bool previousWasTerm = false;
  std::size_t totalAnswers = 0, termCycles = 0, killCycles = 0;

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    const int sig = cycle == 0 ? SIGTERM : cycle == 1 ? SIGKILL : (rng() % 2 ? SIGTERM : SIGKILL);
    (sig == SIGTERM ? termCycles : killCycles)++;
    SCOPED_TRACE("cycle " + std::to_string(cycle) + " ending with " + (sig == SIGTERM ? "SIGTERM" : "SIGKILL"));

    if (cycle > 0) {
      auto next = parseFibState(readWholeFile(state));
      ASSERT_TRUE(next.has_value()) << "state file does not parse: " << readWholeFile(state);
      EXPECT_GT(*next, maxIndex) << "the state's ceiling is at or below an answer already handed out";
      if (previousWasTerm) {
        EXPECT_EQ(*next, maxIndex + 1) << "a clean stop records the exact next answer";
      }
    }

    HostProcess host;
    host.startWithConfig(fibIni(state, {{"reserve_block", "16"}}).text());
    const auto port = host.port("fib", kWait);
    EXPECT_FALSE(std::filesystem::exists(state + ".tmp")) << "a stale temp file is removed at start";

    FibHammer load;
    load.start(port, kClients, kWindow, kMaxPerClient);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(10, 300)(rng)));
    ASSERT_TRUE(host.signal(sig));
    load.join();
    EXPECT_EQ(host.waitExit(kWait), sig == SIGTERM ? 0 : 128 + SIGKILL) << host.stderrText();
    for (std::size_t i = 0; i < kClients; ++i) EXPECT_EQ(load.odd[i], "") << "client " << i;

    const FibLedger::Life life = ledger.add(load.answers);
    EXPECT_TRUE(life.clean()) << life.repeats << " repeated, " << life.notAnswers << " not answers, "
                              << life.outOfOrder << " out of order; first: "
                              << (life.problems.empty() ? std::string() : life.problems.front());
    if (life.answers > 0 && previousWasTerm) {
      EXPECT_EQ(life.min, maxIndex + 1) << "after SIGTERM the sequence continues with no gap";
    }
    maxIndex = ledger.highest();
    totalAnswers += life.answers;
    std::cout << "[ cycle " << cycle << " ] " << (sig == SIGTERM ? "SIGTERM" : "SIGKILL") << ": " << life.answers
              << " answers"
              << (life.answers == 0 ? std::string()
                                    : ", numbers " + std::to_string(life.min) + ".." + std::to_string(life.max))
              << ", " << load.errLines.load() << " ERR lines\n";
    if (sig == SIGTERM) {
      auto next = parseFibState(readWholeFile(state));
      ASSERT_TRUE(next.has_value());
      EXPECT_EQ(*next, maxIndex + 1) << "SIGTERM records the exact next answer";
    }
    previousWasTerm = sig == SIGTERM;
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(totalAnswers, 500u) << "the clients should have been answered before most signals";
  EXPECT_GT(termCycles, 0u);
  EXPECT_GT(killCycles, 0u);
}

// ---------------------------------------------------------------------------
// 7. T31: a corrupt or truncated state file refuses start (exit 65), untouched.
TEST(FibonacciE2e, CorruptStateFileRefusesToStartWithExit65) {
  std::mt19937 rng(7);
  std::string random(300, '\0');
  for (auto& c : random) c = static_cast<char>(rng());
  const std::string valid = fibStateLine(12345);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"random bytes", random},
      {"empty file", ""},
      {"valid line, wrong checksum", fibStateLine(500, crc32("protohost-fibonacci v1 next=500") ^ 1u)},
      {"lower value, stale checksum", fibStateLine(3, crc32("protohost-fibonacci v1 next=12345"))},
      {"truncated line", valid.substr(0, valid.size() / 2)},
      {"no final newline", valid.substr(0, valid.size() - 1)},
  };
  for (const auto& [name, content] : cases) {
    SCOPED_TRACE(name);
    HostProcess host;
    const std::string state = host.dir() + "/fib.state";
    writeWholeFile(state, content);
    host.startWithConfig(fibIni(state).text());
    EXPECT_EQ(host.waitExit(kWait), 65);
    const std::string err = host.stderrText();
    EXPECT_NE(err.find("corrupt fibonacci state file"), std::string::npos) << err;
    EXPECT_NE(err.find(state), std::string::npos) << "the message names the file: " << err;
    EXPECT_EQ(err.find("listening on"), std::string::npos) << "nothing may be served: " << err;
    EXPECT_EQ(readWholeFile(state), content) << "the corrupt file must be left as it was";
  }

  // Control: a valid record is continued from, exactly.
  HostProcess host;
  const std::string state = host.dir() + "/fib.state";
  writeWholeFile(state, fibStateLine(500));
  host.startWithConfig(fibIni(state).text());
  const auto got = requestAnswers(host.port("fib", kWait), 2);
  const auto want = fibAnswers(501);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], want[499]);
  EXPECT_EQ(got[1], want[500]);
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);
  EXPECT_EQ(parseFibState(readWholeFile(state)), std::optional<std::uint64_t>(502));
}

// ---------------------------------------------------------------------------
// 8. Write failure: the state directory disappears while the host serves
//    (works as root, unlike chmod). Answers beyond the durable ceiling are
//    refused with ERR lines, /readyz says 503; once the directory is back,
//    serving resumes with no repeat.
TEST(FibonacciE2e, StateDirectoryGoneAnswersErrorsNeverRepeatsAndRecovers) {
  constexpr std::uint64_t kBlock = 4;
  TempDir dir;
  const std::string stateDir = dir / "state";
  const std::string state = stateDir + "/fib.state";
  HostProcess host;
  HostIni ini = fibIni(state, {{"reserve_block", std::to_string(kBlock)}});
  ini.raw("\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n");
  host.startWithConfig(ini.text());
  const auto port = host.port("fib", kWait);
  const auto admin = host.port("admin", kWait);
  EXPECT_EQ(httpGet(admin, "/readyz").status, 200);

  const std::vector<std::string> expected = fibAnswers(200);
  std::unordered_map<std::string_view, std::uint64_t> indexOf;
  for (std::size_t k = 0; k < expected.size(); ++k) indexOf.emplace(expected[k], k + 1);

  LineClient c(port);
  std::vector<std::uint64_t> served;  // indices, in order
  std::vector<std::string> afterRemoval;
  auto ask = [&]() -> std::string {
    if (!c.send("NEXT\n")) return "<send failed>";
    auto r = c.readLine();
    if (r.status != LineClient::Status::Line) return "<connection ended>";
    if (allDigits(r.line)) {
      auto it = indexOf.find(r.line);
      if (it == indexOf.end()) return "<not an expected answer: " + r.line.substr(0, 40) + ">";
      served.push_back(it->second);
    }
    return r.line;
  };
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(allDigits(ask()));
  ASSERT_EQ(served.back(), 10u);
  // Answer 10 left half a block: the next one is being reserved ahead, [1, 17) in all.
  // Let that write finish (it creates files in the directory) before the directory goes.
  ASSERT_TRUE(waitUntil([&] { return parseFibState(readWholeFile(state)) == std::optional<std::uint64_t>(17); },
                        kWait, 10ms))
      << readWholeFile(state);

  std::filesystem::remove_all(stateDir);
  const std::size_t servedBefore = served.size();
  // Within the durable ceiling a few more answers may come, then only errors.
  bool sawError = false;
  for (int i = 0; i < 10; ++i) {
    std::string line = ask();
    afterRemoval.push_back(line);
    if (line.rfind("ERR unavailable", 0) == 0) {
      sawError = true;
    } else {
      EXPECT_FALSE(sawError) << "a number after an ERR while the directory is gone: " << line;
      EXPECT_TRUE(allDigits(line)) << line;
    }
  }
  ASSERT_TRUE(sawError) << firstLines(afterRemoval, 10);
  // The durable margin is at most a block and a half: the next block is reserved when half of one is left.
  EXPECT_LE(served.size() - servedBefore, kBlock + kBlock / 2) << "answers beyond the durable ceiling were served";
  const HttpReply notReady = httpGet(admin, "/readyz");
  EXPECT_EQ(notReady.status, 503) << notReady.body;
  EXPECT_TRUE(host.waitForLog("cannot reserve more answers", kWait).has_value()) << host.stderrText();

  // Still gone across the 1 s retry: still errors.
  const auto stillGoneUntil = Clock::now() + 1500ms;
  while (Clock::now() < stillGoneUntil) {
    std::string line = ask();
    EXPECT_EQ(line.rfind("ERR unavailable", 0), 0u) << line;
    std::this_thread::sleep_for(100ms);  // deliberately: a request every 100 ms across the retry interval
  }
  EXPECT_EQ(httpGet(admin, "/readyz").status, 503);

  // Back: served again, continuing above everything handed out.
  std::filesystem::create_directories(stateDir);
  const std::size_t servedBeforeRecovery = served.size();
  std::string line;
  ASSERT_TRUE(waitUntil(
      [&] {
        line = ask();
        if (!allDigits(line)) {
          EXPECT_EQ(line.rfind("ERR unavailable", 0), 0u) << line;
        }
        return allDigits(line);
      },
      kWait, 100ms))
      << "never served again; last: " << line;
  ASSERT_EQ(served.size(), servedBeforeRecovery + 1);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(allDigits(ask()));
  for (std::size_t i = 1; i < served.size(); ++i)
    EXPECT_LT(served[i - 1], served[i]) << "answer " << served[i] << " after " << served[i - 1];
  EXPECT_EQ(httpGet(admin, "/readyz").status, 200);
  auto ceiling = parseFibState(readWholeFile(state));
  ASSERT_TRUE(ceiling.has_value()) << "the state file is written again";
  EXPECT_GT(*ceiling, served.back());

  // And a clean restart continues above all of it.
  const std::uint64_t last = served.back();
  c.raw().close();
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);
  HostProcess again;
  again.startWithConfig(fibIni(state, {{"reserve_block", std::to_string(kBlock)}}).text());
  const auto next = requestAnswers(again.port("fib", kWait), 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0], expected[last]) << "the answer after " << last;
}

// ---------------------------------------------------------------------------
// 9. T08: a 1 MB request line gets an error and a close after max_line_bytes,
//    without growing the host; T04: a trickle is closed at the line deadline.
TEST(FibonacciE2e, OversizedLineIsRefusedAndSlowlorisIsClosedAtTheLineDeadline) {
  HostProcess host;
  host.startWithConfig(
      fibIni(host.dir() + "/fib.state", {{"max_line_bytes", "1024"}, {"line_timeout_ms", "1000"}}).text());
  const auto port = host.port("fib", kWait);
  ASSERT_EQ(requestAnswers(port, 1), std::vector<std::string>{"2"});
  const long rssBefore = host.rssKiB();
  ASSERT_GT(rssBefore, 0);

  {
    LineClient big(port);
    const std::string chunk(64 * 1024, 'A');
    std::size_t sent = 0;
    while (sent < (1u << 20)) {
      ssize_t n = big.raw().sendSome(chunk.data(), chunk.size());
      if (n <= 0) break;  // reset by the host: expected once it closed
      sent += static_cast<std::size_t>(n);
    }
    auto r = big.readLine();
    ASSERT_EQ(r.status, LineClient::Status::Line) << "sent " << sent << " bytes, errno " << r.error;
    EXPECT_EQ(r.line, "ERR line too long: the limit is 1024 bytes");
    auto end = big.readLine();
    EXPECT_TRUE(end.status == LineClient::Status::Eof || end.status == LineClient::Status::Error)
        << "the connection should be closed, got status " << static_cast<int>(end.status) << " " << end.line;
  }
  EXPECT_TRUE(host.waitForLog("request line longer than 1024 bytes", kWait).has_value()) << host.stderrText();
  const long rssAfter = host.rssKiB();
  EXPECT_LT(std::labs(rssAfter - rssBefore), 4 * 1024) << "VmRSS KiB before " << rssBefore << ", after " << rssAfter;
  EXPECT_EQ(requestAnswers(port, 1), std::vector<std::string>{"3"}) << "the next client is served";

  // A line completed within the deadline, one byte at a time, is answered.
  {
    LineClient c(port);
    for (char ch : std::string("NEXT\n")) {
      ASSERT_TRUE(c.send(std::string(1, ch)));
      std::this_thread::sleep_for(100ms);  // deliberately: a trickle that finishes in time
    }
    auto r = c.readLine();
    ASSERT_EQ(r.status, LineClient::Status::Line);
    EXPECT_EQ(r.line, "5");
  }

  // Slowloris: one byte every 300 ms, never a newline.
  LineClient slow(port);
  const auto started = Clock::now();
  std::optional<Clock::duration> closedAfter;
  for (int i = 0; i < 40 && !closedAfter; ++i) {
    if (!slow.send("x")) {
      closedAfter = Clock::now() - started;
      break;
    }
    pollfd p{slow.raw().fd(), POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 300) == 1) closedAfter = Clock::now() - started;  // deliberately: 300 ms between bytes
  }
  ASSERT_TRUE(closedAfter.has_value()) << "a trickling client was never closed";
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*closedAfter).count();
  EXPECT_GE(ms, 900) << "closed before the 1 s line deadline";
  EXPECT_LE(ms, 4000) << "closed " << ms << " ms after the first byte (deadline 1000 ms)";
  auto r = slow.readLine();
  EXPECT_NE(r.status, LineClient::Status::Timeout);
  EXPECT_TRUE(host.waitForLog("line not completed within 1000 ms", kWait).has_value()) << host.stderrText();
}

// ---------------------------------------------------------------------------
// Issue 9 item 11: one read of 64 KiB of newlines from a client that never
// reads was 65,536 answers rendered in one go, each a number of the durable
// sequence gone for good (until the 64 MiB output bound closed it, some 25,000
// answers in). LineProtocol now stops at the pause that the output's
// back-pressure sets off (pause_reading_above, 1 MiB): such a client takes what
// fits that and the socket buffers (about 7,000 answers with Linux's default
// 4 MiB tcp_wmem), and the rest follows as it reads.
TEST(FibonacciE2e, AClientThatNeverReadsTakesOnlyWhatItsOutputBoundAllowsAndGetsTheRestAsItReads) {
  HostProcess host;
  host.startWithConfig(fibIni(host.dir() + "/fib.state", {}, "1").text());
  const auto port = host.port("fib", kWait);
  LineClient greedy(port);
  // 60 KiB: one segment on loopback, so (most likely) one read, and nothing
  // arrives later to set framing going again: only the resume does.
  constexpr std::size_t kRequests = 60 * 1024;
  ASSERT_TRUE(greedy.send(std::string(kRequests, '\n')));
  // Its first answers arrive: the host has read the requests. (One reactor:
  // the probe below is served only after that read was handled.)
  ASSERT_TRUE(waitUntil([&] {
    pollfd p{greedy.raw().fd(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }, kWait));
  const auto probe = requestAnswers(port, 1);
  ASSERT_EQ(probe.size(), 1u);
  // Answer k is F(k + 2), which has floor((k + 2) log10(phi) - log10(sqrt 5)) + 1 digits.
  const double log10Phi = std::log10((1 + std::sqrt(5.0)) / 2), log10Sqrt5 = std::log10(std::sqrt(5.0));
  const auto indexOf = [&](std::size_t digits) {
    return static_cast<std::size_t>((static_cast<double>(digits) - 1 + log10Sqrt5) / log10Phi) - 2;
  };
  const std::size_t consumed = indexOf(probe[0].size());
  std::cerr << "a client that sent " << kRequests << " requests and read none took about " << consumed << " answers\n";
  EXPECT_LT(consumed, 16384u) << "answers taken by a client that reads none of them";

  // Once it reads, the held requests are answered, in order, beyond the probe.
  std::size_t lines = 0, lastDigits = 0;
  while (lastDigits < probe[0].size() + 200) {  // some 1,000 answers past the probe
    auto r = greedy.readLine();
    ASSERT_EQ(r.status, LineClient::Status::Line) << "after " << lines << " answers";
    ASSERT_TRUE(allDigits(r.line)) << r.line.substr(0, 80);
    ASSERT_GE(r.line.size(), lastDigits);
    lastDigits = r.line.size();
    ++lines;
  }
  EXPECT_GT(lines, consumed);
}

// A pipelining client that half-closes (nc -N): one write of many requests,
// shutdown(SHUT_WR), then it reads to the end. With a small output bound every
// few answers pause reading; the host used to read on before it fired the
// resume (and read the EOF then, which closed the connection with requests
// still held, or appended a whole read to the held lines per pause).
TEST(FibonacciE2e, APipeliningClientThatHalfClosesGetsExactlyOneAnswerPerRequest) {
  constexpr std::size_t kRequests = 20000;  // the last answer has some 4,200 digits
  HostProcess host;
  host.startWithConfig(fibIni(host.dir() + "/fib.state", {{"max_output_bytes", "16384"}}, "1").text());
  const auto port = host.port("fib", kWait);
  const std::vector<std::string> expected = fibAnswers(kRequests);
  LineClient client(port, kWait);
  // The requests (700 KB: many full 64 KiB reads) from another thread, so that
  // the client reads while the host takes them.
  std::thread writer([&] {
    std::string requests;
    for (std::size_t i = 0; i < kRequests; ++i) requests += "NEXT please, and one more after it\n";
    if (client.send(requests)) client.raw().shutdownWrite();
  });
  std::size_t answers = 0, wrong = 0;
  LineClient::Read r;
  while ((r = client.readLine()).status == LineClient::Status::Line) {
    if (answers >= kRequests || r.line != expected[answers]) ++wrong;
    ++answers;
  }
  writer.join();
  EXPECT_EQ(r.status, LineClient::Status::Eof);
  EXPECT_EQ(answers, kRequests) << "one answer per request";
  EXPECT_EQ(wrong, 0u) << "answers out of the sequence's order";
  EXPECT_EQ(client.partial(), "");
}

// ---------------------------------------------------------------------------
// 10. T35: the end of the sequence, and the first answer above 2^64.
TEST(FibonacciE2e, MaxIndexEndsWithExhaustedErrorsNeverAWrappedValue) {
  const std::vector<std::string> expected = fibAnswers(100);
  ASSERT_EQ(expected[91], "19740274219868223167") << "the test's own answer 92 = F(94)";

  HostProcess host;
  const std::string state = host.dir() + "/fib.state";
  host.startWithConfig(fibIni(state, {{"max_index", "100"}, {"reserve_block", "8"}}).text());
  const auto port = host.port("fib", kWait);
  const auto got = requestAnswers(port, 110, 16);
  ASSERT_EQ(got.size(), 110u);
  for (std::size_t k = 0; k < 100; ++k) EXPECT_EQ(got[k], expected[k]) << "answer " << k + 1;
  EXPECT_EQ(got[91], "19740274219868223167");
  for (std::size_t k = 100; k < 110; ++k) EXPECT_EQ(got[k], "ERR exhausted: max_index 100 reached") << k + 1;
  EXPECT_EQ(requestAnswers(port, 1), std::vector<std::string>{"ERR exhausted: max_index 100 reached"});
  EXPECT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(kWait), 0);

  // Exhausted stays exhausted across a restart.
  {
    HostProcess again;
    again.startWithConfig(fibIni(state, {{"max_index", "100"}, {"reserve_block", "8"}}).text());
    EXPECT_EQ(requestAnswers(again.port("fib", kWait), 2),
              (std::vector<std::string>{"ERR exhausted: max_index 100 reached", "ERR exhausted: max_index 100 reached"}));
  }

  // Seeded near the 2^64 boundary: a state record saying next=90.
  HostProcess seeded;
  const std::string seededState = seeded.dir() + "/fib.state";
  writeWholeFile(seededState, fibStateLine(90));
  seeded.startWithConfig(fibIni(seededState, {{"max_index", "100"}, {"reserve_block", "8"}}).text());
  const auto tail = requestAnswers(seeded.port("fib", kWait), 13, 4);
  ASSERT_EQ(tail.size(), 13u);
  for (std::size_t k = 90; k <= 100; ++k) EXPECT_EQ(tail[k - 90], expected[k - 1]) << "answer " << k;
  EXPECT_EQ(tail[11], "ERR exhausted: max_index 100 reached");
  EXPECT_EQ(tail[12], "ERR exhausted: max_index 100 reached");
}

}  // namespace
}  // namespace protohost::e2e::plugintest
