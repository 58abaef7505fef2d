#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "FibTestSupport.h"
#include "FibonacciProtocol.h"
#include "SequenceStore.h"
#include "StateFormat.h"

using namespace protohost::plugins::fibonacci;
using protohost::testing::MemoryTransport;
using fibtest::lines;
using fibtest::TempDir;

namespace {

class FibonacciProtocolTest : public ::testing::Test {
 protected:
  std::shared_ptr<Sequence> open(const std::string& path, SequenceOptions options = {},
                                 std::shared_ptr<FileOps> ops = std::make_shared<FileOps>()) {
    auto seq = std::make_shared<Sequence>(std::make_unique<SequenceStore>(path, logger, std::move(ops)), options,
                                          logger, [this] { return now; });
    seq->open();
    return seq;
  }

  TempDir dir;
  fibtest::LockedLogger logger;
  Sequence::Clock::time_point now{};
};

}  // namespace

TEST_F(FibonacciProtocolTest, FirstAnswersInEveryChunkSizeWithCrlfAndLf) {
  const std::string requests = "NEXT\r\nNEXT\nNEXT\r\n\nanything at all\n";
  for (std::size_t chunk = 1; chunk <= requests.size(); ++chunk) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk));
    auto seq = open(dir.file("chunk" + std::to_string(chunk) + ".state"));
    FibonacciProtocol p(seq, 1024);
    MemoryTransport t;
    t.connect(p);
    fibtest::feed(t, p, requests, chunk);
    EXPECT_EQ(t.value(), "2\r\n3\r\n5\r\n8\r\n13\r\n");
    EXPECT_FALSE(t.closed());
  }
}

TEST_F(FibonacciProtocolTest, NoAnswerBeforeTheLineEnds) {
  auto seq = open(dir.file("fib.state"));
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  fibtest::feed(t, p, "NEXT");  // the article's clients send no newline: we wait for one
  EXPECT_EQ(t.value(), "");
  fibtest::feed(t, p, "\n");
  EXPECT_EQ(t.value(), "2\r\n");
}

TEST_F(FibonacciProtocolTest, ThousandthAnswerIsF1002) {
  auto seq = open(dir.file("fib.state"));
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  std::string requests;
  for (int i = 0; i < 1000; ++i) requests += "NEXT\n";
  fibtest::feed(t, p, requests, 4096);
  auto answers = lines(t.value());
  ASSERT_EQ(answers.size(), 1000u);
  EXPECT_EQ(answers[999], fibtest::kF1002);
  const auto reference = fibtest::referenceAnswers(1000);
  for (std::size_t i = 0; i < 1000; ++i) ASSERT_EQ(answers[i], reference[i]) << "answer " << i + 1;
}

TEST_F(FibonacciProtocolTest, ValuesPastTwoToTheSixtyFour) {
  auto seq = open(dir.file("fib.state"));
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  std::string requests;
  for (int i = 0; i < 100; ++i) requests += "NEXT\n";
  fibtest::feed(t, p, requests);
  auto answers = lines(t.value());
  ASSERT_EQ(answers.size(), 100u);
  EXPECT_EQ(answers[90], "12200160415121876738");  // answer 91 = F(93) < 2^64
  EXPECT_EQ(answers[91], "19740274219868223167");  // answer 92 = F(94) > 2^64 - 1
  EXPECT_EQ(answers[92], "31940434634990099905");
  EXPECT_EQ(answers[97], "354224848179261915075");  // F(100)
}

TEST_F(FibonacciProtocolTest, MaxIndexCapAnswersAnErrorLine) {
  auto seq = open(dir.file("fib.state"), {.maxIndex = 3});
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  fibtest::feed(t, p, "NEXT\nNEXT\nNEXT\nNEXT\nNEXT\n");
  EXPECT_EQ(t.value(), "2\r\n3\r\n5\r\nERR exhausted: max_index 3 reached\r\nERR exhausted: max_index 3 reached\r\n");
  EXPECT_FALSE(t.closed());
}

TEST_F(FibonacciProtocolTest, SeveralProtocolsShareOneSequence) {
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 5});
  constexpr int kClients = 7;
  std::vector<std::unique_ptr<FibonacciProtocol>> protocols;
  std::vector<std::unique_ptr<MemoryTransport>> transports;
  for (int i = 0; i < kClients; ++i) {
    protocols.push_back(std::make_unique<FibonacciProtocol>(seq, 1024));
    transports.push_back(std::make_unique<MemoryTransport>());
    transports.back()->connect(*protocols.back());
  }
  for (int round = 0; round < 30; ++round)
    for (int i = 0; i < kClients; ++i)
      if ((round + i) % 3 != 0) fibtest::feed(*transports[i], *protocols[i], "NEXT\r\n");
  std::set<std::string> all;
  std::size_t total = 0;
  for (auto& t : transports)
    for (const auto& v : lines(t->value())) {
      ++total;
      EXPECT_TRUE(all.insert(v).second) << v << " handed out twice";
    }
  const auto reference = fibtest::referenceAnswers(total);
  EXPECT_EQ(all, std::set<std::string>(reference.begin(), reference.end()));
}

TEST_F(FibonacciProtocolTest, FourThreadsOfConnectionsNeverShareAnAnswer) {
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 16});
  constexpr int kThreads = 4, kRequests = 1500;
  std::vector<std::string> outputs(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      FibonacciProtocol p(seq, 1024);
      MemoryTransport t;
      t.connect(p);
      for (int r = 0; r < kRequests; ++r) fibtest::feed(t, p, "NEXT\n");
      outputs[i] = t.value();
    });
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& out : outputs)
    for (const auto& v : lines(out)) EXPECT_TRUE(all.insert(v).second) << v << " handed out twice";
  const auto reference = fibtest::referenceAnswers(kThreads * kRequests);
  EXPECT_EQ(all, std::set<std::string>(reference.begin(), reference.end()));
}

TEST_F(FibonacciProtocolTest, WriteFailureAnswersUnavailableAndNeverPassesTheCeiling) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 3}, ops);
  ops->fail("fsync", ENOSPC);
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  fibtest::feed(t, p, "NEXT\nNEXT\nNEXT\n");  // the durable block [1, 4); the write ahead of it fails
  EXPECT_EQ(t.take(), "2\r\n3\r\n5\r\n");
  fibtest::feed(t, p, "NEXT\nNEXT\n");
  EXPECT_EQ(t.take(),
            "ERR unavailable: cannot persist the sequence state (No space left on device)\r\n"
            "ERR unavailable: cannot persist the sequence state (No space left on device)\r\n");
  // The failed write's record may be in the file (written in place, its fdatasync failed): a
  // restart would skip to it, never below 4. Nothing from it was served.
  const std::uint64_t onDisk = decodeState(fibtest::readFile(dir.file("fib.state")));
  EXPECT_TRUE(onDisk == 4u || onDisk == 7u) << onDisk;
  EXPECT_FALSE(t.closed());
}

TEST_F(FibonacciProtocolTest, StateDirectoryGoneAnswersUnavailable) {
  // Works as root, where chmod 0555 would not stop the writes.
  std::filesystem::create_directory(dir.file("state"));
  auto seq = open(dir.file("state/fib.state"), {.reserveBlock = 2});
  std::filesystem::rename(dir.file("state"), dir.file("elsewhere"));
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  fibtest::feed(t, p, "a\nb\n");  // the durable block [1, 3); the write ahead of it fails
  EXPECT_EQ(t.take(), "2\r\n3\r\n");
  fibtest::feed(t, p, "c\n");
  EXPECT_EQ(t.take(), "ERR unavailable: cannot persist the sequence state (No such file or directory)\r\n");
  EXPECT_EQ(decodeState(fibtest::readFile(dir.file("elsewhere/fib.state"))), 3u);
}

TEST_F(FibonacciProtocolTest, OverlongLineGetsAnErrorAndClose) {
  auto seq = open(dir.file("fib.state"));
  for (std::size_t chunk : {1u, 7u, 100u, 5000u}) {
    FibonacciProtocol p(seq, 16);
    MemoryTransport t;
    t.connect(p);
    fibtest::feed(t, p, "NEXT\n" + std::string(17, 'x') + "\nNEXT\n", chunk);
    auto out = lines(t.value());
    ASSERT_EQ(out.size(), 2u) << t.value();
    EXPECT_EQ(out[1], "ERR line too long: the limit is 16 bytes");
    EXPECT_TRUE(t.closed());
  }
  // A line of exactly the limit is fine.
  FibonacciProtocol p(seq, 16);
  MemoryTransport t;
  t.connect(p);
  fibtest::feed(t, p, std::string(16, 'x') + "\n");
  EXPECT_EQ(lines(t.value()).size(), 1u);
  EXPECT_FALSE(t.closed());
}

// ---------------------------------------------------------------- off the reactor

// Beyond the durable block, a request is answered from the done of its
// deferred work, never from lineReceived; the lines behind it wait, in order.
TEST_F(FibonacciProtocolTest, ARequestBeyondTheBlockIsAnsweredFromTheWorkersDoneInOrder) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 1}, ops);  // [1, 2)
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  auto& reactor = t.manualReactor();
  t.feed(p, "NEXT\nNEXT\nNEXT\n");
  EXPECT_EQ(t.value(), "2\r\n");        // answer 1 was durable; answer 2 waits for a write
  EXPECT_TRUE(t.readingPaused());       // the third line is held
  EXPECT_EQ(reactor.queuedWork(), 2u);  // the write ahead, and the settle of answer 2
  EXPECT_EQ(seq->durableCeiling(), 2u);
  while (reactor.runWork() > 0) {
  }
  EXPECT_EQ(t.value(), "2\r\n3\r\n5\r\n");
  EXPECT_FALSE(t.readingPaused());
  EXPECT_EQ(decodeState(fibtest::readFile(dir.file("fib.state"))), 4u);
}

// Several connections of one reactor waiting at once: their settles share one
// durable write (the first to run writes a ceiling that covers all of them).
TEST_F(FibonacciProtocolTest, WaitingConnectionsShareOneDurableWrite) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 1}, ops);
  protohost::testing::ManualReactor reactor;  // one reactor, one pool
  constexpr int kClients = 8;
  std::vector<std::unique_ptr<FibonacciProtocol>> protocols;
  std::vector<std::unique_ptr<MemoryTransport>> transports;
  for (int i = 0; i < kClients; ++i) {
    protocols.push_back(std::make_unique<FibonacciProtocol>(seq, 1024));
    transports.push_back(std::make_unique<MemoryTransport>(reactor));
    transports.back()->connect(*protocols.back());
  }
  const auto reference = fibtest::referenceAnswers(1 + 5 * kClients);
  std::set<std::string> got;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kClients; ++i) transports[i]->feed(*protocols[i], "NEXT\n");
    const int writes = ops->calls("create");
    while (reactor.runWork() > 0) {
    }
    EXPECT_LE(ops->calls("create") - writes, 2) << "round " << round << ": one write per waiting request?";
  }
  for (auto& t : transports)
    for (const auto& v : lines(t->value())) EXPECT_TRUE(got.insert(v).second) << v << " handed out twice";
  EXPECT_EQ(got.size(), 5u * kClients);
  for (const auto& v : got) EXPECT_NE(std::find(reference.begin(), reference.end(), v), reference.end()) << v;
}

TEST_F(FibonacciProtocolTest, AFullWorkerQueueAnswersBusyAtOnceAndSkipsTheIndex) {
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 1});
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  t.manualReactor().setWorkQueueLimit(0);
  t.feed(p, "NEXT\nNEXT\nNEXT\n");
  EXPECT_EQ(t.take(), "2\r\n" + std::string(FibonacciProtocol::kBusy) + "\r\n" +
                          std::string(FibonacciProtocol::kBusy) + "\r\n");
  EXPECT_FALSE(t.readingPaused());
  t.manualReactor().setWorkQueueLimit(100);
  fibtest::feed(t, p, "NEXT\n");
  const auto answer = lines(t.take());
  ASSERT_EQ(answer.size(), 1u);
  // Answers 2 and 3 were promised to the refused requests: skipped, never handed out.
  EXPECT_EQ(answer[0], fibtest::referenceAnswers(4)[3]);
}

TEST_F(FibonacciProtocolTest, AStoppingHostAnswersStoppingAtOnce) {
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 1});
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  t.manualReactor().stopWork();
  t.feed(p, "NEXT\nNEXT\n");
  EXPECT_EQ(t.take(), "2\r\nERR unavailable: the service is stopping\r\n");
  EXPECT_FALSE(t.readingPaused());
}

// The connection goes away while its request waits: the done is dropped, the
// index is skipped, and the next client continues above it.
TEST_F(FibonacciProtocolTest, AConnectionThatClosesWhileWaitingLeavesAGapNotARepeat) {
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 1});
  protohost::testing::ManualReactor reactor;
  auto gone = std::make_unique<FibonacciProtocol>(seq, 1024);
  {
    MemoryTransport t(reactor);
    t.connect(*gone);
    t.feed(*gone, "NEXT\nNEXT\n");
    EXPECT_EQ(t.value(), "2\r\n");
    t.disconnect(*gone);
  }
  gone.reset();
  reactor.stopWork();  // as the host does for a connection that ended: its done never runs
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  fibtest::feed(t, p, "NEXT\n");
  EXPECT_EQ(t.value(), fibtest::referenceAnswers(3)[2] + "\r\n");
}
